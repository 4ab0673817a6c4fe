"""Who is asking: login sessions for browsers, tokens for scripts, admin-only routes, CSRF, guess limits.

A browser logs in once with its token and then carries a random session id
in an HttpOnly, SameSite=Strict cookie (``Secure`` over HTTPS); the session
ends at logout, after the project's idle or absolute limit, and when its
person is revoked or given a new token. Scripts send ``Authorization:
Bearer <token>``. Every cookie-authenticated write (form or JSON) carries a
CSRF token, an HMAC of the session under the project's secret, which a page
from another site or port cannot know; Bearer requests need none, since a
browser never adds that header on its own. Failed token guesses are limited
per client address.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path

from fastapi import HTTPException, Request
from limits import parse, storage, strategies

from activelabel.store import annotators, repo, sessions

__all__ = ["Caller", "COOKIE", "Guard", "authenticate", "require_admin", "csrf_token", "check_csrf", "csrf_protect",
           "project_secret", "client_address"]

COOKIE = "activelabel_session"
_TOKEN_CACHE_SECONDS = 2.0  # a token found is trusted this long without asking the database again
_TOKEN_CACHE_SIZE = 1024  # tokens remembered at most (found ones only: a guess is never remembered)
GUESSES = "20/minute"  # failed logins or unknown tokens per client address, then 429
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Caller:
    annotator_id: int
    name: str
    role: str
    session_hash: str | None  # the login session's hash; None for a Bearer token

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def via_cookie(self) -> bool:
        return self.session_hash is not None


class Guard:
    """Per app: the bounded cache of tokens found, and the limit on failed guesses per client address."""

    def __init__(self, guesses: str = GUESSES):
        self.found: OrderedDict[str, tuple[float, Caller]] = OrderedDict()
        self.rule = parse(guesses)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

    def remember(self, digest: str, caller: Caller) -> None:
        self.found[digest] = (time.monotonic() + _TOKEN_CACHE_SECONDS, caller)
        self.found.move_to_end(digest)
        while len(self.found) > _TOKEN_CACHE_SIZE:
            self.found.popitem(last=False)

    def recall(self, digest: str) -> Caller | None:
        hit = self.found.get(digest)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def forget(self) -> None:
        """After a revoke or a rotation in this process: look every token up again."""
        self.found.clear()

    def failed(self, address: str) -> None:
        """Count a failed guess from ``address``; 429 once it used up this minute's.

        Only failures count and a right token always passes, so one stale
        script or one guesser behind a shared address (a NAT, a proxy not
        listed in ``trusted_proxies``) cannot lock the rest of the team out;
        at 20 guesses a minute a 192-bit token stays out of reach.
        """
        if not self.limiter.hit(self.rule, address):
            stats = self.limiter.get_window_stats(self.rule, address)
            wait = max(1, int(stats.reset_time - time.time()))
            raise HTTPException(status_code=429, detail=f"too many failed logins from {address}; "
                                                        f"try again in {wait} s", headers={"Retry-After": str(wait)})


def client_address(request: Request) -> str:
    """The client's address (uvicorn already took it from X-Forwarded-For when a trusted proxy sent it)."""
    return request.client.host if request.client else "unknown"


def project_secret(folder: Path) -> bytes:
    """The project's CSRF secret, made on first use and readable only by its owner."""
    path = Path(folder) / "secret.key"
    if not path.exists():
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def limits_of(config) -> sessions.SessionLimits:
    return sessions.SessionLimits(idle=timedelta(hours=config.session_idle_hours),
                                  absolute=timedelta(days=config.session_max_days))


def authenticate(request: Request) -> Caller | None:
    """The caller from the Authorization header or the session cookie, or None (429 after too many guesses)."""
    state = request.app.state
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        if not token:
            return None
        digest = repo.hash_token(token)
        found = state.guard.recall(digest)
        if found is not None:
            return found
        with state.project.store.session(readonly=True) as s:
            row = annotators.active_by_token(s, token)
            found = None if row is None else Caller(row.id, row.name, row.role, None)
        if found is None:
            state.guard.failed(client_address(request))
            return None
        state.guard.remember(digest, found)
        return found
    session_id = request.cookies.get(COOKIE, "")
    if not session_id:
        return None
    now = datetime.now(UTC)
    with state.project.store.session(readonly=True) as s:
        found, stale = sessions.lookup(s, session_id, now, limits_of(state.project.config))
    if found is None:
        return None
    if stale:  # at most once a minute per session: a write, so not on every request
        with state.project.store.session() as s:
            sessions.touch(s, found.id_hash, now)
    return Caller(found.annotator_id, found.name, found.role, found.id_hash)


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise HTTPException(status_code=403, detail="admins only")


def _csrf_for(secret: bytes, session_hash: str) -> str:
    return hmac.new(secret, session_hash.encode(), sha256).hexdigest()


def csrf_token(request: Request, caller: Caller) -> str:
    """The CSRF token pages put in their forms ("" for a Bearer caller, who needs none)."""
    return _csrf_for(request.app.state.secret, caller.session_hash) if caller.session_hash else ""


def check_csrf(request: Request, caller: Caller, submitted: str | None) -> None:
    """Refuse a cookie-authenticated post whose CSRF token (form field or X-CSRF-Token header) is wrong."""
    if not caller.via_cookie:
        return
    given = submitted or request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(given, csrf_token(request, caller)):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")


async def csrf_protect(request: Request) -> None:
    """App-wide: every write that rides on the session cookie carries the session's CSRF token.

    Checked from the cookie alone (no database), before the route runs, for
    forms and JSON alike; logging in is the one write without a session yet.
    """
    if request.method in SAFE_METHODS:
        return
    if request.url.path == "/login":  # no session yet: a login from another site's page is refused by its origin
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
            raise HTTPException(status_code=403, detail="log in from this server's own login page")
        return
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    session_id = request.cookies.get(COOKIE, "")
    if not session_id:
        return  # not logged in: the route answers 401
    given = request.headers.get("x-csrf-token", "")
    if not given and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        given = str((await request.form()).get("csrf") or "")
    expected = _csrf_for(request.app.state.secret, sessions.hash_id(session_id))
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
