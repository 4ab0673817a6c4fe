"""Retraining outside the request path.

A thread watches the project and, when the current batch is closed (every
item answered, skipped by enough people, or left with nobody labeling now
who could take it), or on the configured schedule, or when an admin asks,
runs ``activelabel train`` in a separate process. That process holds the
project's train lock, fits, evaluates and publishes the next batch in one
transaction, so annotators switch to it atomically and never wait: until
then they label the previous batch's reserve. A failure is recorded as a
failed cycle, shown to the admin, and labeling goes on with the previous
batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from activelabel.project.training import TRAIN_LEASE_SECONDS, seed_batch
from activelabel.store import leases, queue, repo

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["Retrainer"]


class Retrainer:
    """Background retraining for one project; ``start()`` it with the app, ``stop()`` it at shutdown."""

    def __init__(self, project: Project, poll_seconds: float = 2.0) -> None:
        self.project = project
        self.poll_seconds = poll_seconds
        self.running = False
        self.last_error: str | None = None
        self.last_note: str | None = None
        self.last_seconds: float | None = None
        self._requested = threading.Event()
        self._stop = threading.Event()
        self._last_time = time.monotonic()
        self._tried = 0  # newest answer id when training was last attempted
        self._thread = threading.Thread(target=self._loop, name="activelabel-retrainer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._requested.set()
        self._thread.join(timeout=5)

    def request(self) -> None:
        """Retrain as soon as possible (the admin's button)."""
        self._requested.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._requested.wait(self.poll_seconds)
            if self._stop.is_set():
                return
            requested = self._requested.is_set()
            self._requested.clear()
            try:
                if (requested and self.has_new_answers()) or self.due_now():
                    self._train()
                seed_batch(self.project)  # no model yet (or the first training failed): another random batch
            except Exception as error:  # keep the worker alive whatever happens; the admin sees it
                self.last_error = f"{type(error).__name__}: {error}"

    def _last_mark(self, s) -> int | None:
        """The newest answer id the last good cycle trained on (None before any cycle)."""
        newest = repo.newest_good_cycle(s)
        if newest is None:
            return None
        return -1 if newest[1] is None else newest[1]

    def has_new_answers(self) -> bool:
        """Was anything answered (or undone) since the last cycle trained?"""
        with self.project.store.session(readonly=True) as s:
            mark = self._last_mark(s)
            return repo.newest_answer_id(s) != (mark if mark is not None else 0)

    def due_now(self) -> bool:
        """New labels came in and the current batch is closed, or the retraining schedule is due."""
        with self.project.store.session(readonly=True) as s:
            mark = self._last_mark(s)
            newest = repo.newest_answer_id(s, labels_only=True)
            if not newest or (mark is not None and newest <= mark) or newest <= self._tried:
                return False  # no label since the last cycle, or since the last attempt (which failed)
            if leases.live_holder(s, "train", TRAIN_LEASE_SECONDS) is not None:
                return False  # the CLI or another process is training now
            closed = queue.batch_closed(s, self.project.config.queue_settings(), datetime.now(UTC))
        if closed:
            return True
        minutes = self.project.config.retrain_minutes
        return minutes > 0 and time.monotonic() - self._last_time >= minutes * 60

    def _train(self) -> None:
        with self.project.store.session(readonly=True) as s:
            self._tried = repo.newest_answer_id(s)
        self.running = True
        started = time.monotonic()
        try:
            # at a lower CPU priority, so serving annotators stays fast while a model trains
            done = subprocess.run([sys.executable, "-m", "activelabel.cli", "train", str(self.project.folder)],
                                  capture_output=True, text=True, preexec_fn=lambda: os.nice(10))
        finally:
            self.running = False
            self._last_time = time.monotonic()
            self.last_seconds = self._last_time - started
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        message = lines[-1].removeprefix("error: ") if lines else f"exit code {done.returncode}"
        if done.returncode == 0:
            self.last_error = None
            self.last_note = " ".join(done.stdout.split()) or None  # the CLI's summary, unwrapped
        elif "another training is running" in message:
            self.last_note = message  # the CLI (or another server's worker) is training: not a failure
        else:
            self.last_error = message
            self.project.record_failure(message)

    @property
    def status(self) -> dict:
        return {"running": self.running, "last_error": self.last_error, "last_seconds": self.last_seconds,
                "note": self.last_note}
