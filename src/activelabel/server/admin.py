"""The admin's page: progress, cost, the learning curve, annotators, retraining and exports."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from activelabel.server.auth import check_csrf, csrf_token
from activelabel.server.deps import AdminDep, ProjectDep, templates
from activelabel.server.plots import accuracy_svg
from activelabel.store import queue, repo

router = APIRouter()

RETRAIN_NOTES = {  # fixed texts, so the address bar cannot put words on the page
    "nothing_new": "No new answers since the last cycle: there is nothing to retrain.",
    "started": "Retraining started; the new batch is published when it is done.",
}


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, caller: AdminDep, project: ProjectDep, retrain: str | None = None):
    status = project.status()
    with project.store.session(readonly=True) as s:
        batch = queue.batch_progress(s)
        pace = repo.annotator_pace(s)
    worker = request.app.state.retrainer
    return templates.TemplateResponse(request, "admin.html", {
        "caller": caller, "status": status, "batch": batch, "pace": pace, "svg": accuracy_svg(status["curve"]),
        "worker": worker.status if worker else None,
        "note": RETRAIN_NOTES.get(retrain or ""), "config": project.config, "csrf": csrf_token(request, caller)})


@router.post("/admin/retrain")
def admin_retrain(request: Request, caller: AdminDep, csrf: Annotated[str | None, Form()] = None):
    """Retrain now, unless nothing was answered since the last cycle (then say so and do nothing)."""
    check_csrf(request, caller, csrf)
    worker = request.app.state.retrainer
    if worker is None:
        raise HTTPException(status_code=409, detail="retraining is off in this server")
    if not worker.has_new_answers():
        return RedirectResponse("/admin?retrain=nothing_new", status_code=303)
    worker.request()
    return RedirectResponse("/admin?retrain=started", status_code=303)


@router.get("/admin/export")
def admin_export(caller: AdminDep, project: ProjectDep, format: str = "csv"):
    suffix = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "labelstudio": ".json",
              "prodigy": ".jsonl"}.get(format)
    if suffix is None:
        raise HTTPException(status_code=400, detail=f"unknown format {format!r}")
    tmp = Path(tempfile.mkdtemp()) / f"activelabel-export{suffix}"
    project.export(tmp, format)
    return FileResponse(tmp, filename=tmp.name)
