"""Where a benchmark's numbers came from: every results file carries a stamp.

``save(name, results, peers)`` writes ``benchmarks/results/<name>.json`` as
``{"stamp": {...}, "results": ...}``; the stamp holds the commit (and whether
the source differed from it), the date, the machine's core count, Python, and
the versions of activelabel, its numeric libraries and each peer named.
``load(name)`` reads a file back; files written before stamping hold their
results alone and load with a stamp of None.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]
LIBRARIES = ("activelabel", "numpy", "scipy", "scikit-learn", "sqlalchemy")
PEER_PACKAGES = {"modal": "modAL-python", "skal": "scikit-activeml", "smalltext": "small-text"}


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def stamp(peers: tuple[str, ...] | list[str] = ()) -> dict:
    """The commit, date, cores, Python and library versions of this run (peers by package name)."""
    changed = bool(_git("status", "--porcelain", "--", "src", "benchmarks", ":!benchmarks/results"))
    return {
        "commit": _git("rev-parse", "--short=10", "HEAD") or "unknown",
        "source_changed_since_commit": changed,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in (*LIBRARIES, *peers)},
    }


def peer_packages(methods) -> list[str]:
    """The packages behind peer method names such as ``skal_badge`` or ``modal_margin``."""
    return sorted({PEER_PACKAGES[m.split("_")[0]] for m in methods if m.split("_")[0] in PEER_PACKAGES})


def save(name: str, results, peers: tuple[str, ...] | list[str] = ()) -> Path:
    """Write ``results/<name>.json`` with the stamp of this run; its path."""
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stamp": stamp(peers), "results": results}, indent=1) + "\n")
    return path


def load(name: str) -> tuple[dict | None, object]:
    """A results file's stamp (None when it was written before stamping) and its results."""
    data = json.loads((RESULTS / f"{name}.json").read_text())
    if isinstance(data, dict) and set(data) == {"stamp", "results"}:
        return data["stamp"], data["results"]
    return None, data


def describe(st: dict | None) -> str:
    """One line for the README under a table: where its numbers came from."""
    if st is None:
        return "_Measured before results were stamped (commit and versions not recorded)._"
    versions = ", ".join(f"{k} {v}" for k, v in st["versions"].items())
    changed = " plus uncommitted changes" if st.get("source_changed_since_commit") else ""
    return f"_Measured at commit {st['commit']}{changed}, {st['date']}, {st['cores']} cores, Python {st['python']}; {versions}._"
