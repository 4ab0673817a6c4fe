"""Login sessions: a browser logs in once with its token and then carries a random session id.

The cookie holds the id, the table only its hash, so a copy of the database
lets nobody in. A session is valid while it was not ended (logout), was
used within the idle time, is younger than the absolute limit, and its
person is neither revoked nor rotated to a new token since the login.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from activelabel.store.schema import Annotator, LoginSession

__all__ = ["SessionLimits", "Found", "start", "lookup", "touch", "end", "hash_id"]

_TOUCH_EVERY = timedelta(minutes=1)  # write ``seen_at`` at most this often: a read per request, a write per minute


@dataclass(frozen=True)
class SessionLimits:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class Found:
    annotator_id: int
    name: str
    role: str
    id_hash: str


def hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(s: Session, annotator: Annotator, now: datetime) -> str:
    """A new session for ``annotator``; returns its id (for the cookie; only its hash is stored)."""
    session_id = secrets.token_urlsafe(32)
    s.execute(insert(LoginSession).values(id_hash=hash_id(session_id), annotator_id=annotator.id,
                                          token_hash=annotator.token_hash, created_at=now, seen_at=now))
    return session_id


def lookup(s: Session, session_id: str, now: datetime, limits: SessionLimits) -> tuple[Found | None, bool]:
    """The session's person, or None when it is unknown or has ended; and whether ``seen_at`` wants a touch."""
    row = s.execute(
        select(LoginSession.id_hash, LoginSession.created_at, LoginSession.seen_at, Annotator.id, Annotator.name,
               Annotator.role)
        .join(Annotator, Annotator.id == LoginSession.annotator_id)
        .where(LoginSession.id_hash == hash_id(session_id), LoginSession.ended_at.is_(None),
               Annotator.revoked_at.is_(None), Annotator.token_hash == LoginSession.token_hash)).first()
    if row is None:
        return None, False

    def utc(t):
        return t if t.tzinfo else t.replace(tzinfo=now.tzinfo)

    if now - utc(row.seen_at) > limits.idle or now - utc(row.created_at) > limits.absolute:
        return None, False
    return Found(row.id, row.name, row.role, row.id_hash), now - utc(row.seen_at) > _TOUCH_EVERY


def touch(s: Session, id_hash: str, now: datetime) -> None:
    s.execute(update(LoginSession).where(LoginSession.id_hash == id_hash).values(seen_at=now))


def end(s: Session, session_id: str, now: datetime) -> bool:
    """End a session (logout); False when it was unknown or already ended."""
    return s.execute(update(LoginSession).where(LoginSession.id_hash == hash_id(session_id),
                                                LoginSession.ended_at.is_(None)).values(ended_at=now)).rowcount > 0
