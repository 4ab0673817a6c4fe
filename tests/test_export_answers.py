"""Exports for auditing: every answer event with who, what, when, how long and where from, undos linked to what
they undid; downloads named for the project, format and day, with no temporary file left behind; a malformed
Label Studio annotation is one line. Store-backed tests run on SQLite and PostgreSQL."""

import json
import os
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from activelabel.errors import MalformedFileError, UnwritableFileError
from activelabel.project import Project
from activelabel.server.admin import download_name
from activelabel.store import queue, repo

from helpers import Server, bearer, make_sms_project, one_line_error, run_cli

SMALL = {"n": 120, "test_size": 30, "seed_pool": 20, "seed_test": 10, "batch_size": 10}


def answer_next(p, who, at, kind, label=None, seconds=7):
    settings = p.config.queue_settings()
    with p.store.session() as s:
        served = queue.serve_next(s, who, settings, at)
    with p.store.session() as s:
        assert queue.answer(s, served.assignment_id, who, kind, label, p.config.labels, at + timedelta(seconds=seconds),
                            settings) == queue.STORED


def audited_project(tmp_path, db_url):
    """Seed labels from a file, labels with an annotator column from a second file, and web answers of every
    kind by two people, one of them undone."""
    folder = make_sms_project(tmp_path, db_url, **SMALL)
    with Project.open(folder) as p:
        tokens = {name: p.add_annotator(name, role) for name, role in (("ann", "annotator"), ("boss", "admin"))}
        with p.store.session(readonly=True) as s:
            ids = {name: repo.annotator_by_token(s, t).id for name, t in tokens.items()}
        items = p.state().items
        free = items[(items["split"] == "pool") & items["label"].isna()]["external_id"]
        pd.DataFrame({"id": free[-2:], "label": ["ham", "spam"], "who": ["carol", "dan"], "secs": [4.5, 6]}).to_csv(
            tmp_path / "team.csv", index=False)
        p.import_labels(tmp_path / "team.csv", annotator_column="who", seconds_column="secs")
        t = datetime.now(UTC) - timedelta(minutes=10)
        answer_next(p, ids["ann"], t, "label", "spam", seconds=3.25)
        answer_next(p, ids["ann"], t + timedelta(seconds=10), "skip")
        answer_next(p, ids["ann"], t + timedelta(seconds=20), "unsure")
        answer_next(p, ids["boss"], t + timedelta(seconds=30), "label", "ham", seconds=364)
        with p.store.session() as s:
            assert queue.undo_last(s, ids["boss"], p.config.queue_settings(), t + timedelta(seconds=400))
    return folder, tokens


def test_answers_export_holds_every_event_with_retractions_linked(tmp_path, db_url):
    """``activelabel export FOLDER out.csv --format answers``: one row per stored event, in order, with the item's
    external id, the annotator's name, answer, label, seconds, UTC time and source equal to what is stored; the undo
    names the event it retracts and that event names the undo. JSONL and Parquet by suffix hold the same rows."""
    folder, _ = audited_project(tmp_path, db_url)
    out = tmp_path / "answers.csv"
    done = run_cli("export", folder, out, "--format", "answers")
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(out)
    with Project.open(folder) as p:
        events = p.state().events
        with p.store.session(readonly=True) as s:
            names = dict(zip(repo.annotators_frame(s)["id"], repo.annotators_frame(s)["name"]))
        items = p.state().items.set_index("id")
        assert p.export(tmp_path / "answers.parquet", "answers") == len(events)
        assert p.export(tmp_path / "answers.jsonl", "answers") == len(events)
    assert list(got.columns) == ["event", "item", "split", "annotator", "answer", "label", "seconds", "time", "source",
                                 "retracts", "retracted_by"]
    assert got["event"].tolist() == events["id"].tolist() and len(got) == 30 + 2 + 4 + 1
    assert got["item"].tolist() == items.loc[events["item_id"], "external_id"].tolist()
    assert got["split"].tolist() == items.loc[events["item_id"], "split"].tolist()
    assert got["answer"].tolist() == events["answer"].tolist()
    assert got["label"].fillna("").tolist() == events["label"].fillna("").tolist()
    assert np.allclose(got["seconds"].to_numpy(float), events["seconds"].to_numpy(float), equal_nan=True)
    assert got["source"].tolist() == events["source"].tolist()
    assert got["annotator"].fillna("").tolist() == events["annotator_id"].map(names).fillna("").tolist()
    stored = pd.to_datetime(events["created_at"], utc=True)
    assert (pd.to_datetime(got["time"], utc=True) == stored).all() and got["time"].str.endswith("+00:00").all()
    web = got[got["source"] == "web"]
    assert web["answer"].tolist() == ["label", "skip", "unsure", "label", "retract"]
    assert web["annotator"].tolist() == ["ann", "ann", "ann", "boss", "boss"]
    undo, undone = web.iloc[4], web.iloc[3]
    assert undo["retracts"] == undone["event"] and undone["retracted_by"] == undo["event"]
    assert undone["seconds"] == 364 and web.iloc[0]["seconds"] == 3.25
    assert got.drop(index=[undo.name, undone.name])[["retracts", "retracted_by"]].isna().all().all()
    assert set(got["annotator"].dropna()) == {"carol", "dan", "ann", "boss"}
    for frame in (pd.read_parquet(tmp_path / "answers.parquet"), pd.read_json(tmp_path / "answers.jsonl", lines=True)):
        assert frame["event"].tolist() == got["event"].tolist() and list(frame.columns) == list(got.columns)
        assert frame["retracts"].dropna().astype(int).tolist() == [int(undone["event"])]


def test_downloads_carry_project_format_and_date_and_leave_no_temporary_file(tmp_path, db_url, monkeypatch):
    """/admin/export on a real server: ``proj-labels-<date>.csv`` with every item, ``proj-answers-<date>.csv``
    with every event, and the server's temporary folder as empty afterwards as before."""
    folder, tokens = audited_project(tmp_path, db_url)
    scratch = tmp_path / "server-tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the server's tempfile.gettempdir()
    with Project.open(folder) as p:
        n_events = len(p.state().events)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    with Server(folder, log=tmp_path / "server.log") as server:
        for fmt, name, rows in (("csv", f"proj-labels-{day}.csv", SMALL["n"]),
                                ("answers", f"proj-answers-{day}.csv", n_events),
                                ("labelstudio", f"proj-labelstudio-{day}.json", None)):
            request = urllib.request.Request(f"{server.url}/admin/export?format={fmt}", headers=bearer(tokens["boss"]))
            with urllib.request.urlopen(request, timeout=30) as r:
                assert r.status == 200
                assert f'filename="{name}"' in r.headers["content-disposition"]
                body = r.read().decode()
            if rows is not None:
                assert len(body.strip().splitlines()) == rows + 1
            else:
                assert len(json.loads(body)) == SMALL["n"]
        deadline = time.monotonic() + 10
        while os.listdir(scratch) and time.monotonic() < deadline:  # removed once the response is sent
            time.sleep(0.05)
        assert os.listdir(scratch) == []
    assert download_name(folder, "prodigy", datetime(2026, 11, 24, 23, 30, tzinfo=UTC)) == "proj-prodigy-2026-11-24.jsonl"


def test_label_studio_annotation_that_is_not_an_object_is_one_line(tmp_path):
    """An annotation that is a string, a result that is not a list, a result entry that is not an object: each a
    one-line error naming the task index, and nothing stored."""
    folder = make_sms_project(tmp_path, **SMALL)
    with Project.open(folder) as p:
        before = len(p.state().events)
        ext = p.state().items["external_id"].tolist()[:2]

    def tasks(bad):
        good = {"data": {"id": ext[0], "text": "x"}, "annotations": [{"result": []}]}
        return [good, {"data": {"id": ext[1], "text": "y"}, "annotations": [bad]}]

    path = tmp_path / "ls.json"
    path.write_text(json.dumps(tasks("spam")))
    one_line_error(run_cli("import-labels", folder, path), "ls.json", "task index 1", "annotation 1",
                   "must be an object, found a string")
    with Project.open(folder) as p:
        for bad, fragment in (({"result": "spam"}, "'result' must be a list of objects, found a string"),
                              ({"result": [["spam"]]}, "every entry of 'result' must be an object, found a list")):
            path.write_text(json.dumps(tasks(bad)))
            with pytest.raises(MalformedFileError, match="task index 1") as error:
                p.import_labels(path)
            assert fragment in str(error.value) and "\n" not in str(error.value)
        with pytest.raises(UnwritableFileError, match="does not exist"):
            p.export(tmp_path / "no" / "such" / "answers.csv", "answers")
        assert len(p.state().events) == before
