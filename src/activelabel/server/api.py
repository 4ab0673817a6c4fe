"""The JSON API (scripts, load tests) and the health check."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, StrictInt

from activelabel.server.auth import check_csrf
from activelabel.server.deps import CallerDep, now
from activelabel.server.serving import next_for
from activelabel.store import queue

router = APIRouter()


class AnswerIn(BaseModel):
    assignment_id: StrictInt = Field(ge=1, le=2**63 - 1)  # the database's ids are 64-bit; true is not 1
    answer: str = Field(max_length=10)  # label, skip or unsure
    label: str | None = Field(default=None, max_length=200)


@router.get("/api/next")
def api_next(request: Request, caller: CallerDep):
    item, prog = next_for(request.app.state, caller)
    return {"item": item, "progress": prog}


@router.post("/api/answer")
def api_answer(request: Request, body: AnswerIn, caller: CallerDep):
    state = request.app.state
    with state.project.store.session() as s:
        outcome = queue.answer(s, body.assignment_id, caller.annotator_id, body.answer, body.label,
                               state.project.config.labels, now(), state.settings)
    return {"stored": True} if outcome == queue.STORED else {"stored": False, "reason": outcome}


@router.post("/api/heartbeat")
def api_heartbeat(request: Request, caller: CallerDep):
    """The labeling page is open and in use: keep the annotator's item theirs for another idle time."""
    check_csrf(request, caller, None)
    state = request.app.state
    with state.project.store.session() as s:
        held = queue.heartbeat(s, caller.annotator_id, state.settings, now())
    return {"renewed": held}


@router.post("/api/undo")
def api_undo(request: Request, caller: CallerDep):
    state = request.app.state
    with state.project.store.session() as s:
        item = queue.undo_last(s, caller.annotator_id, state.settings, now())
    return {"undone_item": item}


@router.get("/healthz")
def healthz():
    return Response("ok", media_type="text/plain")
