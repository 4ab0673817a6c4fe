"""Agreement and aggregation (issue 13): kappas and alpha, majority vote, Dawid-Skene, CROWDLAB."""

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from activelabel.agreement import (
    aggregate,
    annotator_stats,
    crowdlab,
    dawid_skene,
    fleiss_kappa,
    krippendorff_alpha,
    majority_vote,
    pairwise_kappa,
)
from activelabel.errors import InvalidParameterError, ShapeMismatchError


def noisy(n=2000, k=3, accuracy=(0.95, 0.85, 0.65), seed=0, missing=0.0):
    """True labels and annotators who are right with the given accuracies (wrong labels uniform over the rest)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(k, size=n)
    m = np.empty((n, len(accuracy)), dtype=np.int64)
    for a, p in enumerate(accuracy):
        wrong = rng.random(n) > p
        m[:, a] = np.where(wrong, (truth + rng.integers(1, k, size=n)) % k, truth)
        m[rng.random(n) < missing, a] = -1
    return truth, m


item_labels = st.lists(st.integers(0, 3), min_size=4, max_size=40)


@given(item_labels, st.integers(2, 5))
def test_identical_annotators_agree_perfectly(labels, n_annotators):
    m = np.repeat(np.array(labels)[:, None], n_annotators, axis=1)
    if len(set(labels)) < 2:
        return  # one class only: chance agreement is total, kappa undefined
    assert np.allclose(pairwise_kappa(m), 1.0)
    assert fleiss_kappa(m) == pytest.approx(1.0)
    assert krippendorff_alpha(m) == pytest.approx(1.0)


@given(st.integers(0, 10_000))
def test_renaming_the_labels_changes_nothing(seed):
    _, m = noisy(n=60, k=4, accuracy=(0.9, 0.7, 0.5), seed=seed, missing=0.2)
    rename = np.random.default_rng(seed).permutation(4)
    renamed = np.where(m == -1, -1, rename[np.maximum(m, 0)])
    np.testing.assert_allclose(pairwise_kappa(renamed, 4), pairwise_kappa(m, 4), equal_nan=True)
    assert fleiss_kappa(renamed, 4) == pytest.approx(fleiss_kappa(m, 4), nan_ok=True)
    assert krippendorff_alpha(renamed) == pytest.approx(krippendorff_alpha(m), nan_ok=True)


def test_alpha_matches_krippendorffs_worked_example():
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 observers, 12 units, values 1-5 with
    gaps; nominal alpha = 0.743."""
    rows = ["1 2 3 3 2 1 4 1 2 . . .", "1 2 3 3 2 2 4 1 2 5 . 3", ". 3 3 3 2 3 4 2 2 5 1 .", "1 2 3 3 2 4 4 1 2 5 1 ."]
    m = np.array([[-1 if v == "." else int(v) - 1 for v in r.split()] for r in rows]).T
    assert krippendorff_alpha(m) == pytest.approx(0.743, abs=5e-4)


def test_fleiss_and_cohen_by_hand():
    """Two raters, 4 items, 2 classes: agree on 3 of 4; shares 4/8 each way."""
    m = np.array([[0, 0], [1, 1], [0, 1], [1, 1]])
    # Cohen: observed 0.75; expected (1*2 + ... ) rater A: 2 zeros 2 ones, B: 1 zero 3 ones -> 0.5*0.25+0.5*0.75
    assert pairwise_kappa(m)[0, 1] == pytest.approx((0.75 - 0.5) / 0.5)
    # Fleiss: P_i = 1, 1, 0, 1 -> 0.75; shares 3/8, 5/8 -> P_e = 34/64
    assert fleiss_kappa(m) == pytest.approx((0.75 - 34 / 64) / (1 - 34 / 64))


def test_dawid_skene_recovers_the_annotators_accuracies_and_beats_the_vote():
    truth, m = noisy()
    ds = dawid_skene(m, 3)
    np.testing.assert_allclose(ds.annotator_accuracy, [0.95, 0.85, 0.65], atol=0.05)
    assert (ds.labels == truth).mean() > (majority_vote(m, 3).labels == truth).mean()
    assert np.allclose(ds.posterior.sum(axis=1), 1) and np.allclose(ds.quality, ds.posterior.max(axis=1))


@pytest.mark.filterwarnings("ignore")  # crowd-kit 1.4 on pandas 3: deprecation warnings, not ours
def test_dawid_skene_agrees_with_crowd_kit():
    from crowdkit.aggregation import DawidSkene

    _, m = noisy(n=1000, missing=0.3, seed=3)
    rows, cols = np.nonzero(m != -1)
    frame = pd.DataFrame({"task": rows, "worker": cols, "label": m[rows, cols]})
    theirs = DawidSkene(n_iter=100).fit_predict(frame).sort_index()
    ours = dawid_skene(m, 3).labels[theirs.index.to_numpy()]
    assert (ours == theirs.to_numpy()).mean() > 0.99


@pytest.mark.parametrize("method", ["majority", "dawid_skene"])
def test_one_annotator_is_taken_at_their_word(method):
    labels = np.random.default_rng(1).integers(3, size=50)
    result = aggregate(labels[:, None], 3, method)
    assert np.array_equal(result.labels, labels)


def test_majority_ties_are_broken_by_the_seed_and_nobody_gives_no_label():
    m = np.array([[0, 1], [0, 1], [0, 1], [0, 1], [-1, -1]] * 20)
    one, again = majority_vote(m, 2, random_state=5), majority_vote(m, 2, random_state=5)
    assert np.array_equal(one.labels, again.labels)
    tied = one.labels[m[:, 0] != -1]
    assert set(tied) == {0, 1}  # not always the first class
    assert (one.labels[m[:, 0] == -1] == -1).all() and (one.quality[m[:, 0] == -1] == 0).all()


def test_crowdlab_uses_the_model_to_settle_disagreements():
    truth, m = noisy(n=500, accuracy=(0.8, 0.7, 0.6), seed=2)
    probs = np.full((500, 3), 0.15)
    probs[np.arange(500), truth] = 0.7
    result = crowdlab(m, probs)
    assert (result.labels == truth).mean() > (majority_vote(m, 3).labels == truth).mean()
    assert np.allclose(result.posterior.sum(axis=1), 1) and ((0 <= result.quality) & (result.quality <= 1)).all()
    with pytest.raises(InvalidParameterError, match="needs pred_probs"):
        aggregate(m, 3, "crowdlab")


def test_annotator_stats_against_the_consensus_and_gold():
    m = np.array([[0, 0, 1], [1, 1, 1], [0, -1, 0], [1, 0, -1]])
    consensus = np.array([0, 1, 0, 1])
    stats = annotator_stats(m, consensus, gold=np.array([0, 1, -1, 0]))
    assert list(stats["answered"]) == [4, 3, 3]
    np.testing.assert_allclose(stats["agreement"], [1.0, 2 / 3, 2 / 3])
    np.testing.assert_allclose(stats["gold_accuracy"], [2 / 3, 1.0, 0.5])


def test_bad_matrices_name_the_problem():
    with pytest.raises(ShapeMismatchError, match="n_items, n_annotators"):
        fleiss_kappa(np.zeros(5, dtype=int))
    with pytest.raises(InvalidParameterError, match="integer class codes"):
        pairwise_kappa(np.zeros((3, 2)))
    with pytest.raises(InvalidParameterError, match="not below n_classes=2"):
        majority_vote(np.array([[0, 2]]), 2)
    with pytest.raises(InvalidParameterError, match="unknown aggregation method 'mode'"):
        aggregate(np.array([[0, 1]]), 2, "mode")


def test_the_projects_agreement_report_matches_a_hand_count(tmp_path):
    """ann and bob label four messages, agreeing on three: Cohen's kappa 0.5 (observed 3/4, expected 1/2),
    Fleiss' kappa (0.75 - 34/64) / (30/64); cy's undone label and an unnamed import do not count."""
    import json

    from helpers import make_sms_project, run_cli

    from activelabel.project import Project

    folder = make_sms_project(tmp_path, n=120, test_size=20, seed_pool=10, seed_test=5)
    with Project.open(folder) as p:
        ids = list(p.state().items.query("split == 'pool'")["external_id"][20:24])
    pd.DataFrame({"id": ids * 2 + [ids[0]],
                  "label": ["spam", "spam", "ham", "ham", "spam", "ham", "ham", "ham", "ham"],
                  "who": ["ann"] * 4 + ["bob"] * 4 + ["cy"]}).to_csv(tmp_path / "two.csv", index=False)
    assert run_cli("import-labels", folder, tmp_path / "two.csv", "--annotator-column", "who").returncode == 0
    with Project.open(folder) as p, p.store.session() as s:
        from sqlalchemy import select

        from activelabel.store import repo
        from activelabel.store.schema import Annotation, Annotator

        cy = s.scalar(select(Annotation.id).join(Annotator).where(Annotator.name == "cy"))
        item = s.scalar(select(Annotation.item_id).where(Annotation.id == cy))
        repo.add_annotations(s, [{"item_id": item, "annotator_id": None, "answer": "retract", "label": None,
                                  "source": "web", "retracts_id": cy}])
    out = run_cli("agreement", folder, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["items_with_several_opinions"] == 4 and report["consensus_method"] == "majority"
    assert report["fleiss_kappa"] == pytest.approx((0.75 - 34 / 64) / (30 / 64), abs=1e-4)
    ann, bob = report["annotators"]
    assert (ann["name"], ann["labels"], bob["labels"]) == ("ann", 4, 4)
    assert ann["kappa"]["bob"] == pytest.approx(0.5) and bob["kappa"]["ann"] == pytest.approx(0.5)
    assert report["label_pairs"] == {"spam": {"spam": 2, "ham": 1}, "ham": {"spam": 1, "ham": 4}}  # ordered pairs
    text = run_cli("agreement", folder)
    assert text.returncode == 0 and "Fleiss' kappa 0.467" in text.stdout


def test_a_project_derives_labels_by_dawid_skene_once_annotators_overlap_or_by_crowdlab(tmp_path):
    """Three people label the same 40 messages: a careful one, a fair one and a careless one who, with the fair
    one, often outvotes the careful one. ``auto`` switches to Dawid-Skene (everyone shares 20 items or more),
    whose labels are more often right than the vote's; the export says how each label was made."""
    from helpers import make_sms_project, run_cli, set_config

    from activelabel.project import Project

    folder = make_sms_project(tmp_path, n=200, test_size=20, seed_pool=10, seed_test=5)
    truth = pd.read_csv(tmp_path / "sms.csv").set_index("id")["label"]
    with Project.open(folder) as p:
        ids = list(p.state().items.query("split == 'pool' and label.isna()")["external_id"][:40])
        external = p.state().items.set_index("external_id")["id"]
    rng = np.random.default_rng(4)
    rows = []
    for who, accuracy in (("careful", 0.97), ("fair", 0.8), ("careless", 0.6)):
        for i in ids:
            right = truth[i]
            rows.append((i, right if rng.random() < accuracy else ("ham" if right == "spam" else "spam"), who))
    pd.DataFrame(rows, columns=["id", "label", "who"]).to_csv(tmp_path / "three.csv", index=False)
    assert run_cli("import-labels", folder, tmp_path / "three.csv", "--annotator-column", "who").returncode == 0

    def accuracy():
        with Project.open(folder) as p:
            st = p.state()
        labeled = st.items.set_index("external_id").loc[ids]
        return st.aggregation, float((labeled["label"] == truth[ids]).mean()), labeled["consensus"]

    method, ds, confidence = accuracy()
    assert method == "dawid_skene" and confidence.between(0.5, 1).all()
    set_config(folder, aggregation="majority")
    method, vote, _ = accuracy()
    assert method == "majority" and ds >= vote
    assert run_cli("export", folder, tmp_path / "out.csv").returncode == 0
    exported = pd.read_csv(tmp_path / "out.csv").set_index("id").loc[ids]
    assert (exported["aggregation"] == "majority").all() and (exported["votes"] == 3).all()
    # CROWDLAB: the next training saves out-of-fold probabilities of the labeled items, which the labels then weigh
    set_config(folder, aggregation="crowdlab")
    with Project.open(folder) as p:
        assert accuracy()[0] == "crowdlab"  # no training judged them yet: Dawid-Skene's labels meanwhile
        p.train(force=True)
        judged = p.state().cycles[-1].details["oof"]
    assert set(external[ids]) <= set(judged["ids"]) and np.allclose(np.sum(judged["proba"], axis=1), 1)
    method, crowd, confidence = accuracy()
    assert method == "crowdlab" and crowd >= vote and confidence.between(0, 1).all()
    with Project.open(folder) as p:
        made = p.state().items.set_index("id")["method"]
    assert (made[external[ids]] == "crowdlab").all()  # judged by the training
    assert (made[[i for i in made.dropna().index if i not in set(judged["ids"])]] != "crowdlab").all()
    assert run_cli("agreement", folder, "--json").returncode == 0
    assert run_cli("export", folder, tmp_path / "out.csv").returncode == 0
    assert (pd.read_csv(tmp_path / "out.csv").set_index("id").loc[ids, "aggregation"] == "crowdlab").all()


@pytest.fixture
def disputed(tmp_path, db_url):
    """A project where ann and bob disagree on two messages and agree on a third; an admin's token."""
    return make_disputed(tmp_path, db_url)


@pytest.fixture
def disputed_sqlite(tmp_path):
    return make_disputed(tmp_path, None)


def make_disputed(tmp_path, db_url):
    from helpers import make_sms_project

    from activelabel.project import Project

    folder = make_sms_project(tmp_path, db_url, n=120, test_size=20, seed_pool=10, seed_test=5)
    with Project.open(folder) as p:
        ids = list(p.state().items.query("split == 'pool' and label.isna()")["external_id"][:3])
        boss = p.add_annotator("boss", "admin")
    pd.DataFrame({"id": ids * 2, "label": ["spam", "spam", "ham", "ham", "ham", "ham"],
                  "who": ["ann"] * 3 + ["bob"] * 3}).to_csv(tmp_path / "two.csv", index=False)
    with Project.open(folder) as p:
        p.import_labels(tmp_path / "two.csv", annotator_column="who")
    return folder, ids, boss


def test_contested_items_reach_adjudication_and_the_admins_label_is_final(disputed, tmp_path):
    """Two 1-1 items are contested (consensus 50%), the unanimous one is not; the admin's label settles one, is
    its label whatever the votes say, counts as no extra vote, and the export marks it adjudicated."""
    from fastapi.testclient import TestClient
    from helpers import bearer

    from activelabel.project import Project
    from activelabel.project.agreement import contested
    from activelabel.server import create_app

    folder, ids, boss = disputed
    with Project.open(folder) as p:
        rows = contested(p, p.state())
        spent = p.status()["money_spent"]
    assert sorted(rows["external_id"]) == sorted(ids[:2])
    with TestClient(create_app(folder, retrain=False)) as c:
        page = c.get("/admin/adjudicate", headers=bearer(boss)).text
        assert page.count('<tr data-item=') == 2 and "<b>ann</b>: spam" in page and "<b>bob</b>: ham" in page
        assert "no model" not in page and re.search(r"<td>(spam|ham) \(\d+%\)</td>", page)  # the model's view
        item = int(rows["id"].iloc[0])
        r = c.post("/admin/adjudicate", data={"item_id": item, "label": "ham"}, headers=bearer(boss),
                   follow_redirects=False)
        assert r.status_code == 303
        assert c.post("/admin/adjudicate", data={"item_id": item, "label": "eggs"},
                      headers=bearer(boss)).status_code == 400
        assert c.get("/admin/adjudicate", headers=bearer(boss)).text.count('<tr data-item=') == 1
        with Project.open(folder) as p:
            single = int(p.state().items.query("n_votes == 1")["id"].iloc[0])
        r = c.post("/admin/adjudicate", data={"item_id": single, "label": "ham"}, headers=bearer(boss))
        assert r.status_code == 400 and "fewer than two opinions" in r.text
    with Project.open(folder) as p:
        st = p.state()
        row = st.items.set_index("id").loc[item]
        assert (row["label"], bool(row["adjudicated"]), row["n_votes"]) == ("ham", True, 2)
        assert p.status()["money_spent"] == spent  # an admin's decision is not a bought answer
        report = p.agreement()
        assert [a["name"] for a in report["annotators"]] == ["ann", "bob"]  # the admin is no annotator
        p.export(tmp_path / "out.csv", "csv")
    exported = pd.read_csv(tmp_path / "out.csv").set_index("id")
    assert exported.loc[rows["external_id"].iloc[0], "aggregation"] == "adjudicated"


def test_an_admin_adjudicates_in_the_browser(disputed_sqlite, browser, tmp_path):
    from playwright.sync_api import expect

    from helpers import Server

    folder, ids, boss = disputed_sqlite
    with Server(folder, log=tmp_path / "server.log") as server:
        page = browser.new_page()
        page.goto(server.url + "/login")
        page.fill("#token", boss)
        page.click("button[type=submit]")
        page.goto(server.url + "/admin/adjudicate")
        expect(page.locator("#contested tbody tr")).to_have_count(2)
        page.locator("#contested tbody tr").first.get_by_role("button", name="spam").click()
        expect(page.locator("#adjudicated")).to_be_visible()
        expect(page.locator("#contested tbody tr")).to_have_count(1)
        page.locator("#contested tbody tr").first.get_by_role("button", name="ham").click()
        expect(page.locator("#contested-empty")).to_be_visible()
        page.close()


def test_a_contested_item_is_routed_to_a_third_person_and_no_further(disputed):
    """With relabel_fraction set, the next cycle's batch leads with the 1-1 items, each needing one more label;
    they go to cy, never back to ann or bob, and once three opinions stand they are not routed again."""
    from fastapi.testclient import TestClient
    from helpers import bearer, set_config

    from activelabel.project import Project
    from activelabel.server import create_app
    from activelabel.store import queue
    from activelabel.store.schema import BatchItem

    folder, ids, boss = disputed
    set_config(folder, relabel_fraction=0.5, max_opinions=3, adjudicate_below=0.0, test_share=0.0)
    with Project.open(folder) as p:
        tokens = {n: p.add_annotator(n) for n in ("cy",)}
        external = p.state().items.set_index("external_id")["id"]
        p.train(force=True)
        with p.store.session(readonly=True) as s:
            from sqlalchemy import select

            batch = queue.current_batch(s)
            lead = s.execute(select(BatchItem.item_id, BatchItem.need).where(BatchItem.batch_id == batch)
                             .order_by(BatchItem.rank).limit(2)).all()
    contested_ids = {int(external[i]) for i in ids[:2]}
    assert {i for i, _ in lead} == contested_ids and all(need == 3 for _, need in lead)
    with TestClient(create_app(folder, retrain=False)) as c:
        served = c.get("/api/next", headers=bearer(tokens["cy"])).json()["item"]
        assert served["item_id"] in contested_ids
        c.post("/api/answer", headers=bearer(tokens["cy"]),
               json={"assignment_id": served["assignment_id"], "answer": "label", "label": "spam"})
    with Project.open(folder) as p:
        row = p.state().items.set_index("id").loc[served["item_id"]]
        assert row["n_votes"] == 3
        p.train(force=True)
        with p.store.session(readonly=True) as s:
            batch = queue.current_batch(s)
            routed = set(s.scalars(select(BatchItem.item_id).where(BatchItem.batch_id == batch, BatchItem.need > 1)))
    assert served["item_id"] not in routed


def test_the_admin_page_shows_agreement_with_a_plot(disputed):
    from fastapi.testclient import TestClient
    from helpers import bearer

    from activelabel.server import create_app

    folder, ids, boss = disputed
    with TestClient(create_app(folder, retrain=False)) as c:
        page = c.get("/admin", headers=bearer(boss)).text
    card = " ".join(page[page.index('id="agreement-card"'):page.index('id="export-card"')].split())
    # by hand: agreement per item 0, 0, 1 (mean 1/3); shares spam 2/6, ham 4/6 (chance 20/36): kappa -0.50
    assert "3 items have two or more opinions" in card and "Fleiss' kappa -0.50" in card
    assert ">2 to adjudicate<" in card and "<svg" in card and "Cohen" in card
    assert card.count("<tr><td>") == 2  # ann and bob


def test_training_can_weigh_labels_by_their_consensus(disputed, monkeypatch):
    """weight_by_consensus passes each training label's consensus (1 for single opinions, 0.5 for a 1-1 split)
    to the model's last step as sample_weight."""
    from helpers import set_config
    from sklearn.linear_model import LogisticRegression

    from activelabel.project import Project

    folder, ids, boss = disputed
    set_config(folder, weight_by_consensus=True)
    seen = {}
    original = LogisticRegression.fit

    def spy(self, X, y, sample_weight=None):
        seen["weights"] = None if sample_weight is None else np.asarray(sample_weight)
        return original(self, X, y, sample_weight=sample_weight)

    monkeypatch.setattr(LogisticRegression, "fit", spy)
    with Project.open(folder) as p:
        p.train(force=True)
        labeled = p.state().items.query("split == 'pool' and label.notna()")
    weights = seen["weights"]
    assert weights is not None and len(weights) == len(labeled)
    assert sorted(np.round(weights, 2))[:2] == [0.5, 0.5] and (weights[2:] <= 1).all() and weights.max() == 1.0


def test_simulated_annotators_are_as_accurate_as_asked_and_seeded():
    from activelabel.agreement import confusions, noisy_labels

    y = np.random.default_rng(0).integers(4, size=20_000)
    m = noisy_labels(y, [0.95, 0.8, 0.6], 4, random_state=3)
    np.testing.assert_allclose((m == y[:, None]).mean(axis=0), [0.95, 0.8, 0.6], atol=0.03)
    assert np.array_equal(m, noisy_labels(y, [0.95, 0.8, 0.6], 4, random_state=3))
    conf = confusions([0.9], 4)
    assert np.allclose(conf.sum(axis=2), 1) and (np.diagonal(conf[0]) > 0.85).all()
    # Dawid-Skene on them: the accuracies come back within 0.05
    ds = dawid_skene(m[:2000], 4)
    np.testing.assert_allclose(ds.annotator_accuracy, (m[:2000] == y[:2000, None]).mean(axis=0), atol=0.05)
    with pytest.raises(InvalidParameterError, match=r"accuracies must be numbers in \(0, 1\]"):
        noisy_labels(y, [1.2], 4)


def test_overlap_items_reach_distinct_annotators_in_the_browser(tmp_path, browser):
    """Every item of a batch with full overlap (two people each) is labeled in the browser by two different
    people and never shown twice to one, while three people label at once."""
    from helpers import Server, make_sms_project, set_config
    from playwright.sync_api import expect
    from test_browser import log_in

    from activelabel.project import Project

    folder = make_sms_project(tmp_path, batch_size=6)
    set_config(folder, overlap_fraction=1.0, overlap_annotators=2, test_share=0.0, reserve_batches=0,
               retrain_minutes=0.0)
    with Project.open(folder) as p:
        p.train(force=True)  # publish the batch again with the overlap
        tokens = {name: p.add_annotator(name) for name in ("ann", "bob", "cy")}
        batch = set(p.state().items.query("split == 'pool' and label.isna()")["id"])
    with Server(folder, log=tmp_path / "server.log") as server:
        pages = {name: log_in(browser.new_context(), server.url, token) for name, token in tokens.items()}
        shown = {name: [] for name in pages}
        done = 0
        for _ in range(60):
            for name, page in pages.items():
                card = page.locator("article.item")
                if done == 12 or card.count() == 0:
                    continue
                shown[name].append(int(card.get_attribute("data-item")))
                page.keyboard.press("2")  # ham
                expect(page.locator("#today")).to_have_text(str(len(shown[name])))
                done += 1
            if done == 12:
                break
            pages["ann"].wait_for_timeout(200)
        assert done == 12, shown
    events = web_events_by_person(folder)
    per_item = events.groupby("item_id")["annotator_id"].agg(list)
    assert len(per_item) == 6 and set(per_item.index) <= batch
    assert all(len(people) == 2 == len(set(people)) for people in per_item)
    assert all(len(items) == len(set(items)) for items in shown.values())


def web_events_by_person(folder):
    from activelabel.project import Project

    with Project.open(folder) as p:
        events = p.state().events
    return events[(events["source"] == "web") & (events["answer"] == "label")]


def test_routed_items_replace_new_ones_and_an_adjudication_closes_them(disputed):
    """The batch keeps its size with routed items in it (each takes a new item's place); adjudicating a routed
    item that waits in the open batch settles it there (it used to hold the batch open, served to nobody)."""
    from fastapi.testclient import TestClient
    from helpers import bearer, set_config

    from activelabel.project import Project
    from activelabel.server import create_app
    from activelabel.store import queue

    folder, ids, boss = disputed
    set_config(folder, relabel_fraction=0.5, max_opinions=3, adjudicate_below=0.75, test_share=0.0, batch_size=10)
    with Project.open(folder) as p:
        p.add_annotator("cy")
        external = p.state().items.set_index("external_id")["id"]
        p.train(force=True)
        with p.store.session(readonly=True) as s:
            before = queue.batch_progress(s)
        assert p.state().cycles[-1].details["relabel"] == 2
    assert before["size"] == 10 and before["left"] == 10
    with TestClient(create_app(folder, retrain=False)) as c:
        r = c.post("/admin/adjudicate", data={"item_id": int(external[ids[0]]), "label": "ham"},
                   headers=bearer(boss), follow_redirects=False)
        assert r.status_code == 303
    with Project.open(folder) as p, p.store.session(readonly=True) as s:
        assert queue.batch_progress(s)["left"] == 9


def test_nothing_is_routed_that_every_active_person_has_answered(disputed, tmp_path):
    """ann and bob (imported names, no login) and boss (the only login) answered the three items: nobody could
    give them another opinion, so none is routed, though the two contested ones would lead otherwise."""
    from helpers import set_config
    from sqlalchemy import select

    from activelabel.project import Project
    from activelabel.store import queue
    from activelabel.store.schema import BatchItem

    folder, ids, boss = disputed
    set_config(folder, relabel_fraction=0.5, max_opinions=5, test_share=0.0)
    pd.DataFrame({"id": ids, "label": ["spam", "ham", "ham"], "who": "boss"}).to_csv(tmp_path / "boss.csv",
                                                                                     index=False)
    with Project.open(folder) as p:
        p.import_labels(tmp_path / "boss.csv", annotator_column="who")
        external = p.state().items.set_index("external_id")["id"]
        p.train(force=True)
        with p.store.session(readonly=True) as s:
            routed = set(s.scalars(select(BatchItem.item_id).where(BatchItem.batch_id == queue.current_batch(s),
                                                                   BatchItem.need > 1)))
    assert not routed & {int(external[i]) for i in ids}


def test_a_routed_item_never_goes_back_to_someone_who_answered_it_in_a_file(disputed):
    """ann answered the contested items in an imported file under her name; given a login, she is never served
    them again when they are routed, while cy (who has not answered them) is."""
    from fastapi.testclient import TestClient
    from helpers import bearer, set_config

    from activelabel.project import Project
    from activelabel.server import create_app

    folder, ids, boss = disputed
    set_config(folder, relabel_fraction=0.5, max_opinions=3, adjudicate_below=0.0, test_share=0.0, batch_size=4,
               reserve_batches=0)
    with Project.open(folder) as p:
        ann, cy = p.add_annotator("ann"), p.add_annotator("cy")  # ann: the imported name, now with a login
        external = p.state().items.set_index("external_id")["id"]
        p.train(force=True)
        assert p.state().cycles[-1].details["relabel"] == 2
    contested_ids = {int(external[i]) for i in ids[:2]}
    with TestClient(create_app(folder, retrain=False)) as c:
        served = []
        for _ in range(4):
            item = c.get("/api/next", headers=bearer(ann)).json()["item"]
            if item is None:
                break
            served.append(item["item_id"])
            c.post("/api/answer", headers=bearer(ann), json={"assignment_id": item["assignment_id"],
                                                             "answer": "label", "label": "ham"})
        assert served and not set(served) & contested_ids
        assert c.get("/api/next", headers=bearer(cy)).json()["item"]["item_id"] in contested_ids


def test_a_revoked_person_does_not_hold_the_batch_open(disputed):
    """ann labels one item in the app and is revoked: nobody active is left who could take the rest of the batch,
    so it counts as closed at once (not after ann's idle time)."""
    from datetime import datetime, timezone

    from fastapi.testclient import TestClient
    from helpers import bearer, run_cli

    from activelabel.project import Project
    from activelabel.server import create_app
    from activelabel.store import queue

    folder, ids, boss = disputed
    with Project.open(folder) as p:
        ann = p.add_annotator("ann")
        p.train(force=True)
    with TestClient(create_app(folder, retrain=False)) as c:
        item = c.get("/api/next", headers=bearer(ann)).json()["item"]
        c.post("/api/answer", headers=bearer(ann), json={"assignment_id": item["assignment_id"], "answer": "label",
                                                         "label": "ham"})
    with Project.open(folder) as p, p.store.session(readonly=True) as s:
        settings = p.config.queue_settings()
        assert not queue.batch_closed(s, settings, datetime.now(timezone.utc))
    assert run_cli("annotator", "revoke", folder, "ann").returncode == 0
    with Project.open(folder) as p, p.store.session(readonly=True) as s:
        assert queue.batch_closed(s, settings, datetime.now(timezone.utc))
