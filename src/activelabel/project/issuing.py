"""Issuing batches to an outside labeling service (``activelabel query``) and taking them back.

Issuing is exact: the batch file is written first (to a temporary file
beside it, synced, then renamed into place) and the batch is recorded only
once the file is complete, in the same writing transaction that checks
that none of its items went out meanwhile. When a concurrent ``query``
took some of them, the batch is chosen again without those; two runs
never issue the same item.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.errors import (
    BusyError,
    InvalidParameterError,
    ProjectError,
    UnwritableFileError,
)
from activelabel.project.features import item_features
from activelabel.project.state import labeled_rows, state
from activelabel.project.training import latest_model, select
from activelabel.store import issuing, repo
from activelabel.store.schema import utcnow

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["query", "batches", "release"]

_ATTEMPTS = 5  # selections tried when concurrent runs keep taking the chosen items


class _Taken(Exception):
    """Some chosen items went out while this batch was being written."""

    def __init__(self, ids: set[int]):
        self.ids = ids


def query(project: Project, n: int, *, out: str | Path | None = None, test: bool = False,
          reissue: bool = False) -> pd.DataFrame:
    """Issue the next ``n`` items for an outside labeling service, write them to ``out`` and record them.

    With the latest model the project's strategy picks them among
    unlabeled pool items; before any model exists they are drawn at random
    (a seed set). With ``test`` the batch is made of unlabeled held-out test
    items instead (random order), labeled like any other but never trained
    on. Items out with an outside service (issued, not released, not yet
    labeled) and items open in the web app's batch are left out unless
    ``reissue``.

    ``out`` (JSONL) is written completely before the batch is recorded; when
    it cannot be written nothing is recorded, and when recording fails the
    file is removed. Without ``out`` the batch is only recorded.

    Raises
    ------
    UnwritableFileError
        ``out`` cannot be written (missing or read-only folder, disk full).
    BusyError
        Concurrent ``query`` runs took the chosen items ``_ATTEMPTS`` times in a row.
    """
    if n < 1:
        raise InvalidParameterError(f"-n must be >= 1, got {n}")
    out = None if out is None else Path(out)
    taken: set[int] = set()
    for attempt in range(_ATTEMPTS):
        with project.store.session(readonly=True) as s:  # refuse early, before selecting; checked again when recording
            _check_budget(project, s, n, test=test)
        frame, batch, strategy = _choose(project, n, test=test, reissue=reissue, exclude=taken, attempt=attempt)
        tmp = None if out is None else _write_temp(frame, out)
        try:
            _record(project, batch, strategy, out, tmp, check=not reissue, budget=(n, test))
        except _Taken as conflict:
            taken |= conflict.ids
            continue
        return frame
    raise BusyError(f"other query runs kept issuing the chosen items ({_ATTEMPTS} tries); try again")


def _check_budget(project: Project, s, n: int, *, test: bool) -> None:
    """Refuse a batch of ``n`` the money or label budget cannot pay for: what is paid, open in the web app and
    out with outside services already counts, as in the web app. Called under the issuing lock, so two
    ``query`` runs at once cannot both spend the same rest of the budget."""
    from activelabel.store import queue

    settings = project.config.queue_settings()
    if settings.answer_cap is None and (settings.label_cap is None or test):
        return
    use = queue.budget_use(s, utcnow())
    if settings.answer_cap is not None and n > settings.answer_cap - use.paid - use.out:
        left = settings.answer_cap - use.paid - use.out
        raise InvalidParameterError(
            f"-n {n} is more than the budget pays for: {max(left, 0):,} answers left of {settings.answer_cap:,} "
            f"({project.config.budget:,.2f} at {project.config.price_per_label:,.2f}; {use.out:,} out with people now)")
    if settings.label_cap is not None and not test and n > settings.label_cap - use.labeled - use.out_pool:
        left = settings.label_cap - use.labeled - use.out_pool
        raise InvalidParameterError(f"-n {n} is more than the label budget allows: {max(left, 0):,} training "
                                    f"labels left of {settings.label_cap:,} ({use.out_pool:,} out now)")


def _choose(project: Project, n: int, *, test: bool, reissue: bool, exclude: set[int],
            attempt: int) -> tuple[pd.DataFrame, dict, str]:
    """Select a batch (not yet recorded) and its file content."""
    st = state(project)
    items = st.items
    with project.store.session(readonly=True) as s:
        web = issuing.open_web_items(s)
        salt = 100_000 + 1_000 * issuing.count_issued_batches(s) + attempt
    blocked = np.array(sorted(exclude), dtype=np.int64)
    if not reissue:
        blocked = np.union1d(blocked, np.union1d(st.issued, web))
    if test:
        free = np.flatnonzero((items["split"].to_numpy() == "test") & items["label"].isna().to_numpy()
                              & ~items["retired"].to_numpy() & ~items["id"].isin(blocked).to_numpy())
        rng = np.random.default_rng([project.config.seed, 11, salt])
        picks = rng.permutation(free)[:n]
        batch = {"item_ids": items["id"].to_numpy()[picks].tolist(), "scores": [np.nan] * len(picks),
                 "is_random": [True] * len(picks), "n_random": len(picks)}
        strategy = "test"
    else:
        model = latest_model(project)
        X = item_features(project, items) if model is not None else None  # a random seed set needs no features
        train_rows = labeled_rows(items, "pool")
        view = SimpleNamespace(**{**vars(st), "issued": blocked})  # select() leaves out st.issued
        batch = select(project, model, X, items, view, train_rows, items["label"].to_numpy()[train_rows].astype(str),
                       n, salt=salt)
        strategy = project.config.strategy if model is not None else "random"
    ids = batch["item_ids"]
    with project.store.session(readonly=True) as s:
        content = repo.items_frame(s, ids=ids).set_index("id").loc[ids]
    frame = pd.DataFrame({"id": content["external_id"].to_numpy(), "split": content["split"].to_numpy(),
                          "kind": content["kind"].to_numpy(), "text": content["text"].to_numpy(),
                          "image": content["image"].to_numpy(), "data": content["data"].to_numpy(),
                          "rank": np.arange(len(content)), "score": batch["scores"], "random": batch["is_random"],
                          "strategy": strategy})
    return frame, batch, strategy


def _write_temp(frame: pd.DataFrame, out: Path) -> Path:
    """Write the batch as JSONL to a temporary file beside ``out`` and sync it to disk; returns its path."""
    empty = [c for c in ("text", "image", "data") if frame[c].isna().all()]
    body = frame.drop(columns=empty).to_json(orient="records", lines=True, force_ascii=False) if len(frame) else ""
    if body and not body.endswith("\n"):
        body += "\n"
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
    except OSError as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UnwritableFileError(f"cannot write {out}: {error.strerror or error}; nothing was issued") from None
    return tmp


def _sync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _record(project: Project, batch: dict, strategy: str, out: Path | None, tmp: Path | None, *, check: bool,
            budget: tuple[int, bool] | None = None) -> None:
    """Check and record the batch in one writing transaction; move the file into place just before the commit."""
    placed = False
    try:
        with project.store.session() as s:
            issuing.lock_issuing(s)
            if budget is not None:
                _check_budget(project, s, len(batch["item_ids"]), test=budget[1])
            if check:
                clash = issuing.unavailable(s, batch["item_ids"])
                if clash:
                    raise _Taken(clash)
            if batch["item_ids"]:
                issuing.add_issued_batch(s, strategy=strategy, file=None if out is None else str(out.resolve()),
                                         item_ids=batch["item_ids"], scores=batch["scores"],
                                         is_random=batch["is_random"])
            if tmp is not None:
                try:
                    os.replace(tmp, out)
                except OSError as error:
                    raise UnwritableFileError(f"cannot write {out}: {error.strerror or error}; "
                                              "nothing was issued") from None
                placed = True
                _sync_dir(out.parent)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if placed:
            with contextlib.suppress(OSError):
                out.unlink()
        raise


def batches(project: Project) -> list[dict]:
    """Every issued batch, oldest first: id, created_at, strategy, file, size, answered, unanswered, released_at."""
    with project.store.session(readonly=True) as s:
        return [vars(b).copy() for b in issuing.issued_batches(s)]


def release(project: Project, batch_id: int) -> dict:
    """Return an issued batch's unanswered items to the pool; its summary, with ``already`` when it was released.

    Raises
    ------
    ProjectError
        When the project has no issued batch ``batch_id``.
    """
    if not 0 < batch_id < 2**63:  # beyond a 64-bit id the database fails on the number itself
        raise ProjectError(f"no issued batch {batch_id}; see activelabel batches")
    with project.store.session() as s:
        found = issuing.issued_batches(s, batch_id)
        if not found:
            raise ProjectError(f"no issued batch {batch_id}; see activelabel batches")
        released = issuing.release_batch(s, batch_id, utcnow())
        summary = vars(issuing.issued_batches(s, batch_id)[0]).copy()
    summary["already"] = not released
    return summary
