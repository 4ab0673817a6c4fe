"""Retraining outside the request path.

A thread watches the project and, when the current batch is answered (or
on the configured schedule, or when an admin asks), runs ``activelabel
train`` in a separate process. That process fits, evaluates and publishes
the next batch in one transaction, so annotators switch to it atomically
and never wait; a failure is recorded as a failed cycle, shown to the
admin, and labeling goes on with the previous batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from sqlalchemy import func, select

from activelabel.store import queue, repo
from activelabel.store.schema import Annotation

__all__ = ["Retrainer"]


class Retrainer:
    """Background retraining for one project; ``start()`` it with the app, ``stop()`` it at shutdown."""

    def __init__(self, project, poll_seconds: float = 2.0):
        self.project = project
        self.poll_seconds = poll_seconds
        self.running = False
        self.last_error: str | None = None
        self.last_seconds: float | None = None
        self._requested = threading.Event()
        self._stop = threading.Event()
        self._mark: int | None = None  # newest annotation id seen by the last attempt
        self._last_time = time.monotonic()
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
                if requested or self._due():
                    self._train()
            except Exception as error:  # keep the worker alive whatever happens; the admin sees it
                self.last_error = f"{type(error).__name__}: {error}"

    def _due(self) -> bool:
        with self.project.store.session(readonly=True) as s:
            newest = s.scalar(select(func.max(Annotation.id)).where(Annotation.answer == "label")) or 0
            if self._mark is None:  # first look after start: what the last cycle already saw
                cycles = repo.cycles(s)
                self._mark = newest if cycles and cycles[-1].error is None else 0
            if newest <= self._mark:
                return False
            progress = queue.batch_progress(s)
        if progress["batch"] is None or progress["left"] == 0:
            return True
        minutes = self.project.config.retrain_minutes
        return minutes > 0 and time.monotonic() - self._last_time >= minutes * 60

    def _train(self) -> None:
        with self.project.store.session(readonly=True) as s:
            self._mark = s.scalar(select(func.max(Annotation.id))) or 0
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
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            message = lines[-1].removeprefix("error: ") if lines else f"exit code {done.returncode}"
            self.last_error = message
            self.project.record_failure(message)
        else:
            self.last_error = None

    @property
    def status(self) -> dict:
        return {"running": self.running, "last_error": self.last_error, "last_seconds": self.last_seconds}
