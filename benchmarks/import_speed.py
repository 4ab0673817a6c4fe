"""Import speed: 1,000,000 short texts and 100,000 labels into a project, seconds and peak memory.

Each step runs in its own process so its peak resident memory is its own.
The baseline, measured in the same run on the same files, is the floor of
the job with no checks: pandas reads the CSV and ``sqlite3`` bulk-inserts
(id, text) rows in one transaction. Ours also hashes content, checks ids
against the project, carves the test split and writes through SQLAlchemy.

Usage::

    .venv/bin/python benchmarks/import_speed.py                 # SQLite and PostgreSQL, 1,000,000 items
    .venv/bin/python benchmarks/import_speed.py --items 100000 --backends sqlite
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from stamp import save  # benchmarks/ is on the path when a script runs

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

STEP = r"""
import json, sys, time
kind, folder, path, db = sys.argv[1:5]
t0 = time.perf_counter()
if kind == "floor":
    import sqlite3, pandas as pd
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    con = sqlite3.connect(folder + "/floor.db")
    con.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, external_id TEXT UNIQUE, text TEXT)")
    with con:
        con.executemany("INSERT INTO items (external_id, text) VALUES (?, ?)", frame[["id", "text"]].itertuples(index=False))
    con.close()
    out = {}
else:
    from activelabel.project import Project, init_project
    if kind == "init":
        init_project(folder, ["spam", "ham"], db=db or None).close()
        out = {}
    else:
        with Project.open(folder) as p:
            out = (p.import_items(path, text_column="text", id_column="id") if kind == "items"
                   else p.import_labels(path))
# VmHWM: this process's own peak resident memory (ru_maxrss would start from the parent's at fork)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_mb": int(hwm.split()[1]) / 1024, **out}))
"""


def step(kind: str, folder: Path, path: Path | str = "", db: str = "") -> dict:
    done = subprocess.run([sys.executable, "-c", STEP, kind, str(folder), str(path), db], capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_files(folder: Path, n_items: int, n_labels: int) -> tuple[Path, Path]:
    """Short texts: the real SMS messages, numbered so every one of the ``n_items`` is distinct."""
    sms = pd.read_parquet(DATA / "sms_spam.parquet")
    rng = np.random.default_rng(0)
    pick = rng.integers(len(sms), size=n_items)
    ids = np.char.add("t", np.arange(n_items).astype(str))
    texts = sms["text"].to_numpy()[pick].astype(object) + " #" + np.arange(n_items).astype(str)
    items = folder / "items.csv"
    pd.DataFrame({"id": ids, "text": texts}).to_csv(items, index=False)
    chosen = rng.choice(n_items, n_labels, replace=False)
    labels = folder / "labels.csv"
    pd.DataFrame({"id": ids[chosen], "label": sms["label"].to_numpy()[pick[chosen]]}).to_csv(labels, index=False)
    return items, labels


def pg_database() -> tuple[str, callable]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    name = f"al_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return make_url(PG).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    console = Console()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with console.status(f"writing {args.items:,} texts and {args.labels:,} labels"):
            items, labels = make_files(tmp, args.items, args.labels)
        size_mb = items.stat().st_size / 2**20
        with console.status("baseline: pandas + sqlite3 executemany"):
            floor = step("floor", tmp, items)
        for backend in args.backends:
            folder = tmp / f"proj-{backend}"
            db, drop = pg_database() if backend == "postgresql" else ("", lambda: None)
            try:
                step("init", folder, db=db)
                with console.status(f"{backend}: importing {args.items:,} items"):
                    first = step("items", folder, items)
                with console.status(f"{backend}: importing the same file again"):
                    again = step("items", folder, items)
                with console.status(f"{backend}: importing {args.labels:,} labels"):
                    lab = step("labels", folder, labels)
            finally:
                drop()
            assert first["new"] == args.items and again["new"] == 0 and lab["labels"] == args.labels
            rows.append((backend, first, again, lab))
    table = Table(title=f"import of {args.items:,} short texts ({size_mb:.0f} MB CSV) and {args.labels:,} labels")
    for col in ("backend", "items: s", "peak MB", "vs floor", "re-import: s", "labels: s", "peak MB"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_row("floor (pandas + sqlite3)", f"{floor['seconds']:.1f}", f"{floor['peak_mb']:.0f}", "1.00x", "", "", "")
    for backend, first, again, lab in rows:
        table.add_row(backend, f"{first['seconds']:.1f}", f"{first['peak_mb']:.0f}",
                      f"{first['seconds'] / floor['seconds']:.2f}x", f"{again['seconds']:.1f}",
                      f"{lab['seconds']:.1f}", f"{lab['peak_mb']:.0f}")
    console.print(table)
    path = save("import_speed", {"items": args.items, "labels": args.labels, "csv_mb": size_mb, "floor": floor,
                                 "results": {b: {"items": f, "reimport": a, "labels": lab} for b, f, a, lab in rows}})
    console.print(f"written to {path}; README table: python benchmarks/readme_tables.py")


if __name__ == "__main__":
    main()
