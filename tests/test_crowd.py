"""Routing scores and the noisy-annotator simulation (issue 13): equal money, paired plans, the CLI's results."""

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits

from activelabel.agreement import relabel_scores, route
from activelabel.errors import InvalidParameterError, ShapeMismatchError
from activelabel.loop.crowd import plans, simulate_annotators

from helpers import one_line_error, run_cli


def test_relabel_scores_distrust_few_opinions_and_a_doubting_model():
    s = relabel_scores([0.6, 0.6, 1.0, 1.0], [1, 3, 1, 1], [0.9, 0.9, 0.1, 1.0])
    # n opinions weigh n : 1 against the model: the more people, the nearer the score to 1 - their agreement
    assert s[:2] == pytest.approx([1 - (0.6 + 0.9) / 2, 1 - (3 * 0.6 + 0.9) / 4])
    assert s[2] > s[3] and s[3] == pytest.approx(0.0)  # the model doubting a unanimous label raises its score
    with pytest.raises(ShapeMismatchError):
        relabel_scores([0.5], [1, 2], [0.5])


def test_route_exchanges_one_for_one_against_the_least_informative_new_items():
    # new items' scores sorted: 0.1, 0.2, 0.9; candidates 0.5 and 0.15 beat the 1st; only 0.5 beats the 2nd too
    assert route([0.15, 0.5, 0.05], [0.9, 0.1, 0.2], cap=3).tolist() == [1]
    assert route([0.3, 0.5, 0.25], [0.9, 0.1, 0.2], cap=3).tolist() == [1, 0]  # 0.25 < 0.9
    assert route([0.95, 0.96], [0.9, 0.1], cap=1).tolist() == [1]  # the cap holds
    assert len(route([0.9], [], cap=3)) == 0 and len(route([0.9], [0.1], cap=0)) == 0


def digits(n=600):
    X, y = load_digits(return_X_y=True)
    return X[:n], y[:n]


def test_plans_at_equal_money_truer_labels_with_more_opinions_seeded_and_summarized():
    """One run of every plan over two seeds (one test: the runs are the cost; 600 digits): every plan buys the same 30
    opinions per cycle within the budget; routing spends some on labeled items; more opinions give truer
    training labels; the summary has what results.json promises; the same seed gives the same run."""
    X, y = digits()
    r = simulate_annotators(X, y, [0.95, 0.85, 0.65], opinions=(1, 3), seeds=2, batch_size=30, seed_size=30,
                            max_money=210, n_jobs=1)
    assert list(r.runs) == plans([1, 3]) == ["1x_majority", "3x_majority", "3x_dawid_skene", "3x_crowdlab",
                                              "routing_dawid_skene"]
    for plan, runs in r.runs.items():
        for run in runs:
            assert (np.diff(run["money"]) == 30).all(), (plan, run["money"])  # whatever the plan
            assert run["money"][-1] <= 210
    one, three = r.runs["1x_majority"][0], r.runs["3x_majority"][0]
    assert one["items"][-1] == one["money"][-1] and three["items"][-1] * 3 == three["money"][-1]
    routed = r.runs["routing_dawid_skene"][0]
    assert three["items"][-1] < routed["items"][-1] < one["items"][-1]  # some opinions went to labeled items

    s = r.summary()
    assert s["3x_crowdlab"]["label_accuracy"] > s["1x_majority"]["label_accuracy"] + 0.05
    assert s["routing_dawid_skene"]["label_accuracy"] > s["1x_majority"]["label_accuracy"]
    for plan, v in s.items():
        assert set(v) >= {"label_accuracy", "aulc_mean", "money_to_99", "p_aulc_vs_1x", "failed_seeds"}
        assert 0 < v["aulc_mean"] < 1 and len(v["label_accuracy_per_seed"]) == 2 and v["failed_seeds"] == []
        assert (v["p_aulc_vs_1x"] is None) == (plan == "1x_majority")

    again = simulate_annotators(X, y, [0.95, 0.85, 0.65], opinions=(1, 3), plan_names=["routing_dawid_skene"],
                                seeds=[1], batch_size=30, seed_size=30, max_money=210)
    first, second = r.runs["routing_dawid_skene"][1], again.runs["routing_dawid_skene"][0]
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_bad_annotator_settings_are_refused():
    X, y = load_digits(return_X_y=True)
    with pytest.raises(InvalidParameterError, match=r"3 opinions per item \(--opinions\) need at least 3 annotators"):
        simulate_annotators(X, y, [0.9, 0.8], opinions=(1, 3))
    with pytest.raises(InvalidParameterError, match="must be above chance"):
        simulate_annotators(X, y, [0.9, 1.5], opinions=(1, 2))
    with pytest.raises(InvalidParameterError, match=r"above chance \(0.1 for 10 classes\)"):
        simulate_annotators(X, y, [0.9, 0.05], opinions=(1, 2))  # would be simulated as chance, silently
    with pytest.raises(InvalidParameterError, match="a batch of 2 opinions cannot buy 3 opinions for one item"):
        simulate_annotators(X, y, [0.9, 0.8, 0.7], opinions=(1, 3), batch_size=2)
    with pytest.raises(InvalidParameterError, match="seed set of 20 items with 3 opinions each costs 60, more than"):
        simulate_annotators(X, y, [0.9, 0.8, 0.7], opinions=(1, 3), max_money=50)
    one_line_error(run_cli("simulate", "digits", "--annotators", "0.9,high"), "accuracies such as")
    one_line_error(run_cli("simulate", "digits", "--annotators", "0.9,0"), "(0, 1]")
    one_line_error(run_cli("simulate", "digits", "--annotators", "0.9,0.8", "--opinions", "3..1"), "a range goes up")
    out = run_cli("simulate", "digits", "--annotators", "0.9", "--opinions", "1..2", "--seeds", "1")
    one_line_error(out, "2 opinions per item (--opinions) need at least 2 annotators")  # before any run
    assert out.returncode == 2


def test_a_run_whose_labels_never_hold_two_classes_fails_alone():
    """The plan that failed on a seed says so; its means and paired tests rest on the other seeds; the other
    plans are untouched."""
    from activelabel.loop.crowd import CrowdResult

    def run(acc):
        return {"money": np.array([30.0, 60.0, 90.0]), "items": np.array([30.0, 60, 90]),
                "accuracy": np.array(acc), "label_accuracy": np.array([0.8, 0.8, 0.8])}

    runs = {"1x_majority": [run([0.5, 0.6, 0.7]), run([0.5, 0.6, 0.8]), run([0.4, 0.6, 0.8])],
            "3x_majority": [None, run([0.5, 0.7, 0.9]), run([0.5, 0.7, 0.95])]}
    s = CrowdResult(runs=runs, seeds=[0, 1, 2], ceilings=[0.9, 0.9, 0.9], settings={}).summary()
    assert s["3x_majority"]["failed_seeds"] == [0] and s["1x_majority"]["failed_seeds"] == []
    assert s["3x_majority"]["money_to_99_per_seed"] == [None, 90.0, 90.0] and s["3x_majority"]["money_to_99"] == 90
    assert s["3x_majority"]["aulc_per_seed"][0] is None and s["3x_majority"]["final_accuracy"] == pytest.approx(0.925)
    assert s["3x_majority"]["p_aulc_vs_1x"] == 0.5  # two paired seeds, both better: the smallest p for n = 2
    gone = CrowdResult(runs={"1x_majority": [run([0.5, 0.6, 0.7])], "3x_majority": [None]}, seeds=[0],
                       ceilings=[0.9], settings={}).summary()
    assert gone["3x_majority"]["aulc_mean"] is None and gone["3x_majority"]["curve"]["money"] == []


def test_simulate_with_annotators_writes_them_to_results_json_and_the_report(tmp_path):
    out = run_cli("simulate", "digits", "--seeds", "1", "--budget", "90", "--batch-size", "30", "--seed-size", "30",
                  "--jobs", "1", "--annotators", "0.95,0.85,0.65", "--opinions", "1,2", "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Noisy annotators (0.95, 0.85, 0.65) at equal money" in out.stdout and "routing_dawid_skene" in out.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["annotators"]) == {"1x_majority", "2x_majority", "2x_dawid_skene", "2x_crowdlab",
                                          "routing_dawid_skene"}
    assert results["annotator_settings"]["accuracies"] == [0.95, 0.85, 0.65]
    assert (tmp_path / "annotators.png").stat().st_size > 10_000
    assert "Noisy annotators, at equal money" in (tmp_path / "report.html").read_text()
