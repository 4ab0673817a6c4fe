"""What every route depends on: the project, the caller, the templates, the clock.

The app keeps its state on ``app.state`` (the project, its queue settings,
the retrainer); these dependencies read it from the request, so a router
needs no closure over the app that includes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.templating import Jinja2Templates

from activelabel.project import Project
from activelabel.server.auth import Caller, authenticate, require_admin

__all__ = ["templates", "now", "get_project", "ProjectDep", "CallerDep", "AdminDep"]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")  # autoescapes every .html template


def now() -> datetime:
    return datetime.now(UTC)


def get_project(request: Request) -> Project:
    return request.app.state.project


def caller_or_401(request: Request) -> Caller:
    caller = authenticate(request)
    if caller is None:
        raise HTTPException(status_code=401, detail="log in with your token")
    return caller


def admin_or_403(caller: Annotated[Caller, Depends(caller_or_401)]) -> Caller:
    require_admin(caller)
    return caller


ProjectDep = Annotated[Project, Depends(get_project)]
CallerDep = Annotated[Caller, Depends(caller_or_401)]
AdminDep = Annotated[Caller, Depends(admin_or_403)]
