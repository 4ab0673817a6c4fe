"""A labeling project: a folder with a config, a store, cached features and saved models.

This binds the layers below (store, featurizers, model, strategy, stopping
rules) into what the CLI and the web app drive. :class:`Project` is a thin
facade; the work lives in one module per concern: :mod:`.config`,
:mod:`.ingest` (imports), :mod:`.state` (snapshot and features),
:mod:`.training` (a cycle and its batch), :mod:`.issuing` (``query``, issued
batches), :mod:`.curation` (retiring items) and :mod:`.reporting` (status and export).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from activelabel.errors import ProjectExistsError
from activelabel.models.featurizers import FeatureCache
from activelabel.project import curation, features, ingest, issuing, reporting, training
from activelabel.project import state as _state
from activelabel.project.config import CONFIG_FILE, DB_FILE, Config, read_config
from activelabel.store import repo
from activelabel.store.db import Store, open_store, sqlite_url

__all__ = ["Config", "Project", "init_project", "CONFIG_FILE"]


def init_project(folder: str | Path, labels: list[str], *, db: str | None = None, **settings) -> Project:
    """Create a project in ``folder``: config file, database (migrated), models and features folders."""
    folder = Path(folder)
    if (folder / CONFIG_FILE).exists():
        raise ProjectExistsError(f"{folder} already holds a project ({CONFIG_FILE} exists)")
    config = Config(labels=[str(x).strip() for x in labels], db=db or "", **settings)
    config.check()
    folder.mkdir(parents=True, exist_ok=True)
    store = open_store(config.db or sqlite_url(folder / DB_FILE))  # fails before anything is written
    config.write(folder / CONFIG_FILE)
    return Project(folder, config, store)


class Project:
    """An open project. Use :meth:`open`, or :func:`init_project` for a new one."""

    def __init__(self, folder: Path, config: Config, store: Store):
        self.folder = Path(folder)
        self.config = config
        self.store = store
        self.features = FeatureCache(self.folder / "features")

    @classmethod
    def open(cls, folder: str | Path) -> Project:
        config = read_config(Path(folder))
        return cls(Path(folder), config, open_store(config.db or sqlite_url(Path(folder) / DB_FILE)))

    @property
    def classes(self) -> np.ndarray:
        """The labels in sorted order: the column order of every probability matrix."""
        return np.array(sorted(self.config.labels))

    def close(self) -> None:
        self.store.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    import_items = ingest.import_items
    import_labels = ingest.import_labels
    state = _state.state
    item_features = features.item_features
    money_spent = _state.money_spent
    train = training.train
    latest_model = training.latest_model
    record_failure = training.record_failure
    query = issuing.query
    batches = issuing.batches
    release_batch = issuing.release
    retire_items = curation.retire_items
    restore_items = curation.restore_items
    status = reporting.status
    predictions = reporting.predictions
    export = reporting.export

    def add_annotator(self, name: str, role: str = "annotator") -> str:
        with self.store.session() as s:
            return repo.add_annotator(s, name, role)
