"""The project commands end to end on real data, and every bad input: one line, non-zero exit, nothing changed."""

import json

import pandas as pd
import pytest
from PIL import Image
from sqlalchemy import func, select

from activelabel.project import Project
from activelabel.store.schema import Base

from conftest import SMS_PARQUET
from helpers import one_line_error, run_cli

SMS = SMS_PARQUET


def answer(batch_file, truth: dict, out):
    """Label an issued batch the way an outside service would: id and the true label of its text."""
    batch = pd.read_json(batch_file, lines=True)
    pd.DataFrame({"id": batch["id"], "label": batch["text"].map(truth)}).to_csv(out, index=False)
    return batch


def ok(out):
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_end_to_end_on_sms_spam(tmp_path, db_url):
    """init -> import -> seed labels -> train -> query -> import-labels -> train -> status -> export."""
    truth = pd.read_parquet(SMS).drop_duplicates("text").set_index("text")["label"].to_dict()
    proj = tmp_path / "proj"
    ok(run_cli("init", proj, "--labels", "spam,ham", "--batch-size", "100", "--price-per-label", "0.05",
               *(["--db", db_url] if db_url else [])))
    out = ok(run_cli("import", proj, SMS, "--text-column", "text"))
    n_items = len(truth)
    assert f"imported {n_items:,} new items (453 held out for testing)" in out.replace("\n", " ")
    assert "0 new items" in ok(run_cli("import", proj, SMS, "--text-column", "text"))

    ok(run_cli("query", proj, "-n", "200", "--out", tmp_path / "seed.jsonl"))
    ok(run_cli("query", proj, "-n", "300", "--test", "--out", tmp_path / "test.jsonl"))
    seed = answer(tmp_path / "seed.jsonl", truth, tmp_path / "seed.csv")
    test = answer(tmp_path / "test.jsonl", truth, tmp_path / "test.csv")
    assert (seed["strategy"] == "random").all() and (test["split"] == "test").all()
    assert "stored 200 labels" in ok(run_cli("import-labels", proj, tmp_path / "seed.csv"))
    ok(run_cli("import-labels", proj, tmp_path / "test.csv"))

    assert "cycle 1: 200 training labels; test accuracy" in ok(run_cli("train", proj))
    ok(run_cli("query", proj, "-n", "100", "--out", tmp_path / "b1.jsonl"))
    b1 = answer(tmp_path / "b1.jsonl", truth, tmp_path / "b1.csv")
    assert (b1["strategy"] == "default").all() and b1["random"].sum() == 10
    assert not set(b1["id"]) & set(seed["id"])
    ok(run_cli("import-labels", proj, tmp_path / "b1.csv"))
    assert "cycle 2: 300 training labels" in ok(run_cli("train", proj))

    status = json.loads(ok(run_cli("status", proj, "--json")))
    assert (status["items"], status["pool"], status["test"]) == (n_items, n_items - 453, 453)
    assert (status["labeled"], status["test_labeled"], status["cycles"]) == (300, 300, 2)
    assert status["money_spent"] == pytest.approx(600 * 0.05)
    latest = status["latest"]
    assert latest["accuracy"] > 0.9 and latest["accuracy_ci"][0] < latest["accuracy"] < latest["accuracy_ci"][1]
    assert [c["labels_used"] for c in status["curve"]] == [200, 300]
    assert "SQLite" not in ok(run_cli("status", proj)) and "test accuracy" in ok(run_cli("status", proj))

    for name in ("all.csv", "all.jsonl", "all.parquet", "ls.json"):
        ok(run_cli("export", proj, tmp_path / name))
    ok(run_cli("export", proj, tmp_path / "prodigy.jsonl", "--format", "prodigy"))
    table = pd.read_csv(tmp_path / "all.csv")
    assert len(table) == n_items and table["label"].notna().sum() == 600
    assert set(table["prediction"]) == {"spam", "ham"} and table["confidence"].between(0.5, 1).all()
    labeled = table.dropna(subset=["label"])
    assert (labeled["label"] == labeled["text"].map(truth)).all()
    assert (table["prediction"] == table["text"].map(truth)).mean() > 0.9
    assert pd.read_parquet(tmp_path / "all.parquet").shape == table.shape
    assert len(pd.read_json(tmp_path / "all.jsonl", lines=True)) == n_items
    tasks = json.loads((tmp_path / "ls.json").read_text())
    assert len(tasks) == n_items and all(t["predictions"][0]["result"][0]["value"]["choices"][0] in ("spam", "ham")
                                         for t in tasks)
    assert sum("annotations" in t for t in tasks) == 600
    prodigy = [json.loads(line) for line in (tmp_path / "prodigy.jsonl").read_text().splitlines()]
    assert sum(p.get("answer") == "accept" for p in prodigy) == 600 and prodigy[0]["meta"]["id"]

    token = ok(run_cli("annotator", "add", proj, "alice", "--role", "admin")).strip().splitlines()[-1]
    assert len(token) >= 32
    with Project.open(proj) as p:
        assert p.add_annotator("bob") != token


def test_label_studio_and_prodigy_answers_come_back(tmp_path):
    """Tasks exported for Label Studio and Prodigy, answered there, import back onto the right items."""
    frame = pd.read_parquet(SMS).drop_duplicates("text").head(120)
    frame.to_parquet(tmp_path / "few.parquet")
    proj = tmp_path / "proj"
    ok(run_cli("init", proj, "--labels", "spam,ham"))
    ok(run_cli("import", proj, tmp_path / "few.parquet", "--text-column", "text"))
    ok(run_cli("export", proj, tmp_path / "ls.json"))
    ok(run_cli("export", proj, tmp_path / "p.jsonl", "--format", "prodigy"))
    truth = frame.set_index("text")["label"].to_dict()

    tasks = json.loads((tmp_path / "ls.json").read_text())[:10]
    for i, t in enumerate(tasks):  # what Label Studio's JSON export holds after two people labeled
        result = [{"from_name": "label", "to_name": "text", "type": "choices",
                   "value": {"choices": [truth[t["data"]["text"]]]}}]
        t["annotations"] = [{"completed_by": {"email": "ann@example.org"}, "lead_time": 2.5, "result": result},
                            {"completed_by": 7, "was_cancelled": i == 0, "result": [] if i == 0 else result}]
    (tmp_path / "ls_done.json").write_text(json.dumps(tasks))
    out = ok(run_cli("import-labels", proj, tmp_path / "ls_done.json"))
    assert "stored 19 labels and 1 skips" in out

    lines = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()][50:56]
    answers = ["accept", "accept", "accept", "accept", "ignore", "reject"]
    for task, a in zip(lines, answers):
        task |= {"answer": a, "_annotator_id": "proj-bob"}
        if a == "accept":
            task["accept"] = [truth[task["text"]]]
    (tmp_path / "p_done.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = ok(run_cli("import-labels", proj, tmp_path / "p_done.jsonl"))
    assert "stored 4 labels and 1 skips, 1 rows without a label ignored" in out

    with Project.open(proj) as p:
        st = p.state()
        texts = p.export(tmp_path / "check.csv")
    check = pd.read_csv(tmp_path / "check.csv").dropna(subset=["label"])
    assert texts == 120 and len(check) == 14
    assert (check["label"] == check["text"].map(truth)).all()
    names = set(st.events["annotator_id"].dropna())
    assert len(names) == 3  # labelstudio:ann@example.org, labelstudio:7, prodigy:proj-bob


@pytest.fixture
def project_with_items(tmp_path):
    proj = tmp_path / "proj"
    ok(run_cli("init", proj, "--labels", "spam,ham"))
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["one", "two", "three"]}).to_csv(tmp_path / "items.csv", index=False)
    ok(run_cli("import", proj, tmp_path / "items.csv", "--text-column", "text", "--id-column", "id"))
    return proj


def snapshot(proj) -> dict:
    with Project.open(proj) as p, p.store.session() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables}


CASES = {
    "malformed CSV line": ("items.csv", b"id,text\nd,four\ne,five,extra\n", "line 3: expected 2 fields"),
    "malformed JSONL line": ("items.jsonl", b'{"id": "d", "text": "four"}\n{"id": "e", "text": }\n',
                             "items.jsonl: line 2: not valid JSON"),
    "missing column": ("items.csv", b"id,body\nd,four\n", "no column 'text'; columns are id, body"),
    "duplicate id": ("items.csv", b"id,text\nd,four\na,not one\n", "line 3: id 'a' is already in the project"),
    "empty file": ("items.csv", b"", "the file is empty"),
    "wrong encoding": ("items.csv", "id,text\nd,four\ne,cinq \xe9t\xe9\n".encode("latin-1"),
                       "items.csv: line 3: not UTF-8"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_item_files(tmp_path, project_with_items, case):
    name, content, fragment = CASES[case]
    (tmp_path / "bad").mkdir()
    path = tmp_path / "bad" / name
    path.write_bytes(content)
    before = snapshot(project_with_items)
    one_line_error(run_cli("import", project_with_items, path, "--text-column", "text", "--id-column", "id"),
                   str(path) if case != "missing column" else "no column", fragment)
    assert snapshot(project_with_items) == before


def test_unknown_label_in_import_labels(tmp_path, project_with_items):
    (tmp_path / "l.csv").write_text("id,label\na,spam\nb,eggs\n")
    before = snapshot(project_with_items)
    one_line_error(run_cli("import-labels", project_with_items, tmp_path / "l.csv"),
                   "l.csv: line 3: unknown label 'eggs'", "spam, ham")
    assert snapshot(project_with_items) == before


def test_missing_or_unreadable_image_file(tmp_path):
    proj = tmp_path / "proj"
    ok(run_cli("init", proj, "--labels", "cat,dog"))
    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "img" / "a.png")
    (tmp_path / "img" / "items.csv").write_text("path\na.png\nb.png\n")
    before = snapshot(proj)
    one_line_error(run_cli("import", proj, tmp_path / "img" / "items.csv", "--image-column", "path"),
                   "items.csv: line 3: image file 'b.png' not found")
    assert snapshot(proj) == before
    (tmp_path / "img" / "b.png").write_text("garbage, not a picture")  # a file that is there but no image
    one_line_error(run_cli("import", proj, tmp_path / "img" / "items.csv", "--image-column", "path"),
                   "items.csv: line 3: image file 'b.png' is not an image that can be read")
    assert snapshot(proj) == before


def test_commands_outside_a_project_and_bad_init(tmp_path):
    one_line_error(run_cli("status", tmp_path), "holds no activelabel project")
    one_line_error(run_cli("init", tmp_path / "p", "--labels", "spam"), "at least two distinct")
    one_line_error(run_cli("init", tmp_path / "p", "--labels", "a,b", "--db",
                           "postgresql+psycopg://postgres@127.0.0.1:1/none"), "cannot open database")
    assert not (tmp_path / "p" / "activelabel.toml").exists()
