"""The admin's page: progress, cost, the learning curve, answers and annotators, retraining and exports."""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from markupsafe import Markup, escape
from starlette.background import BackgroundTask

from activelabel.errors import ActiveLabelError
from activelabel.interchange import EXPORTS
from activelabel.project import reporting
from activelabel.project.agreement import agreement_report, contested
from activelabel.project.state import state
from activelabel.server.auth import check_csrf, csrf_token
from activelabel.server.deps import AdminDep, ProjectDep, now, templates
from activelabel.server.plots import accuracy_svg, kappa_svg
from activelabel.store import queue

__all__ = ["router", "when", "download_name"]

router = APIRouter()

RETRAIN_NOTES = {  # fixed texts, so the address bar cannot put words on the page
    "nothing_new": "No new answers since the last cycle: there is nothing to retrain.",
    "started": "Retraining started; the new batch is published when it is done.",
}



def when(t: datetime | None, at: datetime | None = None) -> Markup:
    """A time as people read it: "5 min ago" (the full UTC time in its title), or the date and minute in UTC.

    Times older than a day are marked ``local``: the page's ``time.js`` rewrites them in the reader's own
    time zone (keeping the UTC text in the title). ``at`` is the present (now by default). Empty for no time.
    """
    if t is None:
        return Markup("")
    t = (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)
    full = t.strftime("%Y-%m-%d %H:%M UTC")
    age = ((at or now()) - t).total_seconds()
    if age < -60 or age >= 24 * 3600:
        text = full
    elif age < 60:
        text = "just now"
    elif age < 3600:
        text = f"{int(age // 60)} min ago"
    else:
        text = f"{int(age // 3600)} h {int(age % 3600 // 60)} min ago"
    local = Markup(' class="local"') if text == full else Markup("")  # time.js shows these in the reader's zone
    return Markup('<time datetime="{}" title="{}"{}>{}</time>').format(t.isoformat(timespec="seconds"), full, local,
                                                                      escape(text))


def download_name(project_folder: Path, fmt: str, day: datetime) -> str:
    """``myproject-labels-2026-11-24.csv``: the project's folder name, what the file holds, the UTC date."""
    kind, suffix = EXPORTS[fmt]
    name = re.sub(r"[^\w.-]+", "-", Path(project_folder).resolve().name).strip("-.") or "activelabel"
    return f"{name}-{kind}-{day.astimezone(UTC):%Y-%m-%d}{suffix}"


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request, caller: AdminDep, project: ProjectDep, retrain: str | None = None):
    at = now()
    st = state(project)
    status = reporting.status(project, st)
    models = [c for c in st.cycles if c.error is None and c.model_path]
    agreement = agreement_report(project, st)
    with project.store.session(readonly=True) as s:
        batch = queue.batch_progress(s)
    worker = request.app.state.retrainer
    return templates.TemplateResponse(request, "admin.html", {
        "caller": caller, "project_name": project.folder.resolve().name, "status": status, "batch": batch, "svg": accuracy_svg(status["curve"]),
        "answers": reporting.answer_figures(project, st, at),
        "distribution": reporting.label_distribution(project, st),
        "confusion": reporting.confusion(project, st, models[-1:]),
        "agreement": agreement, "kappa_svg": kappa_svg(agreement), "contested": len(contested(project, st)),
        "when": lambda t: when(t, at), "exports": EXPORTS,
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
    """The export as a download named for the project, format and day; its temporary folder goes once it is sent."""
    if format not in EXPORTS:
        raise HTTPException(status_code=400, detail=f"unknown format; known: {', '.join(EXPORTS)}")  # no echo
    name = download_name(project.folder, format, now())
    folder = Path(tempfile.mkdtemp(prefix="activelabel-export-"))
    try:
        project.export(folder / name, format)
    except ActiveLabelError as error:  # e.g. the saved model is missing: say so in one line
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(status_code=409, detail=str(error)) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(folder / name, filename=name,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
