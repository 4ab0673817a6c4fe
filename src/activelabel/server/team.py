"""The admin's annotator management: list, add, revoke, rotate a token, change a role.

A new token is shown once, on the page that answers the add or rotate, and
never stored (only its hash). Revoking or rotating here takes effect on the
person's next request; done from the CLI, within a couple of seconds
(the server trusts a token it found for 2 s).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from activelabel.errors import InvalidParameterError
from activelabel.server.auth import csrf_token
from activelabel.server.deps import AdminDep, ProjectDep, now, templates
from activelabel.store import annotators

router = APIRouter()


def _page(request: Request, caller, project, *, token: str | None = None, who: str | None = None,
          note: str | None = None, error: str | None = None, status_code: int = 200):
    with project.store.session(readonly=True) as s:
        people = annotators.listing(s, now())
    return templates.TemplateResponse(request, "annotators.html", {
        "caller": caller, "people": people, "token": token, "who": who, "note": note, "error": error,
        "csrf": csrf_token(request, caller)}, status_code=status_code)


@router.get("/admin/annotators", response_class=HTMLResponse)
def annotators_page(request: Request, caller: AdminDep, project: ProjectDep):
    return _page(request, caller, project)


@router.post("/admin/annotators", response_class=HTMLResponse)
def change_annotator(request: Request, caller: AdminDep, project: ProjectDep,
                     action: Annotated[str, Form(max_length=10)], name: Annotated[str, Form(max_length=200)],
                     role: Annotated[str, Form(max_length=20)] = "annotator"):
    """One change: add, revoke, rotate or role; the page again, with the new token when there is one."""
    token = note = None
    try:
        with project.store.session() as s:
            if action == "add":
                token = annotators.add(s, name, role)
            elif action == "revoke":
                done = annotators.revoke(s, name, now())
                note = (f"{name} is revoked: {done['sessions_ended']} sessions ended, "
                        f"{done['items_released']} open items back in the queue.")
            elif action == "rotate":
                token = annotators.rotate(s, name, now())
            elif action == "role":
                before = annotators.set_role(s, name, role)
                note = f"{name} was {before}, is now {role}."
            else:
                raise InvalidParameterError(f"unknown action {action!r}; one of add, revoke, rotate, role")
    except InvalidParameterError as error:
        return _page(request, caller, project, error=str(error), status_code=400)
    request.app.state.guard.forget()
    return _page(request, caller, project, token=token, who=name if token else None, note=note)
