"""The admin's review list: items annotators were unsure about, skipped, flagged or commented on."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from activelabel.server.auth import csrf_token
from activelabel.server.deps import AdminDep, ProjectDep, templates
from activelabel.store import notes

router = APIRouter()

REVIEW_SIZE = 200
SHOW = {"all": "everything", "flag": "flagged", "comment": "commented", "skip": "skipped", "unsure": "unsure"}


@router.get("/admin/review", response_class=HTMLResponse)
def review_page(request: Request, caller: AdminDep, project: ProjectDep, show: str = "all"):
    """Newest first, at most ``REVIEW_SIZE`` items; ``show`` keeps one kind (flag, comment, skip, unsure)."""
    show = show if show in SHOW else "all"  # a fixed set: the address bar cannot put words on the page
    with project.store.session(readonly=True) as s:
        rows = notes.review_items(s, show, REVIEW_SIZE)
    return templates.TemplateResponse(request, "review.html", {
        "caller": caller, "rows": rows, "show": show, "choices": SHOW, "size": REVIEW_SIZE,
        "csrf": csrf_token(request, caller)})
