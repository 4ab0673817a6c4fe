"""Annotators and their tokens: add, list, revoke, rotate, change role.

Only a hash of a token is stored, so a token is shown once, when it is made.
Revoking keeps every answer the person gave but ends their token, their
logins and their open items; rotating gives a new token and ends the old
one's sessions. Each function takes a session (the caller's transaction).
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from activelabel.errors import InvalidParameterError
from activelabel.store.repo import hash_token
from activelabel.store.schema import Annotation, Annotator, Assignment, LoginSession

__all__ = ["add", "listing", "revoke", "rotate", "set_role", "active_by_token", "PEOPLE_ROLES"]

PEOPLE_ROLES = ("annotator", "admin")
_MAX_NAME = 100  # the column's width


# Letters and marks that draw nothing: a name holding one looks like another name (Unicode's
# Default_Ignorable_Code_Point list beyond the format characters, which no library here exposes).
_BLANK_GLYPHS = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u3164\uffa0")


def hidden_character(name: str) -> str | None:
    """The first control or invisible character of ``name`` (zero-width, bidi override, fillers), or None."""
    for c in name:
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") or c in _BLANK_GLYPHS:
            return c
    return None


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameterError("annotator name must not be empty")
    if name != name.strip():
        raise InvalidParameterError(f"annotator name {name!r} has leading or trailing whitespace")
    if len(name) > _MAX_NAME:
        raise InvalidParameterError(f"annotator name {name[:20]!r}... is longer than {_MAX_NAME} characters")
    if hidden_character(name):
        raise InvalidParameterError(f"annotator name {name!r} holds a control or invisible character")
    return name


def _check_role(role: str) -> str:
    if role not in PEOPLE_ROLES:
        raise InvalidParameterError(f"role must be 'annotator' or 'admin', got {role!r}")
    return role


def _named(s: Session, name: str) -> Annotator:
    row = s.scalar(select(Annotator).where(Annotator.name == name))
    if row is None or row.role not in PEOPLE_ROLES:
        known = s.scalars(select(Annotator.name).where(Annotator.role.in_(PEOPLE_ROLES)).order_by(Annotator.name))
        listed = ", ".join(list(known)[:10]) or "none yet"
        raise InvalidParameterError(f"no annotator named {name!r} (annotators: {listed})")
    return row


def add(s: Session, name: str, role: str = "annotator") -> str:
    """Add a person and return their new token.

    A revoked person of that name comes back (their answers were kept); a
    name known only from imported files (an outside annotator) becomes a
    person who can log in. An active name is refused: use :func:`rotate`.
    """
    _check_name(name)
    _check_role(role)
    token = secrets.token_urlsafe(24)
    row = s.scalar(select(Annotator).where(Annotator.name == name))
    if row is None:
        s.add(Annotator(name=name, role=role, token_hash=hash_token(token)))
    elif row.role in PEOPLE_ROLES and row.revoked_at is None:
        raise InvalidParameterError(f"an annotator named {name!r} already exists; give them a new token with "
                                    f"'activelabel annotator rotate', or choose another name")
    else:
        row.role, row.token_hash, row.revoked_at = role, hash_token(token), None
    s.flush()
    return token


def listing(s: Session, now: datetime) -> list[dict]:
    """Every person: name, role, added, revoked, answers (labels, skips, unsure), open sessions, last seen."""
    answers = (select(Annotation.annotator_id, func.count().label("n")).where(Annotation.answer != "retract")
               .group_by(Annotation.annotator_id).subquery())
    live = (select(LoginSession.annotator_id, func.count().label("sessions"), func.max(LoginSession.seen_at).label("seen"))
            .where(LoginSession.ended_at.is_(None)).group_by(LoginSession.annotator_id).subquery())
    rows = s.execute(
        select(Annotator.name, Annotator.role, Annotator.created_at, Annotator.revoked_at, answers.c.n,
               live.c.sessions, live.c.seen)
        .join(answers, answers.c.annotator_id == Annotator.id, isouter=True)
        .join(live, live.c.annotator_id == Annotator.id, isouter=True)
        .where(Annotator.role.in_(PEOPLE_ROLES)).order_by(Annotator.name)).all()
    return [{"name": r.name, "role": r.role, "added": r.created_at, "revoked": r.revoked_at, "answers": r.n or 0,
             "sessions": 0 if r.revoked_at else (r.sessions or 0), "last_seen": r.seen} for r in rows]


def _end_sessions(s: Session, annotator_id: int, now: datetime) -> int:
    return s.execute(update(LoginSession).where(LoginSession.annotator_id == annotator_id,
                                                LoginSession.ended_at.is_(None)).values(ended_at=now)).rowcount


def revoke(s: Session, name: str, now: datetime) -> dict:
    """Revoke a person: their token and sessions end now, their open items go back to the queue."""
    row = _named(s, name)
    if row.revoked_at is not None:
        raise InvalidParameterError(f"{name!r} is already revoked (since {row.revoked_at:%Y-%m-%d %H:%M})")
    if row.role == "admin" and _other_admins(s, row.id) == 0:
        raise InvalidParameterError(f"{name!r} is the last admin; make someone else admin first")
    row.revoked_at, row.token_hash = now, None
    ended = _end_sessions(s, row.id, now)
    released = s.execute(update(Assignment).where(Assignment.annotator_id == row.id, Assignment.answered_at.is_(None),
                                                  Assignment.expires_at > now).values(expires_at=now)).rowcount
    return {"sessions_ended": ended, "items_released": released}


def rotate(s: Session, name: str, now: datetime) -> str:
    """A new token for a person (the old one and its sessions end now); the new token is returned."""
    row = _named(s, name)
    if row.revoked_at is not None:
        raise InvalidParameterError(f"{name!r} is revoked; add them again with 'activelabel annotator add'")
    token = secrets.token_urlsafe(24)
    row.token_hash = hash_token(token)
    _end_sessions(s, row.id, now)
    return token


def set_role(s: Session, name: str, role: str) -> str:
    """Make a person an annotator or an admin; returns the role they had."""
    _check_role(role)
    row = _named(s, name)
    if row.role == "admin" and role != "admin" and _other_admins(s, row.id) == 0:
        raise InvalidParameterError(f"{name!r} is the last admin; make someone else admin first")
    before, row.role = row.role, role
    return before


def _other_admins(s: Session, annotator_id: int) -> int:
    return s.scalar(select(func.count()).where(Annotator.role == "admin", Annotator.revoked_at.is_(None),
                                               Annotator.id != annotator_id)) or 0


def active_by_token(s: Session, token: str) -> Annotator | None:
    """The person holding ``token``, unless revoked (an outside annotator has no token)."""
    return s.scalar(select(Annotator).where(Annotator.token_hash == hash_token(token), Annotator.revoked_at.is_(None),
                                            Annotator.role.in_(PEOPLE_ROLES)))
