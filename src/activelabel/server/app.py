"""The labeling app: FastAPI, server-rendered with Jinja2 and HTMX (no JavaScript build step).

``create_app(folder)`` builds an app over one project, so each test gets its
own. Its state (project, queue settings, retrainer) lives on ``app.state``;
the routes live in routers by concern (:mod:`~activelabel.server.pages`,
:mod:`~activelabel.server.labeling`, :mod:`~activelabel.server.admin`,
:mod:`~activelabel.server.api`) and read that state through the
dependencies in :mod:`~activelabel.server.deps`. The queue and every query
live in :mod:`activelabel.store`, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from activelabel.errors import ActiveLabelError, BusyError, StoreError
from activelabel.project import Project
from activelabel.project.training import seed_batch
from activelabel.server import adjudicate, admin, api, labeling, pages, review, team
from activelabel.server.auth import Guard, csrf_protect, project_secret
from activelabel.server.deps import now
from activelabel.server.security import SecurityMiddleware
from activelabel.server.worker import Retrainer
from activelabel.store import leases, queue

__all__ = ["create_app", "take_serve_lease", "run"]

HERE = Path(__file__).parent
SERVE_LEASE_SECONDS = 30.0  # a server not heard from for this long is taken for dead


def take_serve_lease(project: Project, what: str) -> leases.Keeper:
    """Hold the project's ``serve`` lease (renewed in the background), or raise :class:`BusyError`.

    Taken before the server touches any assignment, so a second server on
    the same project, even one that then fails to bind its port, changes
    nothing of the first one's.
    """
    holder = leases.holder_id(what)
    with project.store.session() as s:
        other = leases.acquire(s, "serve", holder, SERVE_LEASE_SECONDS)
    if other is not None:
        raise BusyError(f"{project.folder} is already being served by {leases.describe(other)}; "
                        "stop that server first (one server per project)")
    return leases.Keeper(project.store, "serve", holder, SERVE_LEASE_SECONDS).start()


def create_app(folder: str | Path, *, retrain: bool = True, poll_seconds: float = 2.0, address: str = "") -> FastAPI:
    """The app over the project in ``folder``; ``retrain`` starts the background retrainer.

    Raises :class:`BusyError` when another server holds the project's lease.
    """
    project = Project.open(folder)
    try:
        keeper = take_serve_lease(project, f"serving {address}" if address else "serving")
    except BusyError:
        project.close()
        raise

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        with project.store.session() as s:  # we hold the lease: no other server holds these assignments
            queue.release_open_assignments(s, now())
        seed_batch(project)  # before any model: a random batch, so people can label the seed set here
        if app.state.retrainer is not None:
            app.state.retrainer.start()
        yield
        if app.state.retrainer is not None:
            app.state.retrainer.stop()
        keeper.stop()
        project.close()

    app = FastAPI(title="activelabel", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(csrf_protect)])
    app.add_middleware(SecurityMiddleware, max_body=project.config.max_body_kb * 1024)
    app.state.project = project
    app.state.settings = project.config.queue_settings()
    app.state.secret = project_secret(project.folder)
    app.state.guard = Guard()  # found tokens (bounded), failed guesses per client address
    app.state.retrainer = Retrainer(project, poll_seconds) if retrain else None
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in (pages.router, labeling.router, admin.router, review.router, adjudicate.router, team.router,
                   api.router):
        app.include_router(router)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login", status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # what was wrong and where, never the input echoed back (NaN or a 1 MB value would not even serialize)
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(ActiveLabelError)
    async def bad_input(request: Request, exc: ActiveLabelError):
        # the database failing (full disk, connection lost) is the server's trouble, not the request's
        return JSONResponse({"detail": str(exc)}, status_code=503 if isinstance(exc, StoreError) else 400)

    return app


def run(app: FastAPI, host: str, port: int, *, ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
        access_log: bool = True, say: Callable[[str], object] = print) -> None:
    """Serve ``app`` with uvicorn (``activelabel serve`` and ``activelabel demo`` both start here).

    Behind a reverse proxy that terminates TLS, list the proxy's address in
    ``trusted_proxies``: its X-Forwarded-Proto and -For are then believed
    (cookies get ``Secure``, guesses are counted per real client).
    """
    import logging
    import sys

    import uvicorn

    from activelabel.server.security import access_log as log

    proxies = app.state.project.config.trusted_proxies
    if host not in ("127.0.0.1", "localhost", "::1") and not ssl_certfile and not proxies:
        say(f"warning: serving on {host} over plain HTTP: tokens and answers cross the network unencrypted. "
            "Use --ssl-certfile/--ssl-keyfile, or a reverse proxy with TLS (listed in trusted_proxies).")
    if access_log and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    uvicorn.run(app, host=host, port=port, log_level="warning", ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None, server_header=False)
