"""Corrections from the history and notes on items, in the store (SQLite file and PostgreSQL) and through the app.

A correction is appended (a retraction and a new answer), counts as the
item's label everywhere the project derives labels (training, exports), and
never counts the item twice in the queue's bookkeeping (assignments, the
batch's ``done`` flags). Notes are append-only and feed the admin's review list.
"""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from helpers import bearer, make_sms_project
from sqlalchemy import func, select

from activelabel.errors import InvalidParameterError, UnknownItemError
from activelabel.project import Project
from activelabel.server import create_app
from activelabel.server.serving import markdown_html, show_invisible
from activelabel.store import history, notes, queue, repo
from activelabel.store.schema import Annotation, Assignment, BatchItem, ItemNote

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def team(tmp_path, db_url):
    """A trained SMS project (batch of 30) with two annotators; their ids and tokens."""
    folder = make_sms_project(tmp_path, db_url)
    p = Project.open(folder)
    tokens = {n: p.add_annotator(n) for n in ("ann", "bob")}
    with p.store.session(readonly=True) as s:
        ids = {n: repo.annotator_by_token(s, t).id for n, t in tokens.items()}
    yield p, ids, tokens
    p.close()


def serve_and_answer(p, who, kind="label", label="ham", at=T0):
    """Serve ``who`` their next item and answer it; the item id."""
    settings = p.config.queue_settings()
    with p.store.session() as s:
        served = queue.serve_next(s, who, settings, at)
    with p.store.session() as s:
        assert queue.answer(s, served.assignment_id, who, kind, label, p.config.labels, at, settings) == queue.STORED
    return served.item_id


def bookkeeping(p, item_id):
    """The item's assignments (outcomes) and its ``done`` flag in the current batch."""
    with p.store.session(readonly=True) as s:
        outcomes = s.scalars(select(Assignment.outcome).where(Assignment.item_id == item_id)
                             .order_by(Assignment.id)).all()
        batch = queue.current_batch(s)
        done = s.scalar(select(BatchItem.done).where(BatchItem.batch_id == batch, BatchItem.item_id == item_id))
    return outcomes, done


def label_of(p, item_id):
    items = p.state().items.set_index("id")
    return items.loc[item_id, "label"]


def correct(p, answer_id, who, kind, label=None):
    with p.store.session() as s:
        return history.correct_answer(s, answer_id, who, kind, label, p.config.labels, T0 + timedelta(minutes=1),
                                      p.config.queue_settings())


def test_a_correction_is_the_items_label_everywhere_and_counts_once(team, tmp_path):
    """Label -> other label: retraction and new answer appended; the state, training data and export see the
    new label; the item keeps one assignment (outcome label) and its batch ``done`` flag; correcting the old
    answer again, someone else's answer, an unknown label or a huge id is refused in one line; the same
    answer again stores nothing; an undo after the correction retracts the correction."""
    p, ids, _ = team
    ann, bob = ids["ann"], ids["bob"]
    item = serve_and_answer(p, ann, "label", "ham")
    second = serve_and_answer(p, ann, "label", "spam", T0 + timedelta(seconds=5))
    with p.store.session(readonly=True) as s:
        recent = history.recent_answers(s, ann)
    assert [(r["item_id"], r["label"], r["changed"]) for r in recent] == [(second, "spam", False), (item, "ham", False)]
    old = recent[1]["id"]
    assert bookkeeping(p, item) == (["label"], True)
    paid = p.status()["money_spent"]

    assert correct(p, old, ann, "label", "spam") == history.CORRECTED
    assert p.status()["money_spent"] == paid  # changing one's mind costs nothing: each answer is paid once
    assert label_of(p, item) == "spam"
    assert bookkeeping(p, item) == (["label"], True)  # one assignment, still labeled once, still done
    with p.store.session(readonly=True) as s:
        events = s.execute(select(Annotation.answer, Annotation.label, Annotation.retracts_id)
                           .where(Annotation.item_id == item).order_by(Annotation.id)).all()
        recent = history.recent_answers(s, ann)
        labeled_once = queue.pool_labeled(s)
    assert [tuple(e) for e in events] == [("label", "ham", None), ("retract", None, old), ("label", "spam", None)]
    assert (recent[0]["item_id"], recent[0]["label"], recent[0]["changed"]) == (item, "spam", True)
    assert labeled_once == 40 + 2  # the seed set and two items: the corrected one counts once
    p.export(tmp_path / "out.csv", "csv")
    exported = pd.read_csv(tmp_path / "out.csv")
    external = p.state().items.set_index("id").loc[item, "external_id"]
    assert tuple(exported.set_index("id").loc[external, ["label", "votes"]]) == ("spam", 1)  # one vote, the new one

    for bad, who, kind, label, says in [(old, ann, "label", "ham", "already undone or corrected"),
                                        (recent[0]["id"], bob, "label", "ham", "of yours"),
                                        (recent[0]["id"], ann, "label", "eggs", "unknown label"),
                                        (recent[0]["id"], ann, "maybe", None, "label, skip or unsure"),
                                        (2**70, ann, "skip", None, "of yours")]:
        with pytest.raises(InvalidParameterError, match=says):
            correct(p, bad, who, kind, label)
    with p.store.session(readonly=True) as s:
        before = s.scalar(select(func.count()).select_from(Annotation))
    assert correct(p, recent[0]["id"], ann, "label", "spam") == history.UNCHANGED
    with p.store.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Annotation)) == before

    with p.store.session() as s:  # undo now retracts the newest standing answer: the second item's
        assert queue.undo_last(s, ann, p.config.queue_settings(), T0 + timedelta(minutes=2)) == item
    assert pd.isna(label_of(p, item))
    assert bookkeeping(p, item)[0][0] == "undone"


def test_a_label_corrected_to_skip_goes_to_someone_else_and_back(team):
    """Label -> skip reopens the item in the batch (served to another annotator, never back to the one who
    skipped); skip -> label closes it again, with still one assignment of this annotator."""
    p, ids, _ = team
    ann, bob = ids["ann"], ids["bob"]
    item = serve_and_answer(p, ann, "label", "ham")
    with p.store.session(readonly=True) as s:
        answer_id = history.recent_answers(s, ann)[0]["id"]
    assert correct(p, answer_id, ann, "skip") == history.CORRECTED
    assert bookkeeping(p, item) == (["skip"], False)
    assert pd.isna(label_of(p, item))
    settings = p.config.queue_settings()
    with p.store.session() as s:
        assert queue.serve_next(s, bob, settings, T0 + timedelta(minutes=2)).item_id == item  # first in rank
    with p.store.session() as s:
        answer_id = history.recent_answers(s, ann)[0]["id"]
    assert correct(p, answer_id, ann, "label", "spam") == history.CORRECTED
    outcomes, done = bookkeeping(p, item)
    assert outcomes[0] == "label" and done  # ann's one assignment labeled again; bob's is still open
    assert label_of(p, item) == "spam"


def test_notes_and_the_review_list(team):
    """Comments and flags are stored with who and when (a comment needs text, 2,000 characters at most, on a
    known item); the review list shows flagged, commented, skipped and unsure items with counts, notes and the
    current label, newest first, filtered by kind; an undone skip leaves it."""
    p, ids, _ = team
    ann, bob = ids["ann"], ids["bob"]
    flagged = serve_and_answer(p, bob, "label", "spam", T0)
    skipped = serve_and_answer(p, ann, "skip", None, T0 + timedelta(seconds=1))
    unsure = serve_and_answer(p, ann, "unsure", None, T0 + timedelta(seconds=2))
    with p.store.session() as s:
        notes.add_note(s, flagged, bob, "flag", "  not English  ", T0 + timedelta(seconds=3))
        notes.add_note(s, flagged, ann, "comment", "the link looks like phishing", T0 + timedelta(seconds=4))
        notes.add_note(s, unsure, ann, "flag", "", T0 + timedelta(seconds=5))
    for kind, text, item, error, says in [("comment", "  ", flagged, InvalidParameterError, "empty"),
                                         ("flag", "x" * 2001, flagged, InvalidParameterError, "2,000"),
                                         ("shout", "hey", flagged, InvalidParameterError, "comment or a flag"),
                                         ("flag", "a\x00b", flagged, InvalidParameterError, "NUL"),
                                         ("flag", "", 10**9, UnknownItemError, "no item"),
                                         ("flag", "", 2**70, UnknownItemError, "no item")]:
        with pytest.raises(error, match=says), p.store.session() as s:
            notes.add_note(s, item, ann, kind, text, T0)
    with p.store.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(ItemNote)) == 3
        rows = notes.review_items(s)
        flags = notes.review_items(s, "flag")
        skips = notes.review_items(s, "skip")
        with pytest.raises(InvalidParameterError, match="show must be"):
            notes.review_items(s, "everything")
    assert [r["item_id"] for r in rows] == [unsure, flagged, skipped]  # newest activity first
    by_id = {r["item_id"]: r for r in rows}
    assert (by_id[skipped]["skips"], by_id[unsure]["unsure"], by_id[unsure]["flags"]) == (1, 1, 1)
    assert by_id[flagged]["label"] == "spam" and by_id[flagged]["flags"] == 1 and by_id[flagged]["comments"] == 1
    assert [(n["kind"], n["annotator"], n["text"]) for n in by_id[flagged]["notes"]] == \
        [("flag", "bob", "not English"), ("comment", "ann", "the link looks like phishing")]
    assert [r["item_id"] for r in flags] == [unsure, flagged] and [r["item_id"] for r in skips] == [skipped]
    with p.store.session() as s:  # undo ann's last answer (unsure): it leaves the unsure count
        queue.undo_last(s, ann, p.config.queue_settings(), T0 + timedelta(minutes=1))
    with p.store.session(readonly=True) as s:
        assert [r["item_id"] for r in notes.review_items(s, "unsure")] == []


def test_the_app_corrects_takes_notes_and_shows_the_review_list(team):
    """Through the routes: the history fragment lists the answer, /label/correct changes it, a note on an item
    never served to the caller is refused (404), bad input says what is wrong (400), the review page is for
    admins only and shows the flag, escaped."""
    p, _, tokens = team
    admin = p.add_annotator("boss", "admin")
    folder = p.folder
    p.close()
    with TestClient(create_app(folder, retrain=False)) as c:
        who = bearer(tokens["ann"])
        item = c.get("/api/next", headers=who).json()["item"]
        assert c.post("/api/answer", json={"assignment_id": item["assignment_id"], "answer": "label", "label": "ham"},
                      headers=who).json() == {"stored": True}
        page = c.get("/label/history", headers=who).text
        assert f'data-item="{item["item_id"]}"' in page
        answer_id = int(page.split('name="answer_id" value="')[1].split('"')[0])
        r = c.post("/label/correct", data={"answer_id": answer_id, "choice": "label:spam"}, headers=who)
        assert r.status_code == 200 and "now “spam”" in r.text
        r = c.post("/label/correct", data={"answer_id": answer_id, "choice": "label:spam"}, headers=who)
        assert r.status_code == 400 and "already undone or corrected" in r.json()["detail"]
        r = c.post("/label/note", data={"item_id": item["item_id"], "kind": "flag", "text": "<b>odd</b>"}, headers=who)
        assert r.status_code == 200 and "Flagged" in r.text
        other = item["item_id"] + 1
        assert c.post("/label/note", data={"item_id": other, "kind": "flag"}, headers=who).status_code == 404
        r = c.post("/label/note", data={"item_id": item["item_id"], "kind": "comment", "text": ""}, headers=who)
        assert r.status_code == 400 and "empty" in r.json()["detail"]
        assert c.get("/admin/review", headers=who).status_code == 403
        review = c.get("/admin/review?show=flag", headers=bearer(admin)).text
        assert "&lt;b&gt;odd&lt;/b&gt;" in review and "<b>odd</b>" not in review
        assert f'data-item="{item["item_id"]}"' in review
        assert c.get("/admin/review?show=<script>", headers=bearer(admin)).status_code == 200
    with Project.open(folder) as p2:
        assert p2.state().items.set_index("id").loc[item["item_id"], "label"] == "spam"


def test_hidden_characters_are_shown_and_markdown_is_safe():
    """Bidi overrides, zero-width and control characters become visible markers (escaped text around them);
    Markdown keeps no raw HTML and makes no javascript: link."""
    shown = str(show_invisible("pay\u202egnp.exe <b>\u200bx\x07\ty\nz</b>"))
    assert shown.count('class="ctl"') == 3
    assert "⟨U+202E⟩" in shown and "⟨U+200B⟩" in shown and "⟨U+0007⟩" in shown
    assert "&lt;b&gt;" in shown and "\t" in shown and "\n" in shown and "\u202e" not in shown
    assert str(show_invisible("plain & simple")) == "plain &amp; simple"
    html = str(markdown_html("**Spam** is <img src=x onerror=alert(1)> [x](javascript:alert(1)) [ok](https://a.b)"))
    assert "<strong>Spam</strong>" in html and "<img" not in html and "&lt;img" in html
    assert 'href="javascript' not in html and 'href="https://a.b"' in html and 'rel="noopener noreferrer"' in html
