"""activelabel: active learning that picks which examples people should label next.

The names most programs need are importable from here; each loads its layer on first use (PEP 562), so
``import activelabel.strategies`` stays free of scikit-learn, databases and the web app.

>>> from activelabel import select_batch, ActiveLearner, simulate, Project
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("activelabel")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# name -> the module that defines it
_PUBLIC = {
    "select_batch": "activelabel.strategies",
    "Batch": "activelabel.strategies",
    "STRATEGIES": "activelabel.strategies",
    "ActiveLearner": "activelabel.loop",
    "CycleRecord": "activelabel.loop",
    "CostModel": "activelabel.loop",
    "simulate": "activelabel.loop.simulate",
    "SimulationResult": "activelabel.loop.simulate",
    "Plateau": "activelabel.stopping",
    "LabelBudget": "activelabel.stopping",
    "MoneyBudget": "activelabel.stopping",
    "StabilizingPredictions": "activelabel.stopping",
    "MaxCycles": "activelabel.stopping",
    "Project": "activelabel.project",
    "init_project": "activelabel.project",
    "ActiveLabelError": "activelabel.errors",
    "DataError": "activelabel.errors",
    "InvalidParameterError": "activelabel.errors",
    "ProjectError": "activelabel.errors",
    "StoreError": "activelabel.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'activelabel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


if TYPE_CHECKING:  # what type checkers and IDEs see
    from activelabel.errors import (
        ActiveLabelError,
        DataError,
        InvalidParameterError,
        ProjectError,
        StoreError,
    )
    from activelabel.loop import ActiveLearner, CostModel, CycleRecord
    from activelabel.loop.simulate import SimulationResult, simulate
    from activelabel.project import Project, init_project
    from activelabel.stopping import LabelBudget, MaxCycles, MoneyBudget, Plateau, StabilizingPredictions
    from activelabel.strategies import STRATEGIES, Batch, select_batch
