"""The admin's figures say what they count: active time only, labels apart from skips, unsure and undos, learning
curve points with their test-set size and changes, label distribution, a confusion matrix that agrees with
scikit-learn (or one line when the model cannot be read), readable times, and a page that fits a phone. Store-backed tests run on SQLite and PostgreSQL."""

import re
import shutil
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import confusion_matrix

from activelabel.project import Project, reporting
from activelabel.server import create_app
from activelabel.server.admin import when
from activelabel.server.plots import accuracy_svg, axis_limits
from activelabel.store import queue, repo

from helpers import Server, bearer, make_sms_project

SMALL = {"n": 150, "test_size": 40, "seed_pool": 30, "seed_test": 20, "batch_size": 10}


class _Tables(HTMLParser):
    """The text of every cell of every table, by the table's id: {id: [[cell, ...], ...]}."""

    def __init__(self):
        super().__init__()
        self.tables, self.current, self.row, self.cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id"):
            self.current = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self.current is not None:
            self.row = []
            self.current.append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append("".join(self.cell).strip())
            self.cell = None
        elif tag == "table":
            self.current, self.row = None, None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables(html: str) -> dict:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def annotator_id(p, token):
    with p.store.session(readonly=True) as s:
        return repo.annotator_by_token(s, token).id


def serve_and_answer(p, who, served_at, seconds, kind, label=None):
    """Serve ``who`` their next item at ``served_at`` and answer it ``seconds`` later, through the real queue."""
    settings = p.config.queue_settings()
    with p.store.session() as s:
        served = queue.serve_next(s, who, settings, served_at)
    assert served is not None
    with p.store.session() as s:
        outcome = queue.answer(s, served.assignment_id, who, kind, label, p.config.labels,
                               served_at + timedelta(seconds=seconds), settings)
    assert outcome == queue.STORED


def test_time_counts_active_answers_and_counts_leave_out_undone(tmp_path, db_url):
    """One annotator: a label yesterday (40 s), today labels of 30 s and 364 s (the item sat open past the 300 s
    idle time), a skip (10 s), an unsure (20 s), and a label (50 s) undone. Labels 3 (2 today), skips and unsure
    1 each, undone 1; seconds per answer 25 = mean(40, 30, 10, 20): the 364 s answer and the undone one left out."""
    folder = make_sms_project(tmp_path, db_url, **SMALL)
    with Project.open(folder) as p:
        ann, boss = annotator_id(p, p.add_annotator("ann")), p.add_annotator("boss", "admin")
        p.add_annotator("newcomer")
        today = reporting.midnight_utc(datetime.now(UTC))
        serve_and_answer(p, ann, today - timedelta(hours=1), 40, "label", "ham")
        serve_and_answer(p, ann, today + timedelta(seconds=60), 30, "label", "spam")
        serve_and_answer(p, ann, today + timedelta(seconds=120), 364, "label", "ham")
        serve_and_answer(p, ann, today + timedelta(seconds=500), 10, "skip")
        serve_and_answer(p, ann, today + timedelta(seconds=520), 20, "unsure")
        serve_and_answer(p, ann, today + timedelta(seconds=600), 50, "label", "ham")
        with p.store.session() as s:
            assert queue.undo_last(s, ann, p.config.queue_settings(), today + timedelta(seconds=660)) is not None
        serve_and_answer(p, annotator_id(p, boss), today + timedelta(seconds=700), 12, "label", "ham")

        figures = reporting.answer_figures(p, p.state(), today + timedelta(hours=2))
    assert figures["idle_seconds"] == 300
    people = {x["name"]: x for x in figures["people"]}
    assert set(people) == {"ann", "boss", "newcomer"}
    a = people["ann"]
    assert (a["label"], a["label_today"], a["skip"], a["unsure"], a["undone"], a["undone_today"]) == (3, 2, 1, 1, 1, 1)
    assert a["mean_seconds"] == pytest.approx(25.0) and (a["timed"], a["idle"]) == (4, 1)
    assert people["boss"]["label"] == 1 and people["boss"]["mean_seconds"] == pytest.approx(12.0)
    assert people["newcomer"]["label"] == 0 and people["newcomer"]["mean_seconds"] is None
    total = figures["total"]
    assert (total["label_today"], total["skip_today"], total["unsure_today"], total["undone_today"]) == (53, 1, 1, 1)
    assert total["label"] == 50 + 4 and figures["imported"]["label_today"] == 50  # the seed labels came from a file

    with TestClient(create_app(folder, retrain=False)) as c:
        page = c.get("/admin", headers=bearer(boss)).text
    found = tables(page)
    ann_row = next(r for r in found["annotators"] if r[0] == "ann")
    assert ann_row[2:9] == ["3", "1", "1", "1", "2", "25.0", "1"]
    assert "364" not in " ".join(ann_row)
    today_row = next(r for r in found["answer-counts"] if r[0] == "today")
    assert today_row[1:] == ["53", "1", "1", "1"]
    assert "idle time of 300 s" in page and "00:00 UTC" in page
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", page)  # no raw timestamps anywhere
    assert re.search(r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d UTC">', page)


def test_curve_marks_changed_test_sets_and_confusion_matches_sklearn(tmp_path, db_url):
    """Cycles on 20, 26, 26 and 26 test labels, the last after one test label was corrected: the curve says
    n= for each point, marks the 2nd and the 4th as changed (not the 3rd), and the latest model's confusion
    matrix is scikit-learn's on its predictions, its diagonal giving the cycle's stored accuracy."""
    folder = make_sms_project(tmp_path, db_url, **SMALL)
    truth = pd.read_csv(tmp_path / "sms.csv").set_index("id")["label"]
    with Project.open(folder) as p:
        boss = p.add_annotator("boss", "admin")
        items = p.state().items
        unlabeled = items[(items["split"] == "test") & items["label"].isna()]["external_id"][:6]
        pd.DataFrame({"id": unlabeled, "label": truth[unlabeled].to_numpy()}).to_csv(tmp_path / "more.csv", index=False)
        p.import_labels(tmp_path / "more.csv")
        p.train()
        p.train(force=True)
        one = unlabeled.iloc[0]
        flipped = "spam" if truth[one] == "ham" else "ham"
        pd.DataFrame({"id": [one], "label": [flipped]}).to_csv(tmp_path / "fix.csv", index=False)
        p.import_labels(tmp_path / "fix.csv")  # a second answerer, newer: the item's label changes
        p.train(force=True)

        st = p.state()
        status = reporting.status(p, st)
        curve = status["curve"]
        assert [c["test_labels"] for c in curve] == [20, 26, 26, 26]
        assert [c["test_changed"] for c in curve] == [False, True, False, True]
        good = [c for c in st.cycles if c.error is None]
        assert [len(t) for t in reporting.cycle_test_sets(p, st, good)] == [20, 26, 26, 26]

        found = reporting.confusion(p, st)
        rows = np.flatnonzero((st.items["split"] == "test").to_numpy() & st.items["label"].notna().to_numpy())
        predicted, _ = p.predictions(st.items)
        expected = confusion_matrix(st.items["label"].to_numpy()[rows].astype(str), predicted[rows].astype(str),
                                    labels=["spam", "ham"])
        assert found["n"] == 26 and found["labels"] == ["spam", "ham"] and found["error"] is None
        assert np.array_equal(np.array(found["matrix"]), expected)
        assert found["accuracy"] == pytest.approx(good[-1].accuracy)
        distribution = {d["label"]: d for d in reporting.label_distribution(p, st)}
        live = st.items
        for label in ("spam", "ham"):
            assert distribution[label]["pool"] == int(((live["split"] == "pool") & (live["label"] == label)).sum())
            assert distribution[label]["test"] == int(((live["split"] == "test") & (live["label"] == label)).sum())
        assert sum(d["given"] for d in distribution.values()) == 30 + 26 + 1  # every label answer, none undone

    with TestClient(create_app(folder, retrain=False)) as c:
        page = c.get("/admin", headers=bearer(boss)).text
        shutil.rmtree(folder / "models")  # a model that cannot be read: one line in its card, the page still works
        broken = c.get("/admin", headers=bearer(boss))
    assert broken.status_code == 200 and 'id="confusion-error"' in broken.text and 'id="cycle-table"' in broken.text
    found_tables = tables(page)
    assert [r[3:5] for r in found_tables["cycle-table"][1:]] == [["20", "first"], ["26", "changed"], ["26", "same"],
                                                               ["26", "changed"]]
    assert "n=20" in page and "n=26" in page and "test set changed since the previous point" in page
    cells = [[int(v) for v in r[1:]] for r in found_tables["confusion"][1:]]
    assert cells == expected.tolist()
    assert [r[0] for r in found_tables["label-table"][1:]] == ["spam", "ham"]


def test_one_cycle_plot_is_not_a_dot_on_a_narrow_axis():
    """One cycle at 40 labels: x runs from 0 past 40 (not 38-42), y from a round value below the interval to 1;
    the point shows its interval and how many test labels it rests on."""
    point = {"labels_used": 40, "accuracy": 0.9, "accuracy_ci": [0.8, 0.97], "test_labels": 30}
    (x_low, x_high), (y_low, y_high) = axis_limits([point])
    assert x_low == 0 and x_high >= 44 and y_high == 1.0 and y_low == pytest.approx(0.7)
    assert axis_limits([point | {"accuracy": 0.5, "accuracy_ci": [0.3, 0.7]}])[1] == (0.0, 1.0)
    svg = accuracy_svg([point])
    assert svg.startswith("<svg") and "n=30" in svg and "95% interval" in svg and "38" not in re.findall(
        r">([\d.]+)<", svg)


def test_times_read_as_people_read_them():
    at = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    five = when(at - timedelta(minutes=5, seconds=3), at)
    assert ">5 min ago<" in five and 'title="2026-11-24 11:54 UTC"' in five
    old = when(datetime(2026, 11, 22, 9, 30, 12, 16139), at)  # naive means UTC
    assert '>2026-11-22 09:30 UTC<' in old and 'class="local"' in old and 'class' not in five
    assert ">just now<" in when(at, at) and when(None, at) == ""


def test_admin_page_fits_a_phone(tmp_path, browser):
    """The admin page at 375 px wide: nothing wider than the screen; the wide annotator table scrolls in its card."""
    from playwright.sync_api import expect

    folder = make_sms_project(tmp_path, **SMALL)
    with Project.open(folder) as p:
        boss = p.add_annotator("boss", "admin")
        for name in ("an annotator with a rather long name", "another-annotator-with-a-long-name"):
            p.add_annotator(name)
    with Server(folder, log=tmp_path / "server.log") as server:
        page = browser.new_page(viewport={"width": 375, "height": 740})
        page.goto(server.url + "/login")
        page.fill("#token", boss)
        page.click("button[type=submit]")
        expect(page).to_have_url(server.url + "/admin")
        expect(page.locator("#annotators")).to_contain_text("another-annotator-with-a-long-name")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        box = page.locator("#annotators-card").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
        wrapper = page.locator("#annotators-card .scroll")
        assert wrapper.evaluate("e => getComputedStyle(e).overflowX") == "auto"


def test_stopping_advice_never_compares_accuracies_on_different_test_sets(tmp_path):
    """Twenty wrong test labels arrive between two cycles: accuracy falls some 40 points, which the plateau rule
    used to read as "gained less than 0.5 points" and advise stopping. It now waits for three cycles on the new
    test set, says so, and fires again once they agree."""
    from helpers import set_config

    folder = make_sms_project(tmp_path, **SMALL)
    set_config(folder, batch_size=2)  # a cycle counts for the stopping rules once it adds half a batch: one label
    truth = pd.read_csv(tmp_path / "sms.csv").set_index("id")["label"]
    with Project.open(folder) as p:
        items = p.state().items
        pool = iter(items[(items["split"] == "pool") & items["label"].isna()]["external_id"])
        test = items[(items["split"] == "test") & items["label"].isna()]["external_id"][:20]

        def add(ids, flip=False):
            labels = truth[ids].to_numpy()
            labels = np.where(labels == "ham", "spam", "ham") if flip else labels
            pd.DataFrame({"id": ids, "label": labels}).to_csv(tmp_path / "more.csv", index=False)
            p.import_labels(tmp_path / "more.csv")
            p.train()

        add([next(pool)])
        first = reporting.status(p)["latest"]["accuracy"]
        add(list(test) + [next(pool)], flip=True)
        status = reporting.status(p)
        assert status["latest"]["accuracy"] < first - 0.2  # the fall the old rule called a plateau
        assert not any(d["rule"] == "plateau" for d in status["stop"])
        assert "test set changed at cycle 3" in status["advice"] and status["advice"].startswith("continue")
        add([next(pool)])
        add([next(pool)])
        status = reporting.status(p)
        assert [c["test_changed"] for c in status["curve"]] == [False, False, True, False, False]
        assert any(d["rule"] == "plateau" for d in status["stop"]), status["advice"]


def test_budget_advice_counts_what_is_spent_now_not_at_the_last_cycle(tmp_path):
    """Labels imported after the last cycle spend money: the advice says the budget is spent, as the money
    figure beside it does (it used to judge the money recorded when the cycle trained)."""
    from helpers import set_config

    folder = make_sms_project(tmp_path, **SMALL)  # 50 answers at 0.10: 5.00 spent
    set_config(folder, budget=5.5)
    truth = pd.read_csv(tmp_path / "sms.csv").set_index("id")["label"]
    with Project.open(folder) as p:
        assert reporting.status(p)["advice"].startswith("continue")
        items = p.state().items
        more = items[(items["split"] == "pool") & items["label"].isna()]["external_id"][:10]
        pd.DataFrame({"id": more, "label": truth[more].to_numpy()}).to_csv(tmp_path / "more.csv", index=False)
        p.import_labels(tmp_path / "more.csv")
        status = reporting.status(p)
    assert status["money_spent"] == pytest.approx(6.0)
    assert any(d["rule"] == "money_budget" for d in status["stop"]), status["advice"]
