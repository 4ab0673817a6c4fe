"""The labeling app through TestClient: responses and the rows they leave in the database."""

import re
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from activelabel.project import Project, init_project
from activelabel.server import create_app
from activelabel.store.schema import Annotation, Item

from helpers import bearer, make_sms_project


@pytest.fixture
def project_dir(tmp_path, db_url):
    """300 real SMS messages, 40 labeled pool items and 30 labeled test items, one trained model, batch of 30."""
    return make_sms_project(tmp_path, db_url)


@pytest.fixture
def tokens(project_dir):
    with Project.open(project_dir) as p:
        return {"admin": p.add_annotator("boss", "admin"), "ann": p.add_annotator("ann"),
                "bob": p.add_annotator("bob")}


@pytest.fixture
def client(project_dir, tokens):
    with TestClient(create_app(project_dir, retrain=False)) as c:
        yield c


def rows(project_dir, model, *where):
    with Project.open(project_dir) as p, p.store.session(readonly=True) as s:
        return s.scalars(select(model).where(*where)).all()


def test_serving_answering_and_duplicates(client, tokens, project_dir):
    """Served items come from the batch and the test set; a repeated submit stores one answer."""
    r = client.get("/api/next", headers=bearer(tokens["ann"]))
    assert r.status_code == 200
    item = r.json()["item"]
    assert client.get("/api/next", headers=bearer(tokens["ann"])).json()["item"] == item  # reload: same item
    body = {"assignment_id": item["assignment_id"], "answer": "label", "label": "spam"}
    assert client.post("/api/answer", json=body, headers=bearer(tokens["ann"])).json() == {"stored": True}
    assert client.post("/api/answer", json=body, headers=bearer(tokens["ann"])).json() == {"stored": False, "reason": "again"}
    web = rows(project_dir, Annotation, Annotation.source == "web")
    assert len(web) == 1 and web[0].label == "spam" and web[0].seconds >= 0
    bad = {"assignment_id": item["assignment_id"], "answer": "label", "label": "eggs"}
    assert client.post("/api/answer", json=bad, headers=bearer(tokens["ann"])).status_code == 400
    other = {"assignment_id": item["assignment_id"], "answer": "skip"}
    assert client.post("/api/answer", json=other, headers=bearer(tokens["bob"])).status_code == 400  # not bob's


def test_two_annotators_never_share_an_item_and_test_items_are_interleaved(client, tokens, project_dir):
    served = {"ann": [], "bob": []}
    for _ in range(10):
        for who in ("ann", "bob"):
            item = client.get("/api/next", headers=bearer(tokens[who])).json()["item"]
            served[who].append(item["item_id"])
            client.post("/api/answer", json={"assignment_id": item["assignment_id"], "answer": "label",
                                             "label": "ham"}, headers=bearer(tokens[who]))
    assert not set(served["ann"]) & set(served["bob"])
    splits = {i.id: i.split for i in rows(project_dir, Item)}
    kinds = [splits[i] for i in served["ann"] + served["bob"]]
    assert kinds.count("test") == 4  # test_share 0.2 of 20 served (each annotator's every fifth)
    with Project.open(project_dir) as p, p.store.session(readonly=True) as s:
        from activelabel.store.queue import current_batch
        from activelabel.store.schema import BatchItem

        batch = set(s.scalars(select(BatchItem.item_id).where(BatchItem.batch_id == current_batch(s))))
    assert {i for i in served["ann"] + served["bob"] if splits[i] == "pool"} <= batch


def test_overlap_sends_the_configured_share_to_several_annotators(project_dir, tokens):
    path = project_dir / "activelabel.toml"
    path.write_text(path.read_text().replace("overlap_fraction = 0.0", "overlap_fraction = 0.5")
                    .replace("test_share = 0.2", "test_share = 0.0").replace("reserve_batches = 1", "reserve_batches = 0"))
    with Project.open(project_dir) as p:
        p.train(force=True)  # the overlap is fixed when a batch is published
    with TestClient(create_app(project_dir, retrain=False)) as c:
        seen = {}
        for who in ("ann", "bob", "admin"):
            for _ in range(30):
                item = c.get("/api/next", headers=bearer(tokens[who])).json()["item"]
                if item is None:
                    break
                seen.setdefault(item["item_id"], []).append(who)
                c.post("/api/answer", json={"assignment_id": item["assignment_id"], "answer": "label",
                                            "label": "ham"}, headers=bearer(tokens[who]))
    from activelabel.store.queue import QueueSettings, answers_needed

    splits = {i.id: i.split for i in rows(project_dir, Item)}
    pool = [i for i in seen if splits[i] == "pool"]  # ann took the whole batch first, so these are complete
    need = dict(zip(pool, answers_needed(np.array(pool), QueueSettings(overlap_fraction=0.5))))
    assert len(pool) == 30 and all(len(set(v)) == len(v) for v in seen.values())  # never twice to one person
    assert all(len(seen[i]) == need[i] for i in pool)  # overlap items 3 times, the others once
    assert 5 <= sum(n == 3 for n in need.values()) <= 25


def test_undo_retracts_and_serves_the_item_again(client, tokens, project_dir):
    first = client.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
    client.post("/api/answer", json={"assignment_id": first["assignment_id"], "answer": "label", "label": "spam"},
                headers=bearer(tokens["ann"]))
    assert client.post("/api/undo", headers=bearer(tokens["ann"])).json() == {"undone_item": first["item_id"]}
    again = client.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
    assert again["item_id"] == first["item_id"] and again["assignment_id"] != first["assignment_id"]
    events = rows(project_dir, Annotation, Annotation.source == "web")
    assert [e.answer for e in events] == ["label", "retract"] and events[1].retracts_id == events[0].id
    with Project.open(project_dir) as p:
        assert pd.isna(p.state().items.set_index("id").loc[first["item_id"], "label"])


def test_html_pages_and_csrf(client, tokens, project_dir):
    assert client.get("/label", headers={"accept": "text/html"}, follow_redirects=False).headers["location"] == "/login"
    r = client.post("/login", data={"token": tokens["ann"]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/label"
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers["set-cookie"].lower()
    page = client.get("/label").text
    assignment = re.search(r'name="assignment_id" value="(\d+)"', page).group(1)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    assert 'data-key="1"' in page and 'data-key="s"' in page and 'data-key="z"' in page
    form = {"assignment_id": assignment, "answer": "label", "label": "ham"}
    assert client.post("/label/answer", data=form).status_code == 403  # cookie without CSRF token
    assert client.post("/label/answer", data=form | {"csrf": "0" * 64}).status_code == 403
    assert len(rows(project_dir, Annotation, Annotation.source == "web")) == 0
    r = client.post("/label/answer", data=form | {"csrf": csrf})
    assert r.status_code == 200 and "labeled today <b id=\"today\">1</b>" in r.text
    assert [a.label for a in rows(project_dir, Annotation, Annotation.source == "web")] == ["ham"]
    assert client.post("/login", data={"token": "nope"}).status_code == 401


def test_security_refusals(client, tokens, project_dir):
    assert client.get("/api/next").status_code == 401
    assert client.get("/api/next", headers=bearer("wrong")).status_code == 401
    for path in ("/admin", "/admin/export?format=csv"):
        assert client.get(path, headers=bearer(tokens["ann"])).status_code == 403
        assert client.get(path).status_code == 401
    assert client.post("/admin/retrain", headers=bearer(tokens["ann"])).status_code == 403
    assert client.get("/admin", headers=bearer(tokens["admin"])).status_code == 200
    for attempt in ("/image/../../../etc/passwd", "/image/..%2F..%2Fetc%2Fpasswd", "/image/1", "/image/%2e%2e"):
        assert client.get(attempt, headers=bearer(tokens["admin"])).status_code == 404


def test_script_items_render_escaped(tmp_path):
    p = init_project(tmp_path / "proj", ["a", "b"])
    pd.DataFrame({"id": ["x", "y", "z"], "text": ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>",
                                                  "plain"]}).to_csv(tmp_path / "i.csv", index=False)
    p.import_items(tmp_path / "i.csv", text_column="text", id_column="id", test_size=3)
    token = p.add_annotator("ann")
    p.close()
    with TestClient(create_app(tmp_path / "proj", retrain=False)) as c:
        c.post("/login", data={"token": token})
        pages = []
        for _ in range(3):
            page = c.get("/label").text
            pages.append(page)
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
            a = re.search(r'name="assignment_id" value="(\d+)"', page).group(1)
            c.post("/label/answer", data={"assignment_id": a, "answer": "skip", "csrf": csrf})
    text = "".join(pages)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "<script>alert(1)" not in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text and "<img src=x" not in text


def test_images_only_from_the_project_and_only_to_whom_they_were_served(tmp_path):
    (tmp_path / "imgs").mkdir()
    for i in range(4):
        Image.new("RGB", (6, 6), (60 * i, 0, 0)).save(tmp_path / "imgs" / f"{i}.png")
    pd.DataFrame({"f": [f"imgs/{i}.png" for i in range(4)]}).to_csv(tmp_path / "images.csv", index=False)
    p = init_project(tmp_path / "proj", ["dark", "light"])
    p.import_items(tmp_path / "images.csv", image_column="f", test_size=4)
    ann, bob = p.add_annotator("ann"), p.add_annotator("bob")
    p.close()
    with TestClient(create_app(tmp_path / "proj", retrain=False)) as c:
        item = c.get("/api/next", headers=bearer(ann)).json()["item"]
        r = c.get(item["image_url"], headers=bearer(ann))
        assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert c.get(item["image_url"], headers=bearer(bob)).status_code == 404  # not served to bob
        page = c.get("/label", headers=bearer(ann)).text
        assert f'src="/image/{item["item_id"]}"' in page


def test_admin_page_shows_progress_curve_and_failures(client, tokens, project_dir):
    page = client.get("/admin", headers=bearer(tokens["admin"])).text
    assert "<svg" in page and 'id="cycle-table"' in page and "continue: no stopping rule has fired" in page
    assert re.search(r'id="labeled">40 pool, 30 test', page)
    assert "ann" in page and "bob" in page
    with Project.open(project_dir) as p:
        p.record_failure("cannot build model 'no.such.Model'")
    page = client.get("/admin", headers=bearer(tokens["admin"])).text
    assert "The last training failed" in page and "no.such.Model" in page
    item = client.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]  # labeling goes on
    assert item is not None
    r = client.get("/admin/export?format=jsonl", headers=bearer(tokens["admin"]))
    assert r.status_code == 200 and len(r.text.splitlines()) == 300


def test_retrainer_publishes_the_next_batch_when_the_batch_is_done(project_dir, tokens):
    """Answer the whole batch; the worker trains in another process and a new batch replaces the old one."""
    with TestClient(create_app(project_dir, retrain=True, poll_seconds=0.2)) as c:
        first_batch = c.get("/api/next", headers=bearer(tokens["ann"])).json()
        c.post("/api/answer", json={"assignment_id": first_batch["item"]["assignment_id"], "answer": "label",
                                    "label": "ham"}, headers=bearer(tokens["ann"]))
        while True:
            item = c.get("/api/next", headers=bearer(tokens["ann"])).json()["item"]
            if item is None or c.get("/api/next", headers=bearer(tokens["ann"])).json()["progress"]["left"] == 0:
                break
            c.post("/api/answer", json={"assignment_id": item["assignment_id"], "answer": "label",
                                        "label": "ham" if item["item_id"] % 3 else "spam"},
                   headers=bearer(tokens["ann"]))
        # the last item was served; answer it so the batch is done
        if item is not None:
            c.post("/api/answer", json={"assignment_id": item["assignment_id"], "answer": "label", "label": "ham"},
                   headers=bearer(tokens["ann"]))
        deadline = time.monotonic() + 120
        with Project.open(project_dir) as p:
            while len(p.state().cycles) < 2:
                assert time.monotonic() < deadline, "no new cycle"
                time.sleep(0.2)
            status = p.status()
        assert status["cycles"] == 2 and status["last_error"] is None
        progress = c.get("/api/next", headers=bearer(tokens["ann"])).json()["progress"]
        assert progress["size"] == 30 and progress["left"] >= 29


def test_a_failed_training_is_shown_and_labeling_goes_on(project_dir, tokens):
    """A model that cannot be built: the worker records the failure, the admin sees it, the old batch is served."""
    path = project_dir / "activelabel.toml"
    path.write_text(path.read_text().replace('model = ""', 'model = "no.such.Model"'))
    with TestClient(create_app(project_dir, retrain=True, poll_seconds=0.2)) as c:
        before = c.get("/api/next", headers=bearer(tokens["ann"])).json()
        nothing = c.post("/admin/retrain", headers=bearer(tokens["admin"]), follow_redirects=False)
        assert nothing.headers["location"] == "/admin?retrain=nothing_new"  # no new answer: nothing to retrain
        assert "No new answers since the last cycle" in c.get(nothing.headers["location"],
                                                               headers=bearer(tokens["admin"])).text
        c.post("/api/answer", json={"assignment_id": before["item"]["assignment_id"], "answer": "label",
                                    "label": "ham"}, headers=bearer(tokens["ann"]))
        assert c.post("/admin/retrain", headers=bearer(tokens["admin"]), follow_redirects=False).status_code == 303
        deadline = time.monotonic() + 60
        while "The last training failed" not in (page := c.get("/admin", headers=bearer(tokens["admin"])).text):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert "cannot build model &#39;no.such.Model&#39;" in page
        after = c.get("/api/next", headers=bearer(tokens["bob"])).json()
        assert after["item"] is not None and after["progress"]["size"] == before["progress"]["size"] == 30
    with Project.open(project_dir) as p:
        status = p.status()
    assert status["cycles"] == 1 and "no.such.Model" in status["last_error"]["error"]
