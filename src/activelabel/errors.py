"""Typed exceptions raised by activelabel.

Every exception derives from :class:`ActiveLabelError` so callers can catch
the whole family at once, and from the matching built-in (``ValueError``,
``TypeError``) so code that already catches those keeps working. Messages
name the problem and the offending value (shape, row, label, count).
"""

from __future__ import annotations

__all__ = [
    "ActiveLabelError",
    "ShapeMismatchError",
    "NonFiniteValueError",
    "InvalidProbabilitiesError",
    "UnknownStrategyError",
    "BatchTooLargeError",
    "EmptyPoolError",
    "MissingPredictProbaError",
    "SingleClassError",
    "UnknownLabelError",
    "InvalidParameterError",
    "DataError",
    "UnreadableFileError",
    "MissingColumnError",
    "EmptyLabelError",
    "NonNumericColumnError",
    "ModelImportError",
    "MalformedFileError",
    "EmptyFileError",
    "DuplicateIdError",
    "MissingImageError",
    "ProjectError",
    "ProjectNotFoundError",
    "ProjectExistsError",
    "NotTrainedError",
    "StoreError",
    "BusyError",
    "UnwritableFileError",
    "UnknownItemError",
    "UnstorableValueError",
    "ModelMissingError",
    "NestedValueError",
    "ClusterError",
]


class ActiveLabelError(Exception):
    """Base class of every error activelabel raises on purpose."""


class ShapeMismatchError(ActiveLabelError, ValueError):
    """Arrays whose shapes do not fit together (rows, classes, dimensions)."""


class NonFiniteValueError(ActiveLabelError, ValueError):
    """NaN or infinity in features, probabilities or scores."""


class InvalidProbabilitiesError(ActiveLabelError, ValueError):
    """Probabilities that are negative or whose rows do not sum to one."""


class UnknownStrategyError(ActiveLabelError, ValueError):
    """A strategy name that :func:`activelabel.strategies.select_batch` does not know."""


class BatchTooLargeError(ActiveLabelError, ValueError):
    """A batch asked for more items than the pool has left to label."""


class EmptyPoolError(ActiveLabelError, ValueError):
    """A pool with no items, or with no unlabeled item left."""


class MissingPredictProbaError(ActiveLabelError, TypeError):
    """A model that cannot give class probabilities (no ``predict_proba``)."""


class SingleClassError(ActiveLabelError, ValueError):
    """Training labels with only one class: no classifier can be fitted."""


class UnknownLabelError(ActiveLabelError, ValueError):
    """A label outside the classes the learner was told about."""


class InvalidParameterError(ActiveLabelError, ValueError):
    """An argument outside its allowed range (a fraction above 1, a negative size)."""


class DataError(ActiveLabelError, ValueError):
    """A data file whose content cannot be used; the message names the file."""


class UnreadableFileError(DataError):
    """A file that is missing, of an unknown format, or cannot be parsed."""


class MissingColumnError(DataError):
    """A column asked for that the file does not have."""


class EmptyLabelError(DataError):
    """A label column with empty values; the message names the first row."""


class NonNumericColumnError(DataError):
    """A feature column that holds text or categories where numbers were expected."""


class NestedValueError(DataError):
    """A list or an object (a Parquet list column, a JSON array) where single values are needed; names row and column."""


class ModelImportError(ActiveLabelError, ImportError):
    """A model import path that does not name an importable classifier."""


class MalformedFileError(UnreadableFileError):
    """A file with a line that cannot be parsed (bad CSV quoting, invalid JSON, wrong encoding); names the line."""


class EmptyFileError(UnreadableFileError):
    """A file with no rows."""


class DuplicateIdError(DataError):
    """One item id given twice with different content (in one file, or against the project)."""


class MissingImageError(DataError):
    """An image path in an import file that names no readable image."""


class ProjectError(ActiveLabelError, ValueError):
    """A labeling project that cannot do what was asked, in its current state."""


class ProjectNotFoundError(ProjectError):
    """A folder that holds no activelabel project."""


class ProjectExistsError(ProjectError):
    """``init`` on a folder that already holds a project."""


class NotTrainedError(ProjectError):
    """An action that needs a trained model (or labels to train one) before any exists."""


class StoreError(ActiveLabelError, RuntimeError):
    """The project's database cannot be opened, reached or written (read-only, damaged, disk full); names it."""


class BusyError(ProjectError):
    """Another process holds what this one needs: a training running, a server serving the project."""


class UnwritableFileError(ActiveLabelError, OSError):
    """An output file that cannot be written (missing or read-only folder, disk full); names the path."""


class UnknownItemError(ProjectError):
    """An item id that the project does not have; names the id."""


class UnstorableValueError(ActiveLabelError, ValueError):
    """A value the database cannot store: text with a NUL byte, longer than its column, an integer beyond 64 bits."""


class ModelMissingError(NotTrainedError):
    """The saved model of the latest cycle is missing or unreadable; the message says to train it again."""


class ClusterError(ActiveLabelError, RuntimeError):
    """A Dask cluster that cannot be reached or started, or a task that failed on it; names the address."""
