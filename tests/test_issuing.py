"""Issuing is exact: ``query`` writes its file before recording it, concurrent runs issue disjoint items,
items out (issued and unanswered, or open in the web batch) are not issued again, and ``batches`` lists
and releases what was issued. Every test runs on a SQLite file and on PostgreSQL.
"""

import errno
import json
import subprocess
import sys

import pandas as pd
import pytest
from helpers import make_sms_project, one_line_error, run_cli

from activelabel.errors import UnwritableFileError
from activelabel.project import Project
from activelabel.project import issuing as project_issuing
from activelabel.store import issuing, queue
from activelabel.store.schema import BatchItem


def ok(out):
    assert out.returncode == 0, out.stderr
    return out.stdout


def read_ids(path):
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def label_file(tmp_path, ids, name):
    """A labels file (id,label) for ``ids``, with the true labels of the SMS messages."""
    truth = pd.read_csv(tmp_path / "sms.csv").set_index("id")["label"]
    path = tmp_path / name
    truth.loc[list(ids)].reset_index().to_csv(path, index=False)
    return path


def issued_ids(proj):
    with Project.open(proj) as p, p.store.session(readonly=True) as s:
        return set(issuing.issued_items(s).tolist())


def web_ids(proj):
    """External ids of the open web batch (the current cycle batch's items not done)."""
    with Project.open(proj) as p:
        with p.store.session(readonly=True) as s:
            ids = set(issuing.open_web_items(s).tolist())
        items = p.state().items
    return set(items[items["id"].isin(ids)]["external_id"])


def no_temp_files(folder):
    return not [f.name for f in folder.iterdir() if f.name.endswith(".tmp")]


def test_query_that_cannot_write_records_nothing(tmp_path, db_url):
    """A missing folder, a path that is a folder, or a full disk: one line naming the path, nothing issued."""
    proj = make_sms_project(tmp_path, db_url)
    missing = tmp_path / "no-such-folder" / "batch.jsonl"
    one_line_error(run_cli("query", proj, "-n", "10", "--out", missing), str(missing), "nothing was issued")
    folder_in_the_way = tmp_path / "taken"
    folder_in_the_way.mkdir()
    one_line_error(run_cli("query", proj, "-n", "10", "--out", folder_in_the_way), str(folder_in_the_way))
    assert no_temp_files(tmp_path)  # the complete temporary file was removed when the rename failed
    with Project.open(proj) as p:
        assert p.batches() == []
        assert issued_ids(proj) == set()


def test_disk_full_and_failed_commit_leave_no_file(tmp_path, db_url, monkeypatch):
    """fsync failing (disk full) records nothing; a failure after the rename, before the commit, removes the file."""
    proj = make_sms_project(tmp_path, db_url)
    out = tmp_path / "batch.jsonl"

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    with Project.open(proj) as p:
        with monkeypatch.context() as m:
            m.setattr(project_issuing.os, "fsync", full)
            with pytest.raises(UnwritableFileError, match="No space left on device") as info:
                p.query(10, out=out)
        assert str(out) in str(info.value) and "\n" not in str(info.value)
        assert not out.exists() and no_temp_files(tmp_path) and p.batches() == []

        def broken(folder):
            raise RuntimeError("the database went away")

        with monkeypatch.context() as m:
            m.setattr(project_issuing, "_sync_dir", broken)
            with pytest.raises(RuntimeError, match="went away"):
                p.query(10, out=out)
        assert not out.exists() and no_temp_files(tmp_path) and p.batches() == []
        batch = p.query(10, out=out)  # and it works once the trouble is gone
        assert read_ids(out) == list(batch["id"])
        assert [b["size"] for b in p.batches()] == [10] and p.batches()[0]["file"] == str(out.resolve())


def test_concurrent_queries_issue_disjoint_items(tmp_path, db_url):
    """Two ``query`` processes started together (both would pick the same items) issue disjoint batches."""
    proj = make_sms_project(tmp_path, db_url)
    outs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    procs = [subprocess.Popen([sys.executable, "-m", "activelabel.cli", "query", str(proj), "-n", "40",
                               "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for out in outs]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    a, b = (read_ids(out) for out in outs)
    assert len(a) == len(b) == 40 and len(set(a)) == len(set(b)) == 40
    assert not set(a) & set(b)
    listed = json.loads(ok(run_cli("batches", proj, "--json")))
    assert sorted(r["size"] for r in listed) == [40, 40]
    assert {r["file"] for r in listed} == {str(out.resolve()) for out in outs}
    with Project.open(proj) as p:
        with p.store.session(readonly=True) as s:
            recorded = s.query(BatchItem.item_id).filter(BatchItem.batch_id.in_([r["id"] for r in listed])).all()
        items = p.state().items.set_index("id")
    assert sorted(items.loc[[r[0] for r in recorded], "external_id"]) == sorted(a + b)  # records match the files


def test_items_taken_meanwhile_are_chosen_again(tmp_path, db_url, monkeypatch):
    """When another query issues some chosen items between selection and recording, the batch is chosen again."""
    proj = make_sms_project(tmp_path, db_url)
    real_write = project_issuing._write_temp
    other = {}

    def write_while_another_query_runs(frame, out):
        if not other:  # the first selection is written; meanwhile another process issues the same items
            other["ids"] = []
            with Project.open(proj) as q:
                other["ids"] = list(q.query(25, out=tmp_path / "other.jsonl")["id"])
            assert set(other["ids"]) & set(frame["id"])
        return real_write(frame, out)

    monkeypatch.setattr(project_issuing, "_write_temp", write_while_another_query_runs)
    with Project.open(proj) as p:
        mine = list(p.query(25, out=tmp_path / "mine.jsonl")["id"])
        assert len(p.batches()) == 2
    assert len(mine) == 25 and not set(mine) & set(other["ids"])
    assert read_ids(tmp_path / "mine.jsonl") == mine and no_temp_files(tmp_path)


def test_query_skips_items_out_unless_reissue(tmp_path, db_url):
    """Items open in the web batch and items issued and unanswered are not issued again without --reissue."""
    proj = make_sms_project(tmp_path, db_url)
    web = web_ids(proj)
    assert len(web) >= 30  # the first cycle's batch (and its reserve) is what the web app serves
    first = read_ids(tmp_path / "b1.jsonl") if ok(run_cli("query", proj, "-n", "20", "--out", tmp_path / "b1.jsonl")) else []
    assert len(first) == 20 and not set(first) & web
    everything = read_ids(tmp_path / "b2.jsonl") if ok(run_cli("query", proj, "-n", "1000", "--out",
                                                                tmp_path / "b2.jsonl")) else []
    assert everything and not set(everything) & (web | set(first))
    ok(run_cli("query", proj, "-n", "5", "--out", tmp_path / "b3.jsonl"))
    assert read_ids(tmp_path / "b3.jsonl") == []  # nothing left that is not out
    test_first = read_ids(tmp_path / "t1.jsonl") if ok(run_cli("query", proj, "-n", "10", "--test", "--out",
                                                                tmp_path / "t1.jsonl")) else []
    test_next = read_ids(tmp_path / "t2.jsonl") if ok(run_cli("query", proj, "-n", "100", "--test", "--out",
                                                               tmp_path / "t2.jsonl")) else []
    assert len(test_first) == 10 and len(test_next) == 20 and not set(test_first) & set(test_next)  # 30 unlabeled
    again = read_ids(tmp_path / "r.jsonl") if ok(run_cli("query", proj, "-n", "1000", "--reissue", "--out",
                                                          tmp_path / "r.jsonl")) else []
    assert web <= set(again) and set(first) <= set(again)  # --reissue hands out what is out once more


def test_answered_items_come_back_and_release_returns_the_rest(tmp_path, db_url):
    """Answered issued items no longer count as out; --release returns the unanswered ones to the pool."""
    proj = make_sms_project(tmp_path, db_url)
    ok(run_cli("query", proj, "-n", "20", "--out", tmp_path / "b1.jsonl"))
    ok(run_cli("query", proj, "-n", "10", "--test", "--out", tmp_path / "t1.jsonl"))
    first, tests = read_ids(tmp_path / "b1.jsonl"), read_ids(tmp_path / "t1.jsonl")
    ok(run_cli("import-labels", proj, label_file(tmp_path, first[:5] + tests[:3], "answers.csv")))
    listed = json.loads(ok(run_cli("batches", proj, "--json")))
    assert [(r["size"], r["answered"], r["unanswered"], r["released_at"]) for r in listed] == \
        [(20, 5, 15, None), (10, 3, 7, None)]
    assert [r["strategy"] for r in listed] == ["default", "test"]
    assert len(issued_ids(proj)) == 15 + 7
    table = ok(run_cli("batches", proj))
    assert "unanswered" in table and str(listed[0]["id"]) in table

    released = ok(run_cli("batches", proj, "--release", listed[0]["id"]))
    assert "15 unanswered items are back in the pool" in released
    assert "already released" in ok(run_cli("batches", proj, "--release", listed[0]["id"]))
    one_line_error(run_cli("batches", proj, "--release", "999"), "no issued batch 999")
    after = json.loads(ok(run_cli("batches", proj, "--json")))
    assert after[0]["released_at"] is not None and after[1]["released_at"] is None
    assert len(issued_ids(proj)) == 7  # only the test batch's unanswered items are still out
    ok(run_cli("query", proj, "-n", "1000", "--out", tmp_path / "b2.jsonl"))
    assert set(first[5:]) <= set(read_ids(tmp_path / "b2.jsonl"))  # back in the pool, issued again
    assert not set(first[:5]) & set(read_ids(tmp_path / "b2.jsonl"))  # labeled: never again


def test_queue_lock_is_taken_when_recording(tmp_path, db_url, monkeypatch):
    """Recording a batch takes the queue's lock first (PostgreSQL advisory lock; SQLite holds its write lock)."""
    proj = make_sms_project(tmp_path, db_url)
    calls = []
    real = queue.lock_queue
    monkeypatch.setattr(queue, "lock_queue", lambda s: (calls.append(s.get_bind().dialect.name), real(s)))
    with Project.open(proj) as p:
        p.query(5, out=tmp_path / "b.jsonl")
    assert calls


def test_train_without_new_answers_and_force(tmp_path, db_url):
    """``train`` with nothing new says why and exits 0; ``--force`` trains anyway."""
    proj = make_sms_project(tmp_path, db_url)
    out = run_cli("train", proj)
    assert out.returncode == 0 and "nothing" in out.stdout and "--force" in out.stdout, out.stderr
    assert "cycle 2:" in ok(run_cli("train", proj, "--force"))


def test_import_labels_twice_says_nothing_new(tmp_path, db_url):
    """Importing the same answers again stores nothing and says how many rows were there already."""
    proj = make_sms_project(tmp_path, db_url)
    ok(run_cli("query", proj, "-n", "6", "--out", tmp_path / "b1.jsonl"))
    answers = label_file(tmp_path, read_ids(tmp_path / "b1.jsonl"), "answers.csv")
    assert "stored 6 labels" in ok(run_cli("import-labels", proj, answers))
    assert "nothing new: 6 rows already stored" in ok(run_cli("import-labels", proj, answers))


def test_query_never_issues_more_than_the_budget_pays_for(tmp_path):
    """70 answers paid at 0.10 of an 8.00 budget: ten more. -n 11 is refused naming what is left; -n 6 is
    issued; then only 4 are left (the 6 out count), and labels coming back keep the sum; the label budget caps
    training labels the same way."""
    from helpers import set_config

    proj = make_sms_project(tmp_path)
    set_config(proj, budget=8.0)
    one_line_error(run_cli("query", proj, "-n", "11", "--out", tmp_path / "a.jsonl"), "-n 11", "10 answers left")
    assert not (tmp_path / "a.jsonl").exists() and not issued_ids(proj)
    ok(run_cli("query", proj, "-n", "6", "--out", tmp_path / "b.jsonl"))
    one_line_error(run_cli("query", proj, "-n", "5", "--out", tmp_path / "c.jsonl"), "4 answers left", "6 out")
    ok(run_cli("import-labels", proj, label_file(tmp_path, read_ids(tmp_path / "b.jsonl"), "b.csv")))
    one_line_error(run_cli("query", proj, "-n", "5", "--out", tmp_path / "c.jsonl"), "4 answers left")
    ok(run_cli("query", proj, "-n", "4", "--out", tmp_path / "c.jsonl"))

    set_config(proj, budget=0.0, label_budget=48)  # 46 pool labels, 4 out: nothing left
    one_line_error(run_cli("query", proj, "-n", "1", "--out", tmp_path / "d.jsonl"), "label budget", "0 training")
    ok(run_cli("query", proj, "-n", "1", "--test", "--out", tmp_path / "e.jsonl"))  # test labels are not training


@pytest.mark.parametrize("fmt", ["csv", "labelstudio", "prodigy"])
def test_our_own_export_imports_back_and_adds_nothing(tmp_path, fmt):
    """An export holds labeled and unlabeled items (Label Studio tasks without annotations, Prodigy tasks
    without an answer): importing it back is accepted and adds no answer."""
    from fastapi.testclient import TestClient
    from helpers import bearer

    from activelabel.server import create_app

    proj = make_sms_project(tmp_path)
    with Project.open(proj) as p:
        token = p.add_annotator("ann")
    truth = pd.read_csv(tmp_path / "sms.csv").set_index("id")["label"]
    with TestClient(create_app(proj, retrain=False)) as c:  # some labels come from the app, by a person
        for _ in range(3):
            item = c.get("/api/next", headers=bearer(token)).json()["item"]
            with Project.open(proj) as p:
                external = p.state().items.set_index("id").loc[item["item_id"], "external_id"]
            c.post("/api/answer", headers=bearer(token), json={"assignment_id": item["assignment_id"],
                                                                "answer": "label", "label": truth[external]})
    suffix = {"csv": "csv", "labelstudio": "json", "prodigy": "jsonl"}[fmt]
    path = tmp_path / f"export.{suffix}"
    ok(run_cli("export", proj, path, "--format", fmt))
    with Project.open(proj) as p:
        before, spent = len(p.state().events), p.status()["money_spent"]
    out = run_cli("import-labels", proj, path)
    assert out.returncode == 0, out.stderr
    assert "nothing new" in out.stdout
    with Project.open(proj) as p:
        assert len(p.state().events) == before and p.status()["money_spent"] == spent


def test_a_csv_field_longer_than_128_kib_imports(tmp_path):
    """Python's csv module refuses fields over 128 KiB by default; a long text is an ordinary item."""
    long_text = "word " * 60_000  # 300 KB
    pd.DataFrame({"id": ["long", "short"], "text": [long_text, "hi"]}).to_csv(tmp_path / "items.csv", index=False)
    ok(run_cli("init", tmp_path / "p", "--labels", "a,b"))
    ok(run_cli("import", tmp_path / "p", tmp_path / "items.csv", "--text-column", "text", "--id-column", "id"))
    pd.DataFrame({"id": ["long"], "label": ["a"], "note": [long_text]}).to_csv(tmp_path / "l.csv", index=False)
    ok(run_cli("import-labels", tmp_path / "p", tmp_path / "l.csv"))


def test_two_queries_at_once_and_the_web_app_share_one_budget(tmp_path, db_url):
    """Ten answers left: two ``query -n 8`` at once cannot both have them (the check runs under the issuing
    lock), and the web app counts the 8 items out with the outside service: it hands out 2 more, then none."""
    from fastapi.testclient import TestClient
    from helpers import bearer, set_config

    from activelabel.server import create_app

    proj = make_sms_project(tmp_path, db_url)
    set_config(proj, budget=8.0, test_share=0.0)  # 70 answers paid at 0.10: ten more
    procs = [subprocess.Popen([sys.executable, "-m", "activelabel.cli", "query", str(proj), "-n", "8",
                               "--out", str(tmp_path / f"q{k}.jsonl")], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes[0] == 0 and codes[1] != 0, outs
    assert any("answers left" in err for _, err in outs), outs
    assert len(issued_ids(proj)) == 8
    with Project.open(proj) as p:
        people = [p.add_annotator(f"p{k}") for k in range(3)]
    with TestClient(create_app(proj, retrain=False)) as c:
        items = [c.get("/api/next", headers=bearer(t)).json() for t in people]
    assert [r["item"] is not None for r in items] == [True, True, False]
    assert "out with people" in items[2]["progress"]["empty"]
