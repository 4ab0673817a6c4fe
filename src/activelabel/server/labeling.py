"""The annotator's page: the item to label, answers, undo, history and corrections, notes, and the item's image.

Every fragment the page swaps in comes from here. A route that changes what
the annotator answered sends the ``answered`` event (``HX-Trigger``), so the
page refreshes its history panel when it is open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from activelabel.errors import InvalidParameterError
from activelabel.server.auth import Caller, check_csrf, csrf_token
from activelabel.server.deps import CallerDep, ProjectDep, now, templates
from activelabel.server.serving import markdown_html, next_for, suggester
from activelabel.store import history, notes, queue, repo

router = APIRouter()

TAKEN_NOTE = "That item went to someone else while your page sat idle, so your answer was not needed."
RETIRED_NOTE = "That item was taken out of the project (retired) while you looked at it, so your answer was not needed."
HISTORY_SIZE = 20
ANSWERED = {"HX-Trigger": "answered"}


def render_item(request: Request, caller: Caller, item, prog, message: str | None = None, headers=None):
    return templates.TemplateResponse(request, "item.html", {
        "item": item, "progress": prog, "labels": request.app.state.project.config.labels,
        "csrf": csrf_token(request, caller), "message": message}, headers=headers)


@router.get("/label", response_class=HTMLResponse)
def label_page(request: Request, caller: CallerDep):
    state = request.app.state
    config = state.project.config
    item, prog = next_for(state, caller)
    heartbeat_seconds = max(1.0, min(60.0, config.assignment_minutes * 60 / 3))  # three beats per idle time
    return templates.TemplateResponse(request, "label.html", {
        "caller": caller, "item": item, "progress": prog, "labels": config.labels, "csrf": csrf_token(request, caller),
        "heartbeat_seconds": heartbeat_seconds, "idle_seconds": config.assignment_minutes * 60,
        "guidelines": markdown_html(config.guidelines) if config.guidelines.strip() else None,
        "descriptions": [(label, markdown_html(config.label_descriptions[label])) for label in config.labels
                         if config.label_descriptions.get(label, "").strip()]})


@router.get("/label/next", response_class=HTMLResponse)
def label_next(request: Request, caller: CallerDep):
    """The current item as a fragment: what the waiting page polls until work appears."""
    item, prog = next_for(request.app.state, caller)
    return render_item(request, caller, item, prog)


@router.post("/label/answer", response_class=HTMLResponse)
def label_answer(request: Request, caller: CallerDep, assignment_id: Annotated[int, Form()],
                 answer: Annotated[str, Form()], label: Annotated[str | None, Form()] = None,
                 csrf: Annotated[str | None, Form()] = None):
    """Store an answer and show the next item. Sent twice (a retry after the connection dropped), it is
    stored once: the queue answers ``again`` for an assignment already answered."""
    check_csrf(request, caller, csrf)
    state = request.app.state
    with state.project.store.session() as s:
        outcome = queue.answer(s, assignment_id, caller.annotator_id, answer, label, state.project.config.labels,
                               now(), state.settings)
    item, prog = next_for(state, caller)
    return render_item(request, caller, item, prog, {queue.TAKEN: TAKEN_NOTE, queue.RETIRED: RETIRED_NOTE}.get(outcome), ANSWERED)


@router.post("/label/undo", response_class=HTMLResponse)
def label_undo(request: Request, caller: CallerDep, csrf: Annotated[str | None, Form()] = None):
    check_csrf(request, caller, csrf)
    state = request.app.state
    with state.project.store.session() as s:
        undone = queue.undo_last(s, caller.annotator_id, state.settings, now())
    item, prog = next_for(state, caller)
    return render_item(request, caller, item, prog, None if undone else "nothing to undo", ANSWERED)


def render_history(request: Request, caller: Caller, message: str | None = None):
    state = request.app.state
    with state.project.store.session(readonly=True) as s:
        answers = history.recent_answers(s, caller.annotator_id, HISTORY_SIZE)
    for a in answers:
        a["snippet"] = notes.snippet(a["kind"], a["text"], a["image"], a["data"], history.SNIPPET)
    return templates.TemplateResponse(request, "history.html", {
        "answers": answers, "labels": state.project.config.labels, "csrf": csrf_token(request, caller),
        "message": message, "size": HISTORY_SIZE})


@router.get("/label/history", response_class=HTMLResponse)
def label_history(request: Request, caller: CallerDep):
    """The annotator's own recent answers, newest first, each with a way to correct it."""
    return render_history(request, caller)


@router.post("/label/correct", response_class=HTMLResponse)
def label_correct(request: Request, caller: CallerDep, answer_id: Annotated[int, Form()],
                  choice: Annotated[str, Form()], csrf: Annotated[str | None, Form()] = None):
    """Correct one of the annotator's answers: ``choice`` is ``label:<name>``, ``skip`` or ``unsure``.
    The old answer is retracted and the new one appended; the history is shown again."""
    check_csrf(request, caller, csrf)
    kind, _, label = choice.partition(":")
    state = request.app.state
    with state.project.store.session() as s:
        done = history.correct_answer(s, answer_id, caller.annotator_id, kind, label or None,
                                      state.project.config.labels, now(), state.settings)
    shown = label if kind == "label" else kind
    message = f"Corrected: your answer is now “{shown}”." if done == history.CORRECTED else \
        f"Your answer already was “{shown}”: nothing changed."
    return render_history(request, caller, message)


@router.post("/label/note", response_class=HTMLResponse)
def label_note(request: Request, caller: CallerDep, item_id: Annotated[int, Form()], kind: Annotated[str, Form()],
               text: Annotated[str, Form(max_length=notes.MAX_NOTE * 2)] = "",
               csrf: Annotated[str | None, Form()] = None):
    """Comment on an item served to the annotator, or flag it for an admin's review."""
    check_csrf(request, caller, csrf)
    store = request.app.state.project.store
    if not 0 < item_id < 2**63:
        raise InvalidParameterError(f"no item {item_id}")
    with store.session() as s:
        if not (caller.is_admin or repo.served_to(s, item_id, caller.annotator_id)):
            raise HTTPException(status_code=404, detail=f"no item {item_id} was served to you")
        notes.add_note(s, item_id, caller.annotator_id, kind, text, now())
    said = "Flagged for review" if kind == "flag" else "Comment saved"
    return HTMLResponse(f'<span class="saved" id="note-saved">{said}. An admin sees it on the review page.</span>')


@router.get("/label/suggestion/{item_id}", response_class=HTMLResponse)
def label_suggestion(request: Request, caller: CallerDep, project: ProjectDep, item_id: int):
    """The model's suggestion for an item served to the caller, once computed (the page asks again while
    it is on its way). Never for a test item, and only when the project shows suggestions."""
    if not project.config.show_suggestions or not 0 < item_id < 2**63:
        raise HTTPException(status_code=404)
    with project.store.session(readonly=True) as s:
        item = repo.item_view(s, item_id)
        served = item is not None and repo.served_to(s, item_id, caller.annotator_id)
    if not served or item["split"] != "pool":
        raise HTTPException(status_code=404)
    found = suggester(request.app.state)
    suggestion = found.suggest(item_id)
    return templates.TemplateResponse(request, "suggestion.html", {
        "suggestion": suggestion, "pending": suggestion is None and found.computing, "item_id": item_id})


@router.get("/image/{item_id}")
def image(item_id: str, caller: CallerDep, project: ProjectDep):
    """An item's image, only to someone it was served to (or an admin), only from the project's image folders."""
    if not item_id.isdigit() or int(item_id) >= 2**63:
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
