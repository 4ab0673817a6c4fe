"""Who is asking: per-annotator tokens (hashed at rest), admin-only routes, CSRF for form posts.

A browser logs in once with its token and then carries it in an HttpOnly,
SameSite=Strict cookie; scripts send ``Authorization: Bearer <token>``.
Form posts from a browser also carry a CSRF token, an HMAC of the
annotator's token hash under the project's secret, which a page from
another site cannot know. Bearer requests need none: a browser never adds
that header on its own.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, replace
from hashlib import sha256
from pathlib import Path

from fastapi import HTTPException, Request

from activelabel.store import repo

__all__ = ["Caller", "COOKIE", "authenticate", "require_admin", "csrf_token", "check_csrf", "project_secret"]

COOKIE = "activelabel_token"
_CACHE_SECONDS = 10.0  # a token looked up is trusted this long without asking the database again


@dataclass(frozen=True)
class Caller:
    annotator_id: int
    name: str
    role: str
    token_hash: str
    via_cookie: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def project_secret(folder: Path) -> bytes:
    """The project's CSRF secret, made on first use and readable only by its owner."""
    path = Path(folder) / "secret.key"
    if not path.exists():
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def authenticate(request: Request) -> Caller | None:
    """The caller from the Authorization header or the login cookie, or None."""
    header = request.headers.get("authorization", "")
    via_cookie = False
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    else:
        token = request.cookies.get(COOKIE, "")
        via_cookie = True
    if not token:
        return None
    digest = repo.hash_token(token)
    cache = request.app.state.auth_cache
    hit = cache.get(digest)
    if hit is not None and hit[0] > time.monotonic():
        found = hit[1]
    else:
        with request.app.state.project.store.session(readonly=True) as s:
            row = repo.annotator_by_token(s, token)
            found = None if row is None or row.role not in ("annotator", "admin") else \
                Caller(row.id, row.name, row.role, row.token_hash, False)
        cache[digest] = (time.monotonic() + _CACHE_SECONDS, found)
    return None if found is None else replace(found, via_cookie=via_cookie)


def require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise HTTPException(status_code=403, detail="admins only")


def csrf_token(request: Request, caller: Caller) -> str:
    return hmac.new(request.app.state.secret, caller.token_hash.encode(), sha256).hexdigest()


def check_csrf(request: Request, caller: Caller, submitted: str | None) -> None:
    """Refuse a cookie-authenticated post whose CSRF token (form field or X-CSRF-Token header) is wrong."""
    if not caller.via_cookie:
        return
    given = submitted or request.headers.get("x-csrf-token", "")
    if not hmac.compare_digest(given, csrf_token(request, caller)):
        raise HTTPException(status_code=403, detail="missing or wrong CSRF token")
