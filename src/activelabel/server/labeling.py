"""The annotator's page: the item to label, answers, undo, and the item's image."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from activelabel.server.auth import Caller, check_csrf, csrf_token
from activelabel.server.deps import CallerDep, ProjectDep, now, templates
from activelabel.server.serving import next_for
from activelabel.store import queue, repo

router = APIRouter()

TAKEN_NOTE = "That item went to someone else while your page sat idle, so your answer was not needed."


def render_item(request: Request, caller: Caller, item, prog, message: str | None = None):
    return templates.TemplateResponse(request, "item.html", {
        "item": item, "progress": prog, "labels": request.app.state.project.config.labels,
        "csrf": csrf_token(request, caller), "message": message})


@router.get("/label", response_class=HTMLResponse)
def label_page(request: Request, caller: CallerDep):
    state = request.app.state
    config = state.project.config
    item, prog = next_for(state, caller)
    heartbeat_seconds = max(1.0, min(60.0, config.assignment_minutes * 60 / 3))  # three beats per idle time
    return templates.TemplateResponse(request, "label.html", {
        "caller": caller, "item": item, "progress": prog, "labels": config.labels, "csrf": csrf_token(request, caller),
        "heartbeat_seconds": heartbeat_seconds, "idle_seconds": config.assignment_minutes * 60})


@router.get("/label/next", response_class=HTMLResponse)
def label_next(request: Request, caller: CallerDep):
    """The current item as a fragment: what the waiting page polls until work appears."""
    item, prog = next_for(request.app.state, caller)
    return render_item(request, caller, item, prog)


@router.post("/label/answer", response_class=HTMLResponse)
def label_answer(request: Request, caller: CallerDep, assignment_id: Annotated[int, Form()],
                 answer: Annotated[str, Form()], label: Annotated[str | None, Form()] = None,
                 csrf: Annotated[str | None, Form()] = None):
    check_csrf(request, caller, csrf)
    state = request.app.state
    with state.project.store.session() as s:
        outcome = queue.answer(s, assignment_id, caller.annotator_id, answer, label, state.project.config.labels,
                               now(), state.settings)
    item, prog = next_for(state, caller)
    return render_item(request, caller, item, prog, TAKEN_NOTE if outcome == queue.TAKEN else None)


@router.post("/label/undo", response_class=HTMLResponse)
def label_undo(request: Request, caller: CallerDep, csrf: Annotated[str | None, Form()] = None):
    check_csrf(request, caller, csrf)
    state = request.app.state
    with state.project.store.session() as s:
        undone = queue.undo_last(s, caller.annotator_id, state.settings, now())
    item, prog = next_for(state, caller)
    return render_item(request, caller, item, prog, None if undone else "nothing to undo")


@router.get("/image/{item_id}")
def image(item_id: str, caller: CallerDep, project: ProjectDep):
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
