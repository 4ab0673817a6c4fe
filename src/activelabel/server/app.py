"""The labeling app: FastAPI, server-rendered with Jinja2 and HTMX (no JavaScript build step).

``create_app(folder)`` builds an app over one project, so each test gets its
own. Routes read like their contract through typed dependencies
(``CallerDep``, ``AdminDep``); the queue and every query live in
:mod:`activelabel.store`, not here.
"""

from __future__ import annotations

import tempfile
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel

from activelabel.errors import ActiveLabelError, BusyError
from activelabel.project import Project
from activelabel.project.training import seed_batch
from activelabel.server.auth import COOKIE, Caller, authenticate, check_csrf, csrf_token, project_secret, require_admin
from activelabel.server.plots import accuracy_svg
from activelabel.server.worker import Retrainer
from activelabel.store import leases, queue, repo

__all__ = ["create_app", "take_serve_lease"]

TAKEN_NOTE = "That item went to someone else while your page sat idle, so your answer was not needed."
RETRAIN_NOTES = {  # fixed texts, so the address bar cannot put words on the page
    "nothing_new": "No new answers since the last cycle: there is nothing to retrain.",
    "started": "Retraining started; the new batch is published when it is done.",
}

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes every .html template


def now() -> datetime:
    return datetime.now(UTC)


def caller_or_401(request: Request) -> Caller:
    caller = authenticate(request)
    if caller is None:
        raise HTTPException(status_code=401, detail="log in with your token")
    return caller


def admin_or_403(caller: Annotated[Caller, Depends(caller_or_401)]) -> Caller:
    require_admin(caller)
    return caller


CallerDep = Annotated[Caller, Depends(caller_or_401)]
AdminDep = Annotated[Caller, Depends(admin_or_403)]


class AnswerIn(BaseModel):
    assignment_id: int
    answer: str  # label, skip or unsure
    label: str | None = None


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

    app = FastAPI(title="activelabel", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.project = project
    app.state.secret = project_secret(project.folder)
    app.state.auth_cache = {}  # token hash -> (expiry, Caller or None); see auth.authenticate
    app.state.retrainer = Retrainer(project, poll_seconds) if retrain else None
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/login", status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(ActiveLabelError)
    async def bad_input(request: Request, exc: ActiveLabelError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    settings = project.config.queue_settings()
    labels = project.config.labels
    config = project.config

    def item_view(s, served: queue.Served | None) -> dict | None:
        if served is None:
            return None
        item = repo.item_view(s, served.item_id)
        return {"assignment_id": served.assignment_id, "item_id": item["id"], "kind": item["kind"],
                "text": item["text"], "data": item["data"],
                "image_url": f"/image/{item['id']}" if item["kind"] == "image" else None,
                "test": config.show_test_items and item["split"] == "test"}

    def budget_stop(s) -> str | None:
        """Why labeling must stop for money or labels, or None (checked only when a budget is set)."""
        if config.budget and repo.answer_count(s) * config.price_per_label >= config.budget:
            return f"The labeling budget ({config.budget:,.2f}) is spent: there is nothing more to label."
        if config.label_budget and queue.pool_labeled(s) >= config.label_budget:
            return f"The label budget ({config.label_budget:,} training labels) is reached: nothing more to label."
        return None

    def empty_reason(s) -> str:
        """Why nothing is served: a budget, an exhausted pool, a cycle training, or others holding what is left."""
        stop = budget_stop(s)
        if stop:
            return stop
        if queue.pool_left(s) == 0:
            return "Every pool item is labeled: there is nothing left to label."
        worker = app.state.retrainer
        if worker is not None and (worker.running or worker.due_now()):
            return "A new batch is being trained from the answers so far; it appears here as soon as it is ready."
        return ("Nothing is free for you right now: the items left in this batch are being labeled by others or "
                "were skipped by you. This page updates by itself when work appears.")

    def progress(s, caller: Caller) -> dict:
        midnight = now().replace(hour=0, minute=0, second=0, microsecond=0)
        mine = queue.annotator_progress(s, caller.annotator_id, midnight)
        return {"today": mine["today"], "left": mine["left"], "size": mine["size"]}

    def next_for(caller: Caller) -> tuple[dict | None, dict]:
        if config.budget or config.label_budget:
            with project.store.session(readonly=True) as s:
                stop = budget_stop(s)
            if stop:
                return None, {"today": 0, "left": 0, "size": 0, "empty": stop}
        with project.store.session() as s:  # the queue's write lock is held only while assigning
            served = queue.serve_next(s, caller.annotator_id, settings, now())
        with project.store.session(readonly=True) as s:
            prog = progress(s, caller)
            if served is None:
                prog["empty"] = empty_reason(s)
            return item_view(s, served), prog

    heartbeat_seconds = max(1.0, min(60.0, config.assignment_minutes * 60 / 3))  # three beats per idle time

    def render_item(request: Request, caller: Caller, item, prog, message: str | None = None):
        return templates.TemplateResponse(request, "item.html", {
            "item": item, "progress": prog, "labels": labels, "csrf": csrf_token(request, caller),
            "message": message})

    # ------------------------------------------------------------ pages
    @app.get("/", include_in_schema=False)
    def home(request: Request):
        caller = authenticate(request)
        if caller is None:
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse("/admin" if caller.is_admin else "/label", status_code=303)

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, error: str | None = None):
        return templates.TemplateResponse(request, "login.html", {"error": error})

    @app.post("/login")
    def login(request: Request, token: Annotated[str, Form()]):
        with project.store.session(readonly=True) as s:
            row = repo.annotator_by_token(s, token.strip())
            ok = row is not None and row.role in ("annotator", "admin")
            role = row.role if ok else None
        if not ok:
            return templates.TemplateResponse(request, "login.html", {"error": "unknown token"}, status_code=401)
        response = RedirectResponse("/admin" if role == "admin" else "/label", status_code=303)
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", max_age=30 * 24 * 3600)
        return response

    @app.post("/logout")
    def logout(request: Request, caller: CallerDep, csrf: Annotated[str | None, Form()] = None):
        check_csrf(request, caller, csrf)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/label", response_class=HTMLResponse)
    def label_page(request: Request, caller: CallerDep):
        item, prog = next_for(caller)
        return templates.TemplateResponse(request, "label.html", {
            "caller": caller, "item": item, "progress": prog, "labels": labels, "csrf": csrf_token(request, caller),
            "heartbeat_seconds": heartbeat_seconds, "idle_seconds": config.assignment_minutes * 60})

    @app.get("/label/next", response_class=HTMLResponse)
    def label_next(request: Request, caller: CallerDep):
        """The current item as a fragment: what the waiting page polls until work appears."""
        item, prog = next_for(caller)
        return render_item(request, caller, item, prog)

    @app.post("/label/answer", response_class=HTMLResponse)
    def label_answer(request: Request, caller: CallerDep, assignment_id: Annotated[int, Form()],
                     answer: Annotated[str, Form()], label: Annotated[str | None, Form()] = None,
                     csrf: Annotated[str | None, Form()] = None):
        check_csrf(request, caller, csrf)
        with project.store.session() as s:
            outcome = queue.answer(s, assignment_id, caller.annotator_id, answer, label, labels, now(), settings)
        item, prog = next_for(caller)
        return render_item(request, caller, item, prog, TAKEN_NOTE if outcome == queue.TAKEN else None)

    @app.post("/label/undo", response_class=HTMLResponse)
    def label_undo(request: Request, caller: CallerDep, csrf: Annotated[str | None, Form()] = None):
        check_csrf(request, caller, csrf)
        with project.store.session() as s:
            undone = queue.undo_last(s, caller.annotator_id, settings, now())
        item, prog = next_for(caller)
        return render_item(request, caller, item, prog, None if undone else "nothing to undo")

    @app.get("/image/{item_id}")
    def image(item_id: str, caller: CallerDep):
        """An item's image, only to someone it was served to (or an admin), only from the project's image folders."""
        if not item_id.isdigit():
            raise HTTPException(status_code=404)
        with project.store.session(readonly=True) as s:
            item = repo.item_view(s, int(item_id))
            served = caller.is_admin or repo.served_to(s, int(item_id), caller.annotator_id)
        if item is None or not item["image"] or not served:
            raise HTTPException(status_code=404)
        path = Path(item["image"]).resolve()
        roots = [Path(d).resolve() for d in project.config.image_dirs]
        if not path.is_file() or not any(path.is_relative_to(r) for r in roots):
            raise HTTPException(status_code=404)
        return FileResponse(path)

    @app.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request, caller: AdminDep, retrain: str | None = None):
        status = project.status()
        with project.store.session(readonly=True) as s:
            batch = queue.batch_progress(s)
            pace = repo.annotator_pace(s)
        return templates.TemplateResponse(request, "admin.html", {
            "caller": caller, "status": status, "batch": batch, "pace": pace, "svg": accuracy_svg(status["curve"]),
            "worker": app.state.retrainer.status if app.state.retrainer else None,
            "note": RETRAIN_NOTES.get(retrain or ""), "config": project.config, "csrf": csrf_token(request, caller)})

    @app.post("/admin/retrain")
    def admin_retrain(request: Request, caller: AdminDep, csrf: Annotated[str | None, Form()] = None):
        """Retrain now, unless nothing was answered since the last cycle (then say so and do nothing)."""
        check_csrf(request, caller, csrf)
        if app.state.retrainer is None:
            raise HTTPException(status_code=409, detail="retraining is off in this server")
        if not app.state.retrainer.has_new_answers():
            return RedirectResponse("/admin?retrain=nothing_new", status_code=303)
        app.state.retrainer.request()
        return RedirectResponse("/admin?retrain=started", status_code=303)

    @app.get("/admin/export")
    def admin_export(caller: AdminDep, format: str = "csv"):
        suffix = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "labelstudio": ".json",
                  "prodigy": ".jsonl"}.get(format)
        if suffix is None:
            raise HTTPException(status_code=400, detail=f"unknown format {format!r}")
        tmp = Path(tempfile.mkdtemp()) / f"activelabel-export{suffix}"
        project.export(tmp, format)
        return FileResponse(tmp, filename=tmp.name)

    # ------------------------------------------------------------ JSON API (scripts, load tests)
    @app.get("/api/next")
    def api_next(caller: CallerDep):
        item, prog = next_for(caller)
        return {"item": item, "progress": prog}

    @app.post("/api/answer")
    def api_answer(body: AnswerIn, caller: CallerDep):
        with project.store.session() as s:
            outcome = queue.answer(s, body.assignment_id, caller.annotator_id, body.answer, body.label, labels, now(),
                                   settings)
        return {"stored": True} if outcome == queue.STORED else {"stored": False, "reason": outcome}

    @app.post("/api/heartbeat")
    def api_heartbeat(request: Request, caller: CallerDep):
        """The labeling page is open and in use: keep the annotator's item theirs for another idle time."""
        check_csrf(request, caller, None)
        with project.store.session() as s:
            held = queue.heartbeat(s, caller.annotator_id, settings, now())
        return {"renewed": held}

    @app.post("/api/undo")
    def api_undo(caller: CallerDep):
        with project.store.session() as s:
            item = queue.undo_last(s, caller.annotator_id, settings, now())
        return {"undone_item": item}

    @app.get("/healthz")
    def healthz():
        return Response("ok", media_type="text/plain")

    return app
