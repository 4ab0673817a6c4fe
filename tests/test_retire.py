"""Retiring bad items (``activelabel items remove``): out of exports and issuing, counted in status, history kept;
an unknown id changes nothing. And status's stopping rules count only cycles that added labels.
Every project test runs on a SQLite file and on PostgreSQL.
"""

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from helpers import make_sms_project, one_line_error, run_cli
from sqlalchemy import func, select

from activelabel.errors import UnknownItemError
from activelabel.project import Project
from activelabel.project.reporting import counted_cycles
from activelabel.store.schema import Annotation, Item


def ok(out):
    assert out.returncode == 0, out.stderr
    return out.stdout


def retired_rows(proj):
    with Project.open(proj) as p, p.store.session(readonly=True) as s:
        return {r[0]: r[1] for r in s.execute(select(Item.external_id, Item.retired_reason)
                                             .where(Item.retired_at.is_not(None)))}


def test_retired_items_leave_export_and_show_in_status(tmp_path, db_url):
    """Retired items (one of them labeled) are not exported, are counted in status, and keep their answers."""
    proj = make_sms_project(tmp_path, db_url)
    with Project.open(proj) as p:
        items = p.state().items
        n_answers = len(p.state().events)
    pool = items["split"] == "pool"
    labeled = items[items["label"].notna() & pool]["external_id"].iloc[0]
    a, b = items[items["label"].isna() & pool]["external_id"].iloc[:2]
    test_item = items[(items["split"] == "test") & items["label"].isna()]["external_id"].iloc[-1]
    out = ok(run_cli("items", "remove", proj, a, labeled, test_item, "--reason", "duplicate"))
    assert "retired 3 items" in out
    assert retired_rows(proj) == {a: "duplicate", labeled: "duplicate", test_item: "duplicate"}
    assert "1 were retired already" in ok(run_cli("items", "remove", proj, a, b))
    assert retired_rows(proj)[a] == "duplicate"  # retiring again keeps the first reason

    st = json.loads(ok(run_cli("status", proj, "--json")))
    assert st["retired"] == 4 and st["items"] == len(items)
    assert st["pool"] + st["test"] + st["retired"] == st["items"] and st["test"] == 59
    assert st["labeled"] == 39  # the retired labeled item no longer counts
    assert "4 retired" in ok(run_cli("status", proj))

    ok(run_cli("export", proj, tmp_path / "out.csv"))
    exported = pd.read_csv(tmp_path / "out.csv")
    assert len(exported) == len(items) - 4 and not {a, b, labeled, test_item} & set(exported["id"])
    with Project.open(proj) as p:
        assert len(p.state().events) == n_answers  # nothing of its history is deleted
        with p.store.session(readonly=True) as s:
            assert s.scalar(select(func.count()).select_from(Item)) == len(items)

    ok(run_cli("query", proj, "-n", "1000", "--test", "--out", tmp_path / "t.jsonl"))
    issued = [json.loads(line)["id"] for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert test_item not in issued and len(issued) == 29  # 30 unlabeled test items, one retired

    assert "restored 2 items" in ok(run_cli("items", "restore", proj, a, labeled))
    assert set(retired_rows(proj)) == {b, test_item}
    assert json.loads(ok(run_cli("status", proj, "--json")))["retired"] == 2


def test_unknown_id_is_refused_and_nothing_changes(tmp_path, db_url):
    """One unknown id among known ones: one line naming it, nothing retired (CLI and library)."""
    proj = make_sms_project(tmp_path, db_url)
    one_line_error(run_cli("items", "remove", proj, "m1", "no-such-item", "m2"), "no-such-item", "nothing was changed")
    assert retired_rows(proj) == {}
    with Project.open(proj) as p:
        with pytest.raises(UnknownItemError, match="'nope'"):
            p.retire_items(["m3", "nope"], reason="x")
        with pytest.raises(UnknownItemError, match="'nope'"):
            p.restore_items(["nope"])
    assert retired_rows(proj) == {}
    one_line_error(run_cli("items", "remove", proj), "give item ids")
    one_line_error(run_cli("items", "remove", proj, "--file", tmp_path / "missing.txt"), "missing.txt")


def test_remove_ids_from_a_file(tmp_path, db_url):
    """--file takes a query batch file (its id column) or a plain list of ids, one per line."""
    proj = make_sms_project(tmp_path, db_url)
    ok(run_cli("query", proj, "-n", "5", "--out", tmp_path / "b.jsonl"))
    batch = [json.loads(line)["id"] for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    (tmp_path / "ids.txt").write_text("# broken scans\nm7\n\nm8\n")
    ok(run_cli("items", "remove", proj, "--file", tmp_path / "b.jsonl", "--reason", "off-topic"))
    ok(run_cli("items", "remove", proj, "m9", "--file", tmp_path / "ids.txt"))
    assert set(retired_rows(proj)) == set(batch) | {"m7", "m8", "m9"}
    (tmp_path / "bad.txt").write_text("m10\nzzz\n")
    one_line_error(run_cli("items", "remove", proj, "--file", tmp_path / "bad.txt"), "zzz")
    assert "m10" not in retired_rows(proj)
    with Project.open(proj) as p, p.store.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Annotation)) == 70  # the seed answers, untouched


def cycle(labels, accuracy):
    return SimpleNamespace(labels_used=labels, accuracy=accuracy)


def test_counted_cycles_leave_out_cycles_without_new_labels():
    """Only a cycle trained on more labels than the last counted one counts."""
    cycles = [cycle(40, .8), cycle(40, .8), cycle(60, .85), cycle(60, .85), cycle(50, .84), cycle(80, .9)]
    assert [(c.labels_used, c.accuracy) for c in counted_cycles(cycles)] == [(40, .8), (60, .85), (80, .9)]
    assert counted_cycles([]) == []
    trickle = [cycle(40, .8), cycle(41, .8), cycle(42, .8), cycle(55, .82), cycle(60, .85)]  # skips closed batches
    assert [c.labels_used for c in counted_cycles(trickle, min_new=10)] == [40, 55]


def test_retraining_without_labels_never_stops_on_plateau(tmp_path, db_url):
    """Pressing retrain (forced) again and again adds cycles but no plateau: they add no labels."""
    proj = make_sms_project(tmp_path, db_url)
    with Project.open(proj) as p:
        for _ in range(3):
            p.train(force=True)
        st = p.status()
    assert st["cycles"] == 4 and len(st["curve"]) == 4
    assert not [d for d in st["stop"] if d["rule"].lower().startswith("plateau")]
    assert st["advice"].startswith("continue")
