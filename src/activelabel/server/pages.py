"""Logging in and out, and the home page that sends each person where they work."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from activelabel.server.auth import COOKIE, authenticate, check_csrf
from activelabel.server.deps import CallerDep, ProjectDep, templates
from activelabel.store import repo

router = APIRouter()


@router.get("/", include_in_schema=False)
def home(request: Request):
    caller = authenticate(request)
    if caller is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse("/admin" if caller.is_admin else "/label", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, error: str | None = None):
    return templates.TemplateResponse(request, "login.html", {"error": error})


@router.post("/login")
def login(request: Request, project: ProjectDep, token: Annotated[str, Form()]):
    with project.store.session(readonly=True) as s:
        row = repo.annotator_by_token(s, token.strip())
        ok = row is not None and row.role in ("annotator", "admin")
        role = row.role if ok else None
    if not ok:
        return templates.TemplateResponse(request, "login.html", {"error": "unknown token"}, status_code=401)
    response = RedirectResponse("/admin" if role == "admin" else "/label", status_code=303)
    response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", max_age=30 * 24 * 3600)
    return response


@router.post("/logout")
def logout(request: Request, caller: CallerDep, csrf: Annotated[str | None, Form()] = None):
    check_csrf(request, caller, csrf)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response
