"""Adjudication: admins settle items whose annotators disagree, seeing every answer and the model's view."""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from activelabel.errors import ActiveLabelError
from activelabel.project.agreement import contested
from activelabel.project.reporting import predictions
from activelabel.project.state import state
from activelabel.server.auth import check_csrf, csrf_token
from activelabel.server.deps import AdminDep, ProjectDep, now, templates
from activelabel.store import adjudication, notes, repo

router = APIRouter()

SHOWN = 100  # contested items on one page, least agreed first


@router.get("/admin/adjudicate", response_class=HTMLResponse)
def adjudicate_page(request: Request, caller: AdminDep, project: ProjectDep, done: int = 0):
    st = state(project)
    waiting = contested(project, st)
    rows = waiting.head(SHOWN)
    with project.store.session(readonly=True) as s:
        content = repo.items_frame(s, ids=rows["id"]).set_index("id") if len(rows) else None
        names = repo.annotators_frame(s).set_index("id")["name"]
    view = None
    if len(rows):
        try:  # the model's view helps; a model that cannot be read must not hide the answers
            found = predictions(project, st.items)  # features depend on the whole collection (TF-IDF): all items
            if found is not None:
                at = st.items.index.get_indexer(rows.index)
                view = (found[0][at], found[1][at])
        except ActiveLabelError:
            view = None
    standing, _ = repo.standing_answers(st.events) if len(rows) else (None, None)
    answers = standing[standing["item_id"].isin(rows["id"])].groupby("item_id") if len(rows) else {}
    items = []
    for k, r in enumerate(rows.itertuples()):
        c = content.loc[r.id]
        items.append({
            "item_id": int(r.id), "external_id": r.external_id, "split": r.split,
            "snippet": notes.snippet(c["kind"], c["text"], c["image"], c["data"]),
            "answers": [{"who": names.get(a.annotator_id, a.source) if pd.notna(a.annotator_id) else a.source,
                         "answer": a.answer, "label": a.label} for a in answers.get_group(r.id).itertuples()],
            "label": r.label, "consensus": float(r.consensus),
            "model": None if view is None else {"label": str(view[0][k]), "confidence": float(view[1][k])}})
    return templates.TemplateResponse(request, "adjudicate.html", {
        "caller": caller, "items": items, "labels": project.config.labels, "total": len(waiting),
        "threshold": project.config.adjudicate_below, "done": done, "csrf": csrf_token(request, caller)})


@router.post("/admin/adjudicate")
def adjudicate_item(request: Request, caller: AdminDep, project: ProjectDep,
                    item_id: Annotated[int, Form(ge=1, le=2**63 - 1)], label: Annotated[str, Form(max_length=200)],
                    csrf: Annotated[str | None, Form()] = None):
    """Record the admin's final label; back to the list, which no longer holds the item."""
    check_csrf(request, caller, csrf)
    items = state(project).items
    votes = items.loc[items["id"] == item_id, "n_votes"]
    if len(votes) and int(votes.iloc[0]) < 2:
        raise HTTPException(status_code=400, detail=f"item {item_id} has fewer than two opinions: nothing to "
                                                    "adjudicate (label it like any other item)")
    try:
        with project.store.session() as s:
            adjudication.adjudicate(s, item_id, caller.annotator_id, label, project.config.labels, now())
    except ActiveLabelError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    return RedirectResponse("/admin/adjudicate?done=1", status_code=303)
