"""A labeling project: a folder with a config, a store, cached features and saved models.

This binds the layers below (store, featurizers, model, strategy, stopping
rules) into what the CLI and the web app drive. :class:`Project` is a thin
facade; the work lives in one module per concern: :mod:`.config`,
:mod:`.ingest` (imports), :mod:`.state` (snapshot and features),
:mod:`.training` (a cycle and its batch), :mod:`.issuing` (``query``, issued
batches), :mod:`.curation` (retiring items) and :mod:`.reporting` (status and export).
"""

from __future__ import annotations

import contextlib
import shutil
from itertools import takewhile
from pathlib import Path
from typing import Any

import numpy as np

from activelabel.errors import ActiveLabelError, InvalidParameterError, ProjectExistsError, UnwritableFileError
from activelabel.models.featurizers import FeatureCache
from activelabel.project import agreement, curation, features, ingest, issuing, reporting, training
from activelabel.project import state as _state
from activelabel.project.config import CONFIG_FILE, DB_FILE, Config, read_config
from activelabel.store.db import Store, open_store, sqlite_url

__all__ = ["Config", "Project", "init_project", "CONFIG_FILE"]


def init_project(folder: str | Path, labels: list[str], *, db: str | None = None, **settings: Any) -> Project:
    """Create a project in ``folder``: config file and database (migrated).

    When it fails (a database that cannot be opened, a full disk) it
    leaves nothing behind: the folders and the SQLite file it created are removed.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidParameterError(f"{folder} is a file, not a folder: give a new or empty folder for the project")
    if (folder / CONFIG_FILE).exists():
        raise ProjectExistsError(f"{folder} already holds a project ({CONFIG_FILE} exists)")
    config = Config(labels=[str(x).strip() for x in labels], db=db or "", **settings)
    config.check()
    created = list(takewhile(lambda p: not p.exists(), (folder, *folder.parents)))  # folders made here
    db_file = None if config.db or (folder / DB_FILE).exists() else folder / DB_FILE  # a SQLite file made here
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UnwritableFileError(f"cannot create the project folder {folder}: {error.strerror or error}") from None
    try:
        store = open_store(config.db or sqlite_url(folder / DB_FILE))
        try:
            config.write(folder / CONFIG_FILE)
        except OSError as error:
            store.close()
            raise UnwritableFileError(f"cannot write {folder / CONFIG_FILE}: {error.strerror or error}; "
                                      "no project was created") from None
    except ActiveLabelError:
        if created:
            shutil.rmtree(created[-1], ignore_errors=True)
        elif db_file is not None:
            for path in (db_file, db_file.with_name(DB_FILE + "-wal"), db_file.with_name(DB_FILE + "-shm"),
                         (folder / CONFIG_FILE).with_suffix(".tmp")):
                with contextlib.suppress(OSError):
                    path.unlink()
        raise
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
    agreement = agreement.agreement_report
    predictions = reporting.predictions
    export = reporting.export

    def add_annotator(self, name: str, role: str = "annotator") -> str:
        """Add a person (or bring back a revoked one); their token, shown once (see :mod:`activelabel.store.annotators`)."""
        from activelabel.store import annotators

        with self.store.session() as s:
            return annotators.add(s, name, role)
