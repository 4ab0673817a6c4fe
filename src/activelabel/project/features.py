"""The features of a project's items: computed by its featurizer and cached on disk, or precomputed at import.

Precomputed vectors live in the database, stored with their items in one
transaction; projects imported before that kept them in the on-disk cache,
which is still read for items the database has no vector of.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.errors import NotTrainedError
from activelabel.models.featurizers import compute_features, featurizer_version
from activelabel.store import repo, vectors

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["item_features"]


def item_features(project: Project, items: pd.DataFrame,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Features of every item in ``items`` (ordered by id), from the cache or computed now (``progress(done,
    total)`` hears how far sentence embeddings are)."""
    name = project.config.featurizer
    if not name:
        raise NotTrainedError("the project has no items yet: run activelabel import first")
    if name.startswith("precomputed:"):
        return _precomputed(project, name, items["id"].to_numpy(np.int64))
    version = featurizer_version(name, items)

    def compute(missing: np.ndarray) -> np.ndarray:
        with project.store.session(readonly=True) as s:
            content = repo.items_frame(s, ids=missing)
        return compute_features(name, content, progress)

    return project.features.get(version, items["id"].to_numpy(np.int64), compute)


def _precomputed(project: Project, name: str, wanted: np.ndarray) -> np.ndarray:
    """The stored vectors of ``wanted`` item ids: from the database, else from the old on-disk chunks."""
    with project.store.session(readonly=True) as s:
        ids, X = vectors.load_vectors(s, name)
    if len(np.setdiff1d(wanted, ids)):
        old_ids, old_X = project.features.load(name)
        keep = ~np.isin(old_ids, ids)
        if keep.any() and (X is None or old_X.shape[1] == X.shape[1]):
            ids = np.concatenate([ids, old_ids[keep]])
            X = old_X[keep] if X is None else np.vstack([X, old_X[keep]])
    missing = np.setdiff1d(wanted, ids)
    if len(missing):
        raise NotTrainedError(f"{len(missing)} items have no precomputed features; import them again "
                              "with --embedding-column")
    order = np.argsort(ids)
    return X[order[np.searchsorted(ids, wanted, sorter=order)]]
