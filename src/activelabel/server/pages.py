"""Logging in and out, and the home page that sends each person where they work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from activelabel.server.auth import COOKIE, authenticate, client_address
from activelabel.server.deps import CallerDep, ProjectDep, now, templates
from activelabel.store import annotators, sessions

router = APIRouter()

_OLD_COOKIE = "activelabel_token"  # held the token itself before sessions existed: cleared at login and logout


@router.get("/", include_in_schema=False)
def home(request: Request):
    caller = authenticate(request)
    if caller is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/admin" if caller.is_admin else "/label", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request):
    """The login form (an error is only ever shown by the post below: no text from the address bar)."""
    return templates.TemplateResponse(request, "login.html", {"error": None})


@router.post("/login")
def login(request: Request, project: ProjectDep, token: Annotated[str, Form()] = ""):
    """Start a session for the token's person; a wrong token counts against the client's guesses."""
    with project.store.session() as s:
        row = annotators.active_by_token(s, token.strip()) if 0 < len(token) <= 200 else None
        session_id = None if row is None else sessions.start(s, row, now())
        role = None if row is None else row.role
    if session_id is None:
        request.app.state.guard.failed(client_address(request))
        return templates.TemplateResponse(request, "login.html", {"error": "unknown token"}, status_code=401)
    response = RedirectResponse("/admin" if role == "admin" else "/label", status_code=303)
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        max_age=int(project.config.session_max_days * 24 * 3600))
    response.delete_cookie(_OLD_COOKIE)
    return response


@router.post("/logout")
def logout(request: Request, caller: CallerDep, project: ProjectDep):
    """End the session now (the cookie alone no longer lets anyone in, even a copy of it)."""
    with project.store.session() as s:
        sessions.end(s, request.cookies.get(COOKIE, ""), now())
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    response.delete_cookie(_OLD_COOKIE)
    return response
