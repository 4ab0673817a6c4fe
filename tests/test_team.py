"""A team's ordinary behaviour must not stall the loop: skips, walking away, retraining mid-labeling, two
trainings, two servers. Each test runs on a SQLite file and on PostgreSQL."""

import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import tomli_w
from fastapi.testclient import TestClient
from sqlalchemy import select

from activelabel.project import Project
from activelabel.server import create_app
from activelabel.store import queue
from activelabel.store.schema import Assignment, Batch, BatchItem, Cycle

from helpers import Server, bearer, make_sms_project, one_line_error, run_cli


def configure(folder, **settings):
    path = folder / "activelabel.toml"
    config = tomllib.loads(path.read_text()) | settings
    path.write_text(tomli_w.dumps(config))


@pytest.fixture
def project_dir(tmp_path, db_url):
    """300 real SMS messages, 40 labeled pool items, 30 labeled test items (of 60), a model, a batch of 30."""
    return make_sms_project(tmp_path, db_url)


@pytest.fixture
def tokens(project_dir):
    with Project.open(project_dir) as p:
        return {name: p.add_annotator(name) for name in ("ann", "bob", "cat")}


def truth(project_dir):
    """The real label of every item (the SMS data set is labeled), by internal id."""
    import pandas as pd

    frame = pd.read_csv(project_dir.parent / "sms.csv").set_index("id")["label"]
    with Project.open(project_dir) as p:
        items = p.state().items
    return dict(zip(items["id"], items["external_id"].map(frame)))


def current(project_dir):
    with Project.open(project_dir) as p, p.store.session(readonly=True) as s:
        batch_id = queue.current_batch(s)
        size = s.scalar(select(Batch.size).where(Batch.id == batch_id))
        ranks = dict(s.execute(select(BatchItem.item_id, BatchItem.rank).where(BatchItem.batch_id == batch_id)).all())
    return batch_id, size, ranks


def answer(c, token, item, kind="label", label=None, labels=None):
    body = {"assignment_id": item["assignment_id"], "answer": kind}
    if kind == "label":
        body["label"] = label or labels[item["item_id"]]
    assert c.post("/api/answer", json=body, headers=bearer(token)).json() == {"stored": True}


def test_skip_and_abandon_never_stall_the_next_cycle(project_dir, tokens):
    """One annotator skips, another takes an item and walks away: the batch still closes, the next cycle
    trains, and its items are served within seconds."""
    configure(project_dir, test_share=0.0, assignment_minutes=0.02)  # idle time 1.2 s
    labels = truth(project_dir)
    first, size, ranks = current(project_dir)
    with TestClient(create_app(project_dir, retrain=True, poll_seconds=0.2)) as c:
        walked = c.get("/api/next", headers=bearer(tokens["bob"])).json()["item"]  # bob takes one and leaves
        skipped = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
        answer(c, tokens["ann"], skipped, "skip")
        seen, deadline = set(), time.monotonic() + 60
        while time.monotonic() < deadline:
            r = c.get("/api/next", headers=bearer(tokens["ann"])).json()
            item = r["item"]
            if item is None:
                time.sleep(0.2)
                continue
            assert item["item_id"] != skipped["item_id"], "a skipped item went back to the one who skipped it"
            if current(project_dir)[0] != first:
                break  # the next cycle published a batch and ann is labeling it
            seen.add(item["item_id"])
            answer(c, tokens["ann"], item, labels=labels)
        else:
            pytest.fail("the next cycle never trained")
    assert walked["item_id"] in seen, "the abandoned item did not go back to the queue"
    with Project.open(project_dir) as p, p.store.session(readonly=True) as s:
        cycles = s.scalars(select(Cycle).where(Cycle.error.is_(None))).all()
    assert len(cycles) == 2


def test_nobody_is_told_nothing_to_label_while_pool_items_are_left(project_dir, tokens):
    """Labeling fast through several cycles with skips: an empty answer only ever says a batch is training,
    and work appears again within seconds."""
    configure(project_dir, test_share=0.2, test_target=35, batch_size=20, reserve_batches=1)
    labels = truth(project_dir)
    rng = np.random.default_rng(0)
    waits = []
    with TestClient(create_app(project_dir, retrain=True, poll_seconds=0.2)) as c:
        for _ in range(150):
            who = ("ann", "bob")[int(rng.integers(2))]
            r = c.get("/api/next", headers=bearer(tokens[who])).json()
            started = time.monotonic()
            while r["item"] is None:
                assert "being trained" in r["progress"]["empty"] or "held" in r["progress"]["empty"] \
                    or "skipped by you" in r["progress"]["empty"], r["progress"]["empty"]
                assert time.monotonic() - started < 30, "no work appeared within 30 s"
                time.sleep(0.2)
                r = c.get("/api/next", headers=bearer(tokens[who])).json()
            waits.append(time.monotonic() - started)
            kind = "skip" if rng.random() < 0.2 else "label"
            time.sleep(0.05)  # people read before they answer; the trainer process gets its turn at the database
            answer(c, tokens[who], r["item"], kind, labels=labels)
    with Project.open(project_dir) as p:
        st = p.status()
    assert st["cycles"] >= 3, (st["cycles"], st["labeled"], sorted(waits)[-5:], st["last_error"])
    assert st["test_labeled"] <= 35  # test items stop at the target


def test_the_pool_exhausted_says_so(tmp_path, db_url):
    """When every pool item is labeled the page says exactly that."""
    folder = make_sms_project(tmp_path, db_url, n=80, test_size=10, seed_pool=40, seed_test=10, batch_size=30)
    configure(folder, reserve_batches=2)
    with Project.open(folder) as p:
        token = p.add_annotator("ann")
    labels = truth(folder)
    with TestClient(create_app(folder, retrain=False)) as c:
        for _ in range(100):
            r = c.get("/api/next", headers=bearer(token)).json()
            if r["item"] is None:
                break
            answer(c, token, r["item"], labels=labels)
        assert r["item"] is None and "Every pool item is labeled" in r["progress"]["empty"]


def test_a_skipped_item_goes_to_someone_else_and_leaves_after_the_skip_limit(project_dir, tokens):
    configure(project_dir, test_share=0.0, skip_limit=2)
    with TestClient(create_app(project_dir, retrain=False)) as c:
        first = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
        answer(c, tokens["ann"], first, "skip")
        assert c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]["item_id"] != first["item_id"]
        got = c.get("/api/next", headers=bearer(tokens["bob"])).json()["item"]
        assert got["item_id"] == first["item_id"]  # best-ranked free item: the one ann skipped
        answer(c, tokens["bob"], got, "unsure")
        third = c.get("/api/next", headers=bearer(tokens["cat"])).json()["item"]
        assert third["item_id"] != first["item_id"]  # two people passed on it: it left the batch
    with Project.open(project_dir) as p, p.store.session(readonly=True) as s:
        done = s.scalar(select(BatchItem.done).where(BatchItem.batch_id == queue.current_batch(s),
                                                     BatchItem.item_id == first["item_id"]))
    assert done


def test_idle_assignments_expire_and_a_heartbeat_keeps_them(project_dir, tokens):
    configure(project_dir, test_share=0.0, assignment_minutes=0.02)
    with TestClient(create_app(project_dir, retrain=False)) as c:
        held = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
        for _ in range(4):  # 2 s with a heartbeat every 0.5 s: still ann's
            time.sleep(0.5)
            assert c.post("/api/heartbeat", headers=bearer(tokens["ann"])).json() == {"renewed": True}
        assert c.get("/api/next", headers=bearer(tokens["bob"])).json()["item"]["item_id"] != held["item_id"]
        time.sleep(1.5)  # no heartbeat for longer than the idle time: back in the queue, first in rank
        again = c.get("/api/next", headers=bearer(tokens["bob"])).json()["item"]
        assert again["item_id"] == held["item_id"]
        # ann comes back to her idle tab and answers: bob holds the item now, so her late answer is not stored
        late = {"assignment_id": held["assignment_id"], "answer": "label", "label": "ham"}
        assert c.post("/api/answer", json=late, headers=bearer(tokens["ann"])).json() == \
            {"stored": False, "reason": "taken"}
        answer(c, tokens["bob"], again, "label", "spam")
        # a late answer whose item is still free is stored as usual
        mine = c.get("/api/next", headers=bearer(tokens["cat"])).json()["item"]
        time.sleep(1.5)
        answer(c, tokens["cat"], mine, "label", "ham")
    with Project.open(project_dir) as p:
        events = p.state().events
    assert list(events.loc[events["item_id"] == held["item_id"], "label"]) == ["spam"]


def test_test_items_are_served_honestly(tmp_path, db_url):
    """Never a test item labeled from a file (with or without annotator), never one to two people, and only
    until the test target is labeled; the page marks test items only when the project says so."""
    folder = make_sms_project(tmp_path, db_url, seed_test=0)
    with Project.open(folder) as p:
        items = p.state().items
        test = items[items["split"] == "test"]
        first = list(test["external_id"][:10])
        (tmp_path / "by_ann.csv").write_text("id,label,annotator\n" + "".join(f"{e},ham,outside\n" for e in first))
        p.import_labels(tmp_path / "by_ann.csv", annotator_column="annotator")
        imported = set(test["id"][:10])
        tokens = {n: p.add_annotator(n) for n in ("ann", "bob")}
    configure(folder, test_share=1.0, test_target=16, show_test_items=True)
    served = []
    with TestClient(create_app(folder, retrain=False)) as c:
        for _ in range(20):
            for who in ("ann", "bob"):
                item = c.get("/api/next", headers=bearer(tokens[who])).json()["item"]
                if item is not None and item["test"]:
                    served.append(item["item_id"])
                if item is not None:
                    answer(c, tokens[who], item, "label", "ham")
    assert not imported & set(served)
    assert len(served) == len(set(served)) == 6  # 10 imported + 6 served reach the target of 16
    configure(folder, show_test_items=False, test_target=0)
    with TestClient(create_app(folder, retrain=False)) as c:
        item = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
    assert item["test"] is False  # served a test item, but the project does not say so


def test_two_trainings_at_once_give_distinct_versions_or_one_refuses(project_dir):
    configure(project_dir)
    procs = [subprocess.Popen([sys.executable, "-m", "activelabel.cli", "train", str(project_dir), "--force"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    assert 0 in codes
    for code, (out, err) in zip(codes, outs):
        if code != 0:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and "another training is running" in lines[0], err
    with Project.open(project_dir) as p, p.store.session(readonly=True) as s:
        versions = s.scalars(select(Cycle.model_version).where(Cycle.error.is_(None))).all()
    assert len(versions) == len(set(versions)) == 1 + codes.count(0)
    assert all((project_dir / "models" / f"model-v{v}.joblib").is_file() for v in versions)


def test_retrain_with_nothing_new_does_nothing_and_says_so(project_dir):
    out = run_cli("train", project_dir)
    assert out.returncode == 0 and "no new answers since cycle 1" in out.stdout, out
    with Project.open(project_dir) as p:
        assert p.status()["cycles"] == 1


def test_retrain_during_labeling_leaves_no_batch_item_unservable(project_dir, tokens):
    """Answers that land while the model trains are left out of the batch it publishes, so the batch can close."""
    configure(project_dir, test_share=0.0)
    labels = truth(project_dir)
    answered = []
    with Project.open(project_dir) as p:
        def answer_meanwhile(stage):
            if stage != "select":
                return
            with p.store.session() as s:  # ann labels the 40 best-ranked free items while the model trains
                for _ in range(40):
                    served = queue.serve_next(s, 1, p.config.queue_settings(), datetime.now(UTC))
                    if served is None:
                        break
                    queue.answer(s, served.assignment_id, 1, "label", labels[served.item_id], p.config.labels,
                                 datetime.now(UTC), p.config.queue_settings())
                    answered.append(served.item_id)
        p.train(answer_meanwhile, force=True)
    assert len(answered) == 40
    batch_id, size, ranks = current(project_dir)
    assert not set(answered) & set(ranks)  # nothing answered meanwhile was published
    with Project.open(project_dir) as p:
        assert p.state().cycles[-1].details["left_out"] > 0  # ... though the strategy had picked some of them
    with TestClient(create_app(project_dir, retrain=False)) as c:  # the whole batch can be served and closed
        for _ in range(size + 5):
            item = c.get("/api/next", headers=bearer(tokens["bob"])).json()["item"]
            if item is None or ranks.get(item["item_id"], size) >= size:
                break
            answer(c, tokens["bob"], item, labels=labels)
        with Project.open(project_dir) as p, p.store.session(readonly=True) as s:
            assert queue.batch_progress(s)["left"] == 0


def _get(url, token, path="/api/next"):
    req = urllib.request.Request(url + path, headers=bearer(token))
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_a_second_server_refuses_and_the_first_keeps_its_assignments(project_dir, tokens):
    with Server(project_dir) as first:
        held = _get(first.url, tokens["ann"])["item"]
        second = Server(project_dir)
        out = subprocess.run([sys.executable, "-m", "activelabel.cli", "serve", str(project_dir),
                              "--port", str(second.port)], capture_output=True, text=True, timeout=60)
        one_line_error(out, "already being served", f"pid {first.proc.pid}")
        busy = subprocess.run([sys.executable, "-m", "activelabel.cli", "serve", str(project_dir),
                               "--port", str(first.port)], capture_output=True, text=True, timeout=60)
        assert busy.returncode != 0
        assert _get(first.url, tokens["ann"])["item"]["assignment_id"] == held["assignment_id"]  # still ann's
        with Project.open(project_dir) as p, p.store.session(readonly=True) as s:
            row = s.get(Assignment, held["assignment_id"])
            expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        assert row.answered_at is None and expires > datetime.now(UTC)
        first.kill()
    with Server(project_dir) as again:  # a killed server's lease is taken over at once on the same host
        assert _get(again.url, tokens["ann"])["item"] is not None


def test_a_lease_is_taken_over_only_when_its_holder_is_silent_or_gone(project_dir):
    """A live holder elsewhere keeps its lease; a silent one past the time-out, or a dead process here, loses it."""
    from activelabel.store import leases

    now = datetime.now(UTC)
    elsewhere = "other-host|4242|abcd|serving"
    with Project.open(project_dir) as p:
        with p.store.session() as s:
            assert leases.acquire(s, "serve", elsewhere, 30, now) is None
        with p.store.session() as s:
            assert leases.acquire(s, "serve", leases.holder_id(), 30, now + timedelta(seconds=10)) == elsewhere
        with p.store.session() as s:
            assert leases.acquire(s, "serve", "me|1|x|", 30, now + timedelta(seconds=31)) is None
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout.strip()
        import socket

        with p.store.session() as s:
            leases.release(s, "serve", "me|1|x|")
            assert leases.acquire(s, "serve", f"{socket.gethostname()}|{dead}|y|", 30, now) is None
        with p.store.session() as s:  # that process has exited: its lease is free at once
            assert leases.acquire(s, "serve", "me|1|z|", 30, now) is None


def test_two_imports_of_one_labels_file_at_once_store_its_answers_once(project_dir, tmp_path):
    """Two people run the same import-labels at the same moment: every answer is stored once."""
    with Project.open(project_dir) as p:
        items = p.state().items
    free = items[(items["split"] == "pool") & items["label"].isna()]["external_id"][:200]
    (tmp_path / "late.csv").write_text("id,label,annotator\n" + "".join(f"{e},ham,outside\n" for e in free))
    procs = [subprocess.Popen([sys.executable, "-m", "activelabel.cli", "import-labels", str(project_dir),
                               str(tmp_path / "late.csv"), "--annotator-column", "annotator"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sorted(o[0].split()[0] for o in outs) == ["nothing", "stored"], outs
    with Project.open(project_dir) as p:
        events = p.state().events
    assert (events["source"] == "import:late.csv").sum() == 200


def test_undo_never_hands_an_item_to_a_second_person(project_dir, tokens):
    """ann skips, bob is served the item, ann undoes: the skip is retracted but the item stays bob's."""
    configure(project_dir, test_share=0.0)
    with TestClient(create_app(project_dir, retrain=False)) as c:
        first = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
        answer(c, tokens["ann"], first, "skip")
        c.get("/api/next", headers=bearer(tokens["ann"]))
        got = c.get("/api/next", headers=bearer(tokens["bob"])).json()["item"]
        assert got["item_id"] == first["item_id"]
        assert c.post("/api/undo", headers=bearer(tokens["ann"])).json() == {"undone_item": first["item_id"]}
        again = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
        assert again["item_id"] != first["item_id"]
        answer(c, tokens["bob"], got, "label", "ham")
    with Project.open(project_dir) as p, p.store.session(readonly=True) as s:
        labels = s.scalars(select(Assignment.annotator_id).where(Assignment.item_id == first["item_id"],
                                                                  Assignment.outcome == "label")).all()
    assert len(labels) == 1


def test_skipped_out_items_are_not_published_again(project_dir, tokens):
    """An item two people passed on leaves this batch and the next ones, so it never holds a batch open."""
    configure(project_dir, test_share=0.0, skip_limit=2)
    with TestClient(create_app(project_dir, retrain=False)) as c:
        item = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
        answer(c, tokens["ann"], item, "skip")
        got = c.get("/api/next", headers=bearer(tokens["bob"])).json()["item"]
        answer(c, tokens["bob"], got, "unsure")
    with Project.open(project_dir) as p:
        p.train(force=True)
    batch_id, size, ranks = current(project_dir)
    assert item["item_id"] not in ranks


def test_a_held_item_labeled_from_a_file_or_retired_is_not_answered_twice(project_dir, tokens, tmp_path):
    configure(project_dir, test_share=0.0)
    with TestClient(create_app(project_dir, retrain=False)) as c:
        held = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
        with Project.open(project_dir) as p:
            external = p.state().items.set_index("id").loc[held["item_id"], "external_id"]
            (tmp_path / "late.csv").write_text(f"id,label\n{external},spam\n")
            p.import_labels(tmp_path / "late.csv")
        body = {"assignment_id": held["assignment_id"], "answer": "label", "label": "ham"}
        assert c.post("/api/answer", json=body, headers=bearer(tokens["ann"])).json() == \
            {"stored": False, "reason": "taken"}
        other = c.get("/api/next", headers=bearer(tokens["bob"])).json()["item"]
        assert run_cli("items", "remove", project_dir, str(_external(project_dir, other["item_id"]))).returncode == 0
        assert c.get("/api/next", headers=bearer(tokens["bob"])).json()["item"]["item_id"] != other["item_id"]


def _external(project_dir, item_id):
    with Project.open(project_dir) as p:
        return p.state().items.set_index("id").loc[item_id, "external_id"]


def test_test_items_out_with_an_outside_service_are_not_served(tmp_path, db_url):
    folder = make_sms_project(tmp_path, db_url, seed_test=0)
    with Project.open(folder) as p:
        issued = p.query(60, test=True)
        token = p.add_annotator("ann")
        test_ids = set(p.state().items.query("split == 'test'")["id"])
    configure(folder, test_share=1.0)
    with TestClient(create_app(folder, retrain=False)) as c:
        for _ in range(10):
            item = c.get("/api/next", headers=bearer(token)).json()["item"]
            assert item["item_id"] not in test_ids  # every test item is out: only pool items are served
            answer(c, token, item, "label", "ham")
    assert len(issued) == 60


def test_a_project_served_before_any_model_serves_a_random_seed_batch(tmp_path, db_url):
    """Import, serve, label: the seed set is labeled in the app and the first model trains from it."""
    import pandas as pd

    from activelabel.project import init_project
    from conftest import SMS_PARQUET

    frame = pd.read_parquet(SMS_PARQUET).drop_duplicates("text").head(200).reset_index(drop=True)
    frame.insert(0, "id", [f"m{i}" for i in range(len(frame))])
    frame.to_csv(tmp_path / "sms.csv", index=False)
    p = init_project(tmp_path / "proj", ["spam", "ham"], db=db_url, batch_size=20, test_share=0.0)
    p.import_items(tmp_path / "sms.csv", text_column="text", id_column="id", test_size=20)
    token = p.add_annotator("ann")
    p.close()
    truth_of = dict(zip(frame["id"], frame["label"]))
    with TestClient(create_app(tmp_path / "proj", retrain=True, poll_seconds=0.2)) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = c.get("/api/next", headers=bearer(token)).json()
            if r["item"] is None:
                time.sleep(0.2)
                continue
            with Project.open(tmp_path / "proj") as q:
                if q.status()["cycles"] >= 1:
                    break
            answer(c, token, r["item"], "label", truth_of[_external(tmp_path / "proj", r["item"]["item_id"])])
        else:
            pytest.fail("no first model from labels given in the app")


def test_items_in_flight_never_overshoot_the_budget(project_dir):
    """70 answers are paid (0.10 each) of a 7.50 budget: five more, and five people take one item each. The
    first to answer asks for more and gets nothing ("out with people"): the rest of the budget is in flight.
    Once all have answered, the budget is spent to the cent, never beyond, and reported as spent. A label
    budget caps pool items the same way."""
    configure(project_dir, budget=7.5, test_share=0.0)
    with Project.open(project_dir) as p:
        people = [p.add_annotator(f"p{k}") for k in range(5)]
    labels = truth(project_dir)
    with TestClient(create_app(project_dir, retrain=False)) as c:
        held = [c.get("/api/next", headers=bearer(t)).json()["item"] for t in people]
        assert all(item is not None for item in held)
        answer(c, people[0], held[0], labels=labels)
        more = c.get("/api/next", headers=bearer(people[0])).json()
        assert more["item"] is None and "out with people" in more["progress"]["empty"]
        for token, item in zip(people[1:], held[1:]):
            answer(c, token, item, labels=labels)
        done = c.get("/api/next", headers=bearer(people[0])).json()
        assert done["item"] is None and "is spent" in done["progress"]["empty"]
    with Project.open(project_dir) as p:
        assert p.status()["money_spent"] == pytest.approx(7.5)

    configure(project_dir, budget=0.0, label_budget=47)  # 45 pool items labeled: two more
    with TestClient(create_app(project_dir, retrain=False)) as c:
        two = [c.get("/api/next", headers=bearer(t)).json()["item"] for t in people[:3]]
        assert two[0] is not None and two[1] is not None and two[2] is None


def test_an_item_retired_while_someone_holds_it_takes_no_answer_and_costs_nothing(project_dir, tokens):
    configure(project_dir, test_share=0.0)
    with TestClient(create_app(project_dir, retrain=False)) as c:
        item = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
        with Project.open(project_dir) as p:
            external = p.state().items.set_index("id").loc[item["item_id"], "external_id"]
            spent = p.status()["money_spent"]
            p.retire_items([external], reason="duplicate")
        body = {"assignment_id": item["assignment_id"], "answer": "label", "label": "ham"}
        assert c.post("/api/answer", json=body, headers=bearer(tokens["ann"])).json() == \
            {"stored": False, "reason": "retired"}
        assert c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]["item_id"] != item["item_id"]
    with Project.open(project_dir) as p:
        assert p.status()["money_spent"] == spent
        assert not (p.state().events["item_id"] == item["item_id"]).any()
