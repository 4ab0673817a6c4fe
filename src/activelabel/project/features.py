"""The features of a project's items: computed by its featurizer and cached on disk, or precomputed at import."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from activelabel.errors import NotTrainedError
from activelabel.models.featurizers import compute_features, featurizer_version
from activelabel.store import repo

if TYPE_CHECKING:
    from activelabel.project import Project

__all__ = ["item_features"]


def item_features(project: Project, items: pd.DataFrame) -> np.ndarray:
    """Features of every item in ``items`` (ordered by id), from the cache or computed now."""
    name = project.config.featurizer
    if not name:
        raise NotTrainedError("the project has no items yet: run activelabel import first")
    if name.startswith("precomputed:"):
        ids, X = project.features.load(name)
        missing = np.setdiff1d(items["id"].to_numpy(np.int64), ids)
        if len(missing):
            raise NotTrainedError(f"{len(missing)} items have no precomputed features; import them again "
                                  "with --embedding-column")
        order = np.argsort(ids)
        return X[order[np.searchsorted(ids, items["id"].to_numpy(np.int64), sorter=order)]]
    version = featurizer_version(name, items)

    def compute(missing: np.ndarray) -> np.ndarray:
        with project.store.session(readonly=True) as s:
            content = repo.items_frame(s, ids=missing)
        return compute_features(name, content)

    return project.features.get(version, items["id"].to_numpy(np.int64), compute)
