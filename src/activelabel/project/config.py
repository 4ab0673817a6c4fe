"""A project's settings: what ``activelabel.toml`` holds, read and checked."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from activelabel.errors import (
    InvalidParameterError,
    ProjectNotFoundError,
    UnknownStrategyError,
)
from activelabel.models.featurizers import FEATURIZERS

__all__ = ["Config", "CONFIG_FILE", "DB_FILE", "read_config"]

CONFIG_FILE = "activelabel.toml"
DB_FILE = "activelabel.db"


@dataclass(kw_only=True)
class Config:
    """What ``activelabel.toml`` holds. Edit the file to change strategy, batch size or prices."""

    labels: list[str]
    db: str = ""  # empty: the SQLite file in the project folder
    strategy: str = "default"
    batch_size: int = 100
    random_fraction: float = 0.1
    price_per_label: float = 0.0
    budget: float = 0.0  # money; 0 means no budget
    label_budget: int = 0  # training labels; 0 means none
    featurizer: str = ""  # set by the first import
    model: str = ""  # import path of a scikit-learn classifier; empty: scaled logistic regression
    seed: int = 0
    image_dirs: list[str] = field(default_factory=list)
    # the labeling app (activelabel serve)
    test_share: float = 0.2  # share of served items that are unlabeled test items, while any are left
    overlap_fraction: float = 0.0  # share of items given to several annotators, for agreement
    overlap_annotators: int = 3
    assignment_minutes: float = 5.0  # idle time: an item served and not answered goes back after this (renewed
    # while the labeling page is open and in use)
    skip_limit: int = 2  # an item skipped or marked unsure by this many people leaves the batch
    test_target: int = 0  # labeled test items wanted before test items stop being served (0: every test item)
    show_test_items: bool = False  # tell annotators when an item is a held-out test item
    reserve_batches: int = 3  # next-ranked items published after each batch (in batches), labeled while a cycle trains
    retrain_minutes: float = 0.0  # also retrain on this schedule when new labels came in (0: only when the batch is done)

    def queue_settings(self):
        from activelabel.store.queue import QueueSettings

        return QueueSettings(test_share=self.test_share, overlap_fraction=self.overlap_fraction,
                             overlap_annotators=self.overlap_annotators, assignment_minutes=self.assignment_minutes,
                             skip_limit=self.skip_limit, test_target=self.test_target)

    def check(self) -> None:
        from activelabel.strategies import STRATEGIES

        labels = [str(x).strip() for x in self.labels]
        if len(labels) < 2 or "" in labels or len(set(labels)) != len(labels):
            raise InvalidParameterError(f"labels must be at least two distinct non-empty names, got {self.labels!r}")
        if self.strategy not in STRATEGIES:
            raise UnknownStrategyError(f"strategy {self.strategy!r} is not known; known: {', '.join(STRATEGIES)}")
        if self.batch_size < 1:
            raise InvalidParameterError(f"batch_size must be >= 1, got {self.batch_size!r}")
        if not 0 <= self.random_fraction <= 1:
            raise InvalidParameterError(f"random_fraction must be in [0, 1], got {self.random_fraction!r}")
        for name in ("test_share", "overlap_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise InvalidParameterError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if self.overlap_annotators < 1 or self.assignment_minutes <= 0 or self.retrain_minutes < 0:
            raise InvalidParameterError("overlap_annotators must be >= 1, assignment_minutes > 0 and "
                                        "retrain_minutes >= 0")
        if self.featurizer and self.featurizer.split(":")[0] not in FEATURIZERS:
            raise InvalidParameterError(f"featurizer {self.featurizer!r} is not known; known: {', '.join(FEATURIZERS)}")

    def write(self, path: Path) -> None:
        import tomli_w

        tmp = path.with_suffix(".tmp")
        tmp.write_text(tomli_w.dumps(asdict(self)))
        tmp.replace(path)


def read_config(folder: Path) -> Config:
    """The checked settings of the project in ``folder``."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise ProjectNotFoundError(f"{folder} holds no activelabel project (no {CONFIG_FILE}); "
                                   "create one with: activelabel init")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InvalidParameterError(f"{path}: cannot parse: {error}") from None
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidParameterError(f"{path}: unknown setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
    config = Config(**raw)
    config.check()
    return config
