"""Screenshots of the admin page, desktop and phone (375 px), with a real Chromium against a real server.

Builds the demo project (real SMS messages) in a temporary folder, has three
annotators answer two batches through the queue (labels from the data set's
truth, a few skips, unsure and undos, one answer left open past the idle
time), labels more test items between cycles so the learning curve shows a
changed test set, then starts ``activelabel serve`` and saves
``docs/screenshots/admin-desktop.png`` and ``docs/screenshots/admin-phone.png``.

Usage::

    .venv/bin/python docs/admin_screenshots.py
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from activelabel.demo import DEMO_DATA, build_demo
from activelabel.project import Project
from activelabel.store import queue, repo

OUT = Path(__file__).parent / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def answer_batch(p: Project, people: dict[str, int], truth: pd.Series, start: datetime, rng) -> datetime:
    """Everyone answers from the queue until the batch is done; returns the clock after the last answer."""
    settings = p.config.queue_settings()
    at, names = start, list(people)
    for k in range(400):
        who = people[names[k % len(names)]]
        with p.store.session() as s:
            served = queue.serve_next(s, who, settings, at)
            if served is None or queue.batch_progress(s)["left"] == 0:
                break
            text = repo.items_frame(s, ids=[served.item_id])["text"].iloc[0]
        seconds = 364.0 if k == 7 else float(rng.gamma(3.0, 2.5))
        roll = rng.random()
        kind, label = ("skip", None) if roll < 0.04 else ("unsure", None) if roll < 0.07 else ("label", truth[text])
        with p.store.session() as s:
            queue.answer(s, served.assignment_id, who, kind, label, p.config.labels, at + timedelta(seconds=seconds),
                         settings)
            if roll > 0.98:
                queue.undo_last(s, who, settings, at + timedelta(seconds=seconds + 2))
        at += timedelta(seconds=seconds + 1)
    return at


def label_more_test_items(p: Project, truth: pd.Series, folder: Path, n: int) -> None:
    st = p.state()
    test = st.items[(st.items["split"] == "test") & st.items["label"].isna()].head(n)
    with p.store.session(readonly=True) as s:
        texts = repo.items_frame(s, ids=test["id"])
    path = folder / f"more-test-{n}.csv"
    pd.DataFrame({"id": texts["external_id"], "label": texts["text"].map(truth).to_numpy()}).to_csv(path, index=False)
    p.import_labels(path)


def build(folder: Path) -> str:
    tokens = build_demo(folder)
    truth = pd.read_parquet(DEMO_DATA).drop_duplicates("text").set_index("text")["label"]
    rng = np.random.default_rng(3)
    with Project.open(folder) as p:
        people = {}
        for name in ("amira.haddad", "jonas", "li.wei"):
            p.add_annotator(name)
            with p.store.session(readonly=True) as s:
                people[name] = int(repo.annotators_frame(s).set_index("name").loc[name, "id"])
        clock = datetime.now(UTC) - timedelta(hours=3)
        for extra in (60, 40):
            clock = answer_batch(p, people, truth, clock, rng)
            label_more_test_items(p, truth, folder, extra)
            p.train()
        answer_batch(p, people, truth, clock, rng)
    return tokens["admin"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sms-spam"
        admin = build(folder)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "activelabel.cli", "serve", str(folder), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the server did not start")
                    time.sleep(0.2)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
                for name, viewport in (("admin-desktop", {"width": 1280, "height": 900}),
                                       ("admin-phone", {"width": 375, "height": 740})):
                    page = browser.new_context(viewport=viewport, device_scale_factor=1).new_page()
                    page.goto(url + "/login")
                    page.fill("#token", admin)
                    page.click("button[type=submit]")
                    page.wait_for_url(url + "/admin")
                    wide = page.evaluate("document.documentElement.scrollWidth")
                    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                    print(f"{OUT / name}.png: page {wide} px wide in a {viewport['width']} px window")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
