"""What every response and request passes through: security headers, a body size cap, an access log.

Pure ASGI middleware, so the body cap acts before routing and authentication
read anything: a 100 MB body is refused after its headers (or after the cap,
when it comes without a length). Starlette has no body limit of its own, so
this one is written here.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = ["SecurityMiddleware", "HEADERS", "access_log"]

access_log = logging.getLogger("activelabel.access")

# matplotlib's SVG (the admin's plot, inline) styles with attributes, hence 'unsafe-inline' for styles only;
# scripts come from this server's static files and nowhere else.
HEADERS = [
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                 b"img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
                                 b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # not no-referrer: Chromium then sends "Origin: null" on forms
    (b"cross-origin-opener-policy", b"same-origin"),
]
_NO_STORE = (b"cache-control", b"no-store")
_REVALIDATE = (b"cache-control", b"no-cache")  # static files: kept, but checked against their ETag each time


class SecurityMiddleware:
    """Adds the security headers (``no-store`` on everything but static files), caps request bodies at
    ``max_body`` bytes (413), and logs one access line per request without tokens, cookies or query."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 0}
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"cache-control"]
                headers += HEADERS + [_REVALIDATE if static else _NO_STORE]
                message = {**message, "headers": headers}
            await send(message)

        length = dict(scope["headers"]).get(b"content-length")
        try:
            too_big = length is not None and int(length) > self.max_body
        except ValueError:
            too_big = True
        if too_big:
            await self._refuse(send_with_headers)
        else:
            received, refused = 0, False

            async def capped_receive():
                # past the cap: answer 413 now, and tell the app the client left, so it stops reading
                nonlocal received, refused
                if refused:
                    return {"type": "http.disconnect"}
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.max_body and not status["code"]:
                        refused = True
                        await self._refuse(send_with_headers)
                        return {"type": "http.disconnect"}
                return message

            async def unless_refused(message):
                if not refused:
                    await send_with_headers(message)

            try:
                await self.app(scope, capped_receive, unless_refused)
            except Exception:
                if refused:
                    pass
                elif status["code"]:
                    raise
                else:  # a bug: answer 500 with the headers here, then let uvicorn log the traceback
                    await self._answer(send_with_headers, 500, b'{"detail":"internal error"}')
                    raise
        client = scope.get("client") or ("-", 0)
        access_log.info('%s "%s %s" %s %.1f ms', client[0], scope["method"], scope["path"], status["code"],
                        (time.perf_counter() - started) * 1000)

    async def _refuse(self, send):
        await self._answer(send, 413, b'{"detail":"request body too large (limit %d KB)"}' % (self.max_body // 1024))

    @staticmethod
    async def _answer(send, status: int, body: bytes):
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
