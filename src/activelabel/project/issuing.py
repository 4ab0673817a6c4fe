"""Issuing batches to an outside labeling service (``activelabel query``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.errors import InvalidParameterError
from activelabel.project.features import item_features
from activelabel.project.state import labeled_rows, state
from activelabel.project.training import latest_model, select
from activelabel.store import repo

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["query"]


def query(project: Project, n: int, *, test: bool = False) -> pd.DataFrame:
    """Issue the next ``n`` items for an outside labeling service and record them as issued.

    With the latest model the project's strategy picks them among
    unlabeled pool items not issued before; before any model exists they
    are drawn at random (a seed set). With ``test`` the batch is made of
    unlabeled held-out test items instead (random order), which are
    labeled like any other but never trained on.
    """
    if n < 1:
        raise InvalidParameterError(f"-n must be >= 1, got {n}")
    st = state(project)
    items = st.items
    with_labels = items["label"].notna().to_numpy()
    if test:
        free = np.flatnonzero((items["split"].to_numpy() == "test") & ~with_labels
                              & ~items["id"].isin(st.issued).to_numpy())
        rng = np.random.default_rng([project.config.seed, 11, len(st.issued)])
        picks = rng.permutation(free)[:n]
        batch = {"item_ids": items["id"].to_numpy()[picks].tolist(), "scores": [np.nan] * len(picks),
                 "is_random": [True] * len(picks), "n_random": len(picks)}
        strategy = "test"
    else:
        model = latest_model(project)
        X = item_features(project, items) if model is not None else None  # a random seed set needs no features
        train_rows = labeled_rows(items, "pool")
        batch = select(project, model, X, items, st, train_rows, items["label"].to_numpy()[train_rows].astype(str),
                             n, salt=100_000 + len(st.issued))
        strategy = project.config.strategy if model is not None else "random"
    with project.store.session() as s:
        if batch["item_ids"]:
            repo.add_batch(s, cycle_id=None, purpose="issued", strategy=strategy, item_ids=batch["item_ids"],
                           scores=batch["scores"], is_random=batch["is_random"])
        content = repo.items_frame(s, ids=batch["item_ids"]).set_index("id").loc[batch["item_ids"]]
    out = pd.DataFrame({"id": content["external_id"].to_numpy(), "split": content["split"].to_numpy(),
                        "kind": content["kind"].to_numpy(), "text": content["text"].to_numpy(),
                        "image": content["image"].to_numpy(), "data": content["data"].to_numpy(),
                        "rank": np.arange(len(content)), "score": batch["scores"], "random": batch["is_random"],
                        "strategy": strategy})
    return out
