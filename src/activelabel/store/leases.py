"""Leases: named, exclusive, expiring holds on a project, kept in its database.

``train`` makes one cycle run at a time (the CLI and the server's
retrainer share it); ``serve`` makes one server run per project. A lease
lives in the database rather than in a file beside it, so it holds for
PostgreSQL projects used from several machines too. The holder renews its
heartbeat; a lease whose heartbeat is older than its time-out, or whose
holder process on this host is gone, is taken over.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
import zlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from activelabel.store.schema import Lease, utcnow

if TYPE_CHECKING:
    from activelabel.store.db import Store

__all__ = ["lock", "holder_id", "acquire", "renew", "release", "describe", "live_holder", "Keeper"]


def holder_id(what: str = "") -> str:
    """A holder name unique to this process and call: ``host|pid|token|what``."""
    return f"{socket.gethostname()}|{os.getpid()}|{uuid.uuid4().hex[:8]}|{what}"[:300]


def describe(holder: str) -> str:
    """A holder in words, e.g. ``pid 4242 on host1 (serving http://127.0.0.1:8000)``."""
    host, pid, _, what = (holder.split("|", 3) + ["", "", "", ""])[:4]
    return f"pid {pid} on {host}" + (f" ({what})" if what else "")


def _gone(holder: str) -> bool:
    """The holder was a process on this host that no longer runs."""
    host, pid = (holder.split("|") + [""])[:2]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _aware(moment: datetime, now: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=now.tzinfo)


def lock(s: Session, name: str) -> None:
    """Serialize writers of ``name`` until the transaction ends.

    SQLite's writing session already holds the database's write lock (BEGIN
    IMMEDIATE); on PostgreSQL this takes a transaction-scoped advisory lock, so
    two first-time inserts of one lease, or two imports of one file, cannot race.
    """
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(name.encode())})


def acquire(s: Session, name: str, holder: str, timeout: float, now: datetime | None = None) -> str | None:
    """Take lease ``name`` for ``holder``; None when taken, else the current holder (still alive).

    ``timeout`` is in seconds: a lease not renewed for that long is free.
    """
    now = now or utcnow()
    lock(s, f"lease:{name}")
    row = s.execute(select(Lease.holder, Lease.heartbeat_at).where(Lease.name == name)).first()
    if row is None:
        s.add(Lease(name=name, holder=holder, acquired_at=now, heartbeat_at=now))
        s.flush()
        return None
    if row.holder != holder and not _stale(row, timeout, now):
        return row.holder
    s.execute(update(Lease).where(Lease.name == name).values(holder=holder, acquired_at=now, heartbeat_at=now))
    return None


def renew(s: Session, name: str, holder: str, now: datetime | None = None) -> bool:
    """Renew the heartbeat; False when the lease is no longer this holder's."""
    result = s.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                       .values(heartbeat_at=now or utcnow()))
    return result.rowcount == 1


def release(s: Session, name: str, holder: str) -> None:
    s.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))


def live_holder(s: Session, name: str, timeout: float, now: datetime | None = None) -> str | None:
    """Who holds lease ``name`` now (None when nobody does, or the holder is stale)."""
    now = now or utcnow()
    row = s.execute(select(Lease.holder, Lease.heartbeat_at).where(Lease.name == name)).first()
    if row is None or _stale(row, timeout, now):
        return None
    return row.holder


def _stale(row, timeout: float, now: datetime) -> bool:
    return _aware(row.heartbeat_at, now) < now - timedelta(seconds=timeout) or _gone(row.holder)


class Keeper:
    """Renews a held lease from a daemon thread every ``timeout / 3`` seconds until :meth:`stop`.

    ``lost`` is set when a renewal finds the lease taken by someone else
    (after this process stalled past the time-out).
    """

    def __init__(self, store: Store, name: str, holder: str, timeout: float) -> None:
        self.store, self.name, self.holder, self.timeout = store, name, holder, timeout
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"activelabel-lease-{name}", daemon=True)

    def start(self) -> Keeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.timeout / 3):
            try:
                with self.store.session() as s:
                    if not renew(s, self.name, self.holder):
                        self.lost.set()
            except Exception:  # a database hiccup: try again at the next beat
                continue

    def stop(self, release_it: bool = True) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if release_it:
            with self.store.session() as s:
                release(s, self.name, self.holder)
