"""The server killed with SIGKILL while annotators submit: acknowledged answers survive, nothing stays assigned."""

import threading
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select

from activelabel.project import Project
from activelabel.store.repo import hash_token
from activelabel.store.schema import Annotation, Annotator, Assignment

from helpers import Server, make_sms_project


def annotate(url, token, acked, stop):
    """Label until the server goes away; record (item, assignment) of every answer the server acknowledged."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        while not stop.is_set():
            try:
                item = client.get("/api/next").json()["item"]
                if item is None:
                    return
                r = client.post("/api/answer", json={"assignment_id": item["assignment_id"], "answer": "label",
                                                     "label": "ham"})
                if r.status_code == 200 and r.json()["stored"]:
                    acked.append((token, item["item_id"]))
            except (httpx.HTTPError, ValueError):
                return


def test_acknowledged_answers_survive_a_killed_server(tmp_path, db_url):
    folder = make_sms_project(tmp_path, db_url, n=400, test_size=40, batch_size=300)
    with Project.open(folder) as p:
        tokens = {p.add_annotator(f"a{i}"): i for i in range(4)}
    server = Server(folder).start()
    acked, stop = [], threading.Event()
    threads = [threading.Thread(target=annotate, args=(server.url, t, acked, stop)) for t in tokens]
    for t in threads:
        t.start()
    while len(acked) < 120 and any(t.is_alive() for t in threads):
        threading.Event().wait(0.01)
    server.kill()  # SIGKILL while the annotators are submitting
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 120

    restarted = Server(folder).start()
    try:
        with Project.open(folder) as p, p.store.session(readonly=True) as s:
            stored = s.execute(select(Annotation.annotator_id, Annotation.item_id)
                               .where(Annotation.source == "web")).all()
            who = dict(s.execute(select(Annotator.token_hash, Annotator.id)).all())
            open_now = s.scalar(select(func.count()).select_from(Assignment).where(
                Assignment.answered_at.is_(None), Assignment.expires_at > datetime.now(UTC)))
        acknowledged = {(who[hash_token(token)], item) for token, item in acked}
        assert acknowledged <= set(stored)  # none lost
        assert len(stored) == len(set(stored))  # none duplicated
        assert len(stored) <= len(acknowledged) + len(tokens)  # at most one unacknowledged answer per annotator
        assert open_now == 0  # the restart released every assignment: no item stays stuck
        with httpx.Client(base_url=restarted.url, headers={"Authorization": f"Bearer {next(iter(tokens))}"}) as c:
            assert c.get("/api/next").json()["item"] is not None  # labeling goes on
    finally:
        restarted.stop()
