"""A project's settings: what ``activelabel.toml`` holds, read and checked."""

from __future__ import annotations

import math
import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

from activelabel.errors import (
    InvalidParameterError,
    ProjectNotFoundError,
    UnknownStrategyError,
)
from activelabel.models.featurizers import FEATURIZERS
from activelabel.strategies import STRATEGIES

if TYPE_CHECKING:
    from activelabel.store.queue import QueueSettings

__all__ = ["CONFIG_FILE", "DB_FILE", "Config", "read_config"]

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
    reserve_batches: int = 1  # next-ranked items published after each batch (in batches), labeled while a cycle trains
    retrain_minutes: float = 0.0  # also retrain on this schedule when new labels came in (0: only when the batch is done)
    # what annotators see
    guidelines: str = ""  # labeling guidelines (Markdown), shown on the labeling page on demand
    label_descriptions: dict[str, str] = field(default_factory=dict)  # label -> what it means (Markdown)
    show_suggestions: bool = False  # show the model's suggestion and confidence (never on test items)
    # sessions and security (activelabel serve)
    session_idle_hours: float = 12.0  # a login session unused this long ends
    session_max_days: float = 14.0  # a login session ends this long after the login, used or not
    max_body_kb: int = 1024  # larger request bodies are refused (413) before anything else is read
    trusted_proxies: list[str] = field(default_factory=list)  # addresses whose X-Forwarded-Proto/-For are believed
    aggregation: str = "auto"  # an item's label from several answers: auto (Dawid-Skene once overlap allows), majority,
    # dawid_skene, crowdlab (people and the last training's out-of-fold probabilities)
    adjudicate_below: float = 0.75  # items with 2+ opinions and a consensus below this go to the admins (0: never)
    relabel_fraction: float = 0.0  # at most this share of each batch: labeled items sent for another opinion
    max_opinions: int = 3  # no item is sent for more opinions than this
    weight_by_consensus: bool = False  # training weighs each label by its consensus's top probability

    def queue_settings(self) -> QueueSettings:
        from activelabel.store.queue import QueueSettings

        return QueueSettings(test_share=self.test_share, overlap_fraction=self.overlap_fraction,
                             overlap_annotators=self.overlap_annotators, assignment_minutes=self.assignment_minutes,
                             skip_limit=self.skip_limit, test_target=self.test_target,
                             answer_cap=math.floor(self.budget / self.price_per_label + 1e-9)
                             if self.budget and self.price_per_label else None,
                             label_cap=self.label_budget or None)

    def check(self) -> None:
        """Raise one readable error naming the first setting whose type or range is wrong, and its value."""
        for f in fields(self):
            value = getattr(self, f.name)
            problem = _RULES[f.name](value)
            if problem:
                error = UnknownStrategyError if f.name == "strategy" else InvalidParameterError
                raise error(f"{f.name} = {_show(value)}: {problem}")
        unknown = [k for k in self.label_descriptions if k not in self.labels]
        if unknown:
            raise InvalidParameterError(f"label_descriptions: {unknown[0]!r} is not one of the labels "
                                        f"({', '.join(self.labels)})")
        if self.overlap_fraction > 0 and self.overlap_annotators < 2:
            # an overlap of one person is no overlap: agreement could never be measured
            raise InvalidParameterError(f"overlap_annotators = {self.overlap_annotators}: must be >= 2 when "
                                        f"overlap_fraction > 0 (it is {self.overlap_fraction})")

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
    missing = [f.name for f in fields(Config) if f.default is MISSING and f.default_factory is MISSING
               and f.name not in raw]
    if missing:
        raise InvalidParameterError(f"{path}: setting {missing[0]!r} is missing")
    config = Config(**raw)
    try:
        config.check()
    except (InvalidParameterError, UnknownStrategyError) as error:
        raise type(error)(f"{path}: {error}") from None
    return config


# ---------------------------------------------------------------- one rule per setting
# A rule takes the value and returns what is wrong with it (completing "key = value: ..."), or None.

_MAX_MINUTES = 525_600  # one year: longer waits are typos, and overflow the dates they are added to
_MAX_LABEL = 200
_IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*[.:][A-Za-z_]\w*")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_TOML_INT = 2**63 - 1  # TOML's integers are 64-bit: a larger one would make the file unreadable elsewhere


def _integer(low: int, high: int = _TOML_INT) -> Callable[[object], str | None]:
    """An int (not a bool, float or string) in [low, high]."""
    def rule(value):
        if _is_int(value) and high == _TOML_INT < value:
            return "is beyond the 64-bit integers a TOML file can hold"
        if not _is_int(value) or value < low or value > high:
            return f"must be an integer >= {low}" + ("" if high == _TOML_INT else f" and <= {high}")
        return None
    return rule


def _number(low: float, high: float | None = None, *, above: bool = False) -> Callable[[object], str | None]:
    """A finite int or float, >= low (> low if ``above``) and <= high."""
    def rule(value):
        ok = (_is_int(value) or isinstance(value, float)) and math.isfinite(value) \
            and (value > low if above else value >= low) and (high is None or value <= high)
        return None if ok else f"must be a number {'>' if above else '>='} {low}" + (f" and <= {high}" if high else "")
    return rule


def _choice(known: tuple[str, ...], *, empty: bool = False, prefix: bool = False) -> Callable[[object], str | None]:
    """One of ``known`` (or its part before ':' when ``prefix``), or the empty string when ``empty``."""
    def rule(value):
        if isinstance(value, str) and ((empty and value == "") or (value.split(":")[0] if prefix else value) in known):
            return None
        return f"is not known; known: {', '.join(known)}" + (" (or empty)" if empty else "")
    return rule


def _text(test: Callable[[str], bool], expected: str) -> Callable[[object], str | None]:
    """A string that is empty or passes ``test``."""
    return lambda value: None if isinstance(value, str) and (value == "" or test(value)) else f"must be {expected}"


def _labels(value) -> str | None:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        return "must be a list of label names (strings)"
    for name in value:
        if not name.strip():
            return "a label name is empty"
        if name != name.strip():
            return f"label {name!r} has leading or trailing whitespace"
        if any(unicodedata.category(c) == "Cc" for c in name):
            return f"label {name!r} holds a control character"
        if len(name) > _MAX_LABEL:
            return f"label {name[:20]!r}... is longer than {_MAX_LABEL} characters"
    if len(set(value)) != len(value):
        return f"label {next(x for x in value if value.count(x) > 1)!r} appears twice"
    if len(value) < 2:
        return "must be at least two distinct label names"
    return None


def _folders(value) -> str | None:
    if isinstance(value, list) and all(isinstance(x, str) and x for x in value):
        return None
    return "must be a list of folder paths (non-empty strings)"


_RULES: dict[str, Callable[[object], str | None]] = {
    "labels": _labels,
    "db": _text(lambda v: "://" in v, "empty (the SQLite file in the project folder) or a database URL, "
                                      "e.g. postgresql+psycopg://user@host/db"),
    "strategy": _choice(STRATEGIES),
    "batch_size": _integer(1),
    "random_fraction": _number(0, 1),
    "price_per_label": _number(0),
    "budget": _number(0),
    "label_budget": _integer(0),
    "featurizer": _choice(FEATURIZERS, empty=True, prefix=True),
    "model": _text(lambda v: v in ("mlp", "cnn", "mc-dropout", "ensemble") or _IMPORT_PATH.fullmatch(v),
                   "empty, mlp, cnn, mc-dropout, ensemble or an import path, e.g. "
                   "sklearn.linear_model.LogisticRegression"),
    "seed": _integer(0, 2**32 - 1),  # scikit-learn's random_state takes no more
    "image_dirs": _folders,
    "test_share": _number(0, 1),
    "overlap_fraction": _number(0, 1),
    "overlap_annotators": _integer(1),
    "assignment_minutes": _number(0, _MAX_MINUTES, above=True),
    "skip_limit": _integer(1),
    "test_target": _integer(0),
    "show_test_items": lambda value: None if isinstance(value, bool) else "must be true or false",
    "reserve_batches": _integer(0),
    "retrain_minutes": _number(0, _MAX_MINUTES),
    "guidelines": lambda value: None if isinstance(value, str) else "must be text (Markdown)",
    "label_descriptions": lambda value: None if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()) else
        "must be a table of label = \"description\" (strings)",
    "show_suggestions": lambda value: None if isinstance(value, bool) else "must be true or false",
    "session_idle_hours": _number(0, 24 * 365, above=True),
    "session_max_days": _number(0, 3650, above=True),
    "max_body_kb": _integer(1, 10_000_000),
    "aggregation": _choice(("auto", "majority", "dawid_skene", "crowdlab")),
    "adjudicate_below": _number(0, 1),
    "relabel_fraction": _number(0, 1),
    "max_opinions": _integer(1, 100),
    "weight_by_consensus": lambda value: None if isinstance(value, bool) else "must be true or false",
    "trusted_proxies": lambda value: None if isinstance(value, list) and all(_is_address(x) for x in value)
    else "must be a list of IP addresses or networks, e.g. [\"127.0.0.1\", \"10.0.0.0/8\"]",
}


def _is_address(value) -> bool:
    """An IP address or network, as uvicorn's proxy headers want them."""
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=False)
        return True
    except (TypeError, ValueError):
        return False


def _show(value) -> str:
    """The value as one short line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
