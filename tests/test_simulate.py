"""Simulation: reproducible numbers, honest ceilings, and the summaries worked out by hand."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from activelabel.errors import InvalidParameterError
from activelabel.loop.simulate import SimulationResult, normalized_aulc, simulate

from helpers import one_line_error, run_cli


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


def test_same_seed_same_numbers_in_series_and_in_parallel(digits):
    """Two runs with the same seeds give identical summaries, whether run in one process or two."""
    X, y = digits
    kwargs = dict(strategies=["default", "entropy"], seeds=2, batch_size=20, max_labels=60)
    a = simulate(X, y, n_jobs=1, **kwargs).summary()
    b = simulate(X, y, n_jobs=2, **kwargs).summary()
    assert a == b
    assert a["strategies"]["default"]["curve"]["labels"] == [20, 40, 60]


def test_ceiling_is_the_full_pool_model(digits):
    """The ceiling beats every 60-label run and is the same for every strategy."""
    X, y = digits
    result = simulate(X, y, strategies=["margin"], seeds=2, batch_size=20, max_labels=60)
    assert len(result.ceilings) == 2
    for name in result.strategies:
        assert result.ceiling_accuracy > result.curve(name).mean[-1]


def record(labels, accuracy):
    from types import SimpleNamespace

    return SimpleNamespace(labels_used=labels, accuracy=accuracy, accuracy_ci=(accuracy, accuracy),
                           money_spent=labels * 1.0, cycle=0, macro_f1=accuracy, stop_predictions=None)


def hand_result():
    """Two seeds, ceilings 1.0; 'fast' reaches 0.99 at 20 labels, random at 40 in one seed and never in the other."""
    fast = [[record(10, 0.9), record(20, 0.99), record(30, 0.99), record(40, 1.0)],
            [record(10, 0.9), record(20, 0.995), record(30, 1.0), record(40, 1.0)]]
    rand = [[record(10, 0.9), record(20, 0.92), record(30, 0.95), record(40, 0.99)],
            [record(10, 0.9), record(20, 0.91), record(30, 0.93), record(40, 0.96)]]
    return SimulationResult(histories={"fast": fast, "random": rand}, seeds=[0, 1], ceilings=[1.0, 1.0],
                            price_per_label=2.0, settings={"max_labels": 40})


def test_labels_to_reach_is_a_median_with_misses_as_infinite():
    r = hand_result()
    assert r.labels_to("fast", 0.99) == 20
    assert r.labels_to("random", 0.95) == 35  # median of 30 and 40
    assert r.labels_to("random", 0.99) is None  # median of 40 and "never"
    assert r.saving_vs_random("fast", 0.95) == pytest.approx(1 - 20 / 35)
    assert r.saving_vs_random("fast", 0.99) is None


def test_aulc_by_hand():
    assert normalized_aulc([10, 20, 30], [0.5, 0.7, 0.9]) == pytest.approx(0.7)
    # uneven steps: (0.5 + 0.7) / 2 * 10 + (0.7 + 0.8) / 2 * 30 = 28.5 over 40 labels
    assert normalized_aulc([10, 20, 50], [0.5, 0.7, 0.8]) == pytest.approx(28.5 / 40)
    assert normalized_aulc([10], [0.6]) == 0.6
    r = hand_result()
    np.testing.assert_allclose(r.aulc("fast"), [(0.945 + 0.99 + 0.995) / 3, (0.9475 + 0.9975 + 1.0) / 3])


def test_wilcoxon_p_value():
    r = hand_result()
    assert r.p_value_vs_random("random") is None
    assert 0 < r.p_value_vs_random("fast") <= 1


def test_seed_set_larger_than_the_budget_is_refused(digits):
    """A seed of 20 under a 10-label budget is refused before any run, naming both numbers."""
    X, y = digits
    with pytest.raises(InvalidParameterError, match=r"seed set of 20 items .*max_labels=10"):
        simulate(X, y, seeds=1, seed_size=20, max_labels=10)


def test_cli_budget_below_seed_size_is_one_line(tmp_path):
    """``simulate --budget 10 --seed-size 20`` exits non-zero with one stderr line naming 10 and 20."""
    out = run_cli("simulate", "digits", "--budget", "10", "--seed-size", "20", "--seeds", "1", "--jobs", "1",
                  "--out", tmp_path / "out", cwd=tmp_path)
    one_line_error(out, "seed set of 20 items", "budget max_labels=10")
    assert not (tmp_path / "out").exists()


def test_a_seed_set_of_one_class_is_refused_before_any_run(tmp_path):
    """4% rare class, 10-item seed sets: the first seed's stratified seed set holds only the common class."""
    import pandas as pd

    rng = np.random.default_rng(0)
    y = np.where(rng.random(800) < 0.04, "rare", "common")
    pd.DataFrame({"a": rng.normal(size=800), "label": y}).to_csv(tmp_path / "rare.csv", index=False)
    out = run_cli("simulate", tmp_path / "rare.csv", "--seeds", "2", "--budget", "40", "--seed-size", "10",
                  "--batch-size", "10", "--jobs", "1", "--out", tmp_path / "o")
    one_line_error(out, "seed 0: the 10-item seed set holds only the class 'common'", "--seed-size")
    assert not (tmp_path / "o").exists()
