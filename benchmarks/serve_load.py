"""Load on the labeling app: 20 concurrent annotators, 10,000 submissions, while retraining runs.

A real uvicorn server (``activelabel serve``) over a project of 15,000 real
SMS messages (each message three times, numbered), with a batch of 2,000
and retraining every 15 seconds of new labels, so several cycles run in a
separate process during the load. Each simulated annotator asks for the
next item, reads it for a random time (``--think``, mean 0.25 s: several
times faster than people label short texts) and answers it. Latencies are
measured at the client; the baseline, in the same run and on the same
server, is ``/healthz`` (a request that touches no database). At the end
the answers the server acknowledged are counted against the database:
lost (acknowledged, not stored) and duplicated (stored twice). Results go
to ``benchmarks/results/serve_load.json``.

Usage::

    .venv/bin/python benchmarks/serve_load.py                       # SQLite and PostgreSQL
    .venv/bin/python benchmarks/serve_load.py --backends sqlite --submissions 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import Server  # noqa: E402

from activelabel.project import Project, init_project  # noqa: E402
from activelabel.store.schema import Annotation  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def build(folder: Path, db: str | None) -> tuple[list[str], pd.Series]:
    sms = pd.read_parquet(DATA / "sms_spam.parquet").drop_duplicates("text").reset_index(drop=True)
    frame = pd.concat([sms.assign(text=sms["text"] + f" #{k}") for k in range(3)], ignore_index=True)
    frame.insert(0, "id", [f"s{i}" for i in range(len(frame))])
    frame.to_csv(folder.parent / "items.csv", index=False)
    p = init_project(folder, ["spam", "ham"], db=db, batch_size=2000, retrain_minutes=0.25,
                     assignment_minutes=5.0)
    p.import_items(folder.parent / "items.csv", text_column="text", id_column="id")
    items = p.state().items
    rng = np.random.default_rng(0)
    seed = list(rng.choice(items.loc[items["split"] == "pool", "external_id"], 100, replace=False))
    test = list(items.loc[items["split"] == "test", "external_id"][:200])
    frame.set_index("id").loc[seed + test, "label"].reset_index().to_csv(folder.parent / "seed.csv", index=False)
    p.import_labels(folder.parent / "seed.csv")
    p.train()
    tokens = [p.add_annotator(f"annotator{i}") for i in range(20)]
    p.close()
    return tokens, frame.set_index("id")["label"]


async def annotator(client: httpx.AsyncClient, token: str, quota: int, stats: dict, progress, task,
                    think: float, rng: np.random.Generator) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    done = 0
    rounds = 0
    while done < quota:
        rounds += 1
        if rounds % 5 == 1:  # the baseline, sampled on every fifth round so it adds little load
            t0 = time.perf_counter()
            await client.get("/healthz")
            stats["healthz"].append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        r = await client.get("/api/next", headers=headers)
        t2 = time.perf_counter()
        item = r.json()["item"]
        stats["next"].append(t2 - t1)
        if item is None:
            await asyncio.sleep(0.2)  # batch used up: the retrainer is publishing the next one
            continue
        label = "spam" if item["item_id"] % 7 == 0 else "ham"
        if think:
            await asyncio.sleep(rng.uniform(0, 2 * think))  # reading the item
        t3 = time.perf_counter()
        r = await client.post("/api/answer", headers=headers,
                              json={"assignment_id": item["assignment_id"], "answer": "label", "label": label})
        stats["submit"].append(time.perf_counter() - t3)
        if r.status_code == 200 and r.json()["stored"]:
            stats["acked"].append((token, item["item_id"]))
            done += 1
            progress.advance(task)


async def load(url: str, tokens: list[str], submissions: int, progress, task, think: float) -> dict:
    stats = {"healthz": [], "next": [], "submit": [], "acked": []}
    limits = httpx.Limits(max_connections=len(tokens) * 2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        quota = submissions // len(tokens)
        rngs = np.random.default_rng(0).spawn(len(tokens))
        await asyncio.gather(*(annotator(client, t, quota, stats, progress, task, think, r)
                               for t, r in zip(tokens, rngs)))
    return stats


def run_backend(backend: str, submissions: int, think: float, console: Console) -> dict:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "proj"
        db, admin, name = None, None, None
        if backend == "postgresql":
            admin = create_engine(PG, isolation_level="AUTOCOMMIT")
            name = f"al_load_{uuid.uuid4().hex[:8]}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            db = make_url(PG).set(database=name).render_as_string(hide_password=False)
        try:
            with console.status(f"{backend}: building a 15,000-item project"):
                tokens, _ = build(folder, db)
            with Server(folder) as server, Progress(TextColumn(f"[bold]{backend}"), BarColumn(),
                                                    MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                                    transient=True) as progress:
                task = progress.add_task("submissions", total=submissions)
                t0 = time.perf_counter()
                stats = asyncio.run(load(server.url, tokens, submissions, progress, task, think))
                seconds = time.perf_counter() - t0
            from activelabel.store.repo import hash_token
            from activelabel.store.schema import Annotator

            with Project.open(folder) as p, p.store.session(readonly=True) as s:
                stored = s.execute(select(Annotation.annotator_id, Annotation.item_id)
                                   .where(Annotation.source == "web")).all()
                who = dict(s.execute(select(Annotator.token_hash, Annotator.id)).all())
                cycles = p.status()["cycles"]
            acked = [(who[hash_token(t)], i) for t, i in stats["acked"]]
            lost = len(set(acked) - set(stored))
            duplicated = len(stored) - len(set(stored))
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    ms = {k: np.percentile(np.array(stats[k]) * 1000, [50, 95, 99]) for k in ("healthz", "next", "submit")}
    return {"backend": backend, "think": think, "submissions": len(acked), "seconds": seconds, "lost": lost,
            "duplicated": duplicated, "stored": len(stored), "cycles_during_load": cycles - 1, "ms": {k: v.round(2).tolist() for k, v in ms.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--think", type=float, default=0.25,
                        help="mean seconds an annotator reads an item (uniform 0-2x); 0: as fast as the server allows")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 150))  # the table is wide; keep it whole in a log file too
    results = [run_backend(b, args.submissions, args.think, console) for b in args.backends]
    table = Table(title=f"20 annotators, {args.submissions:,} submissions while retraining runs, "
                        f"{args.think} s mean reading time (client-side latency, ms: p50 / p95 / p99)")
    for col in ("backend", "next item", "submit", "/healthz (baseline)", "p95 next / healthz", "per s",
                "lost", "duplicated", "cycles"):
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col) if len(col) < 12 else 8)
    for r in results:
        m = r["ms"]
        table.add_row(r["backend"], " / ".join(f"{v:.1f}" for v in m["next"]),
                      " / ".join(f"{v:.1f}" for v in m["submit"]), " / ".join(f"{v:.1f}" for v in m["healthz"]),
                      f"{m['next'][1] / m['healthz'][1]:.1f}x", f"{r['submissions'] / r['seconds']:.0f}",
                      str(r["lost"]), str(r["duplicated"]), str(r["cycles_during_load"]))
    console.print(table)
    out = Path(__file__).parent / "results" / "serve_load.json"
    kept = [r for r in (json.loads(out.read_text()) if out.exists() else []) if r["backend"] not in args.backends]
    out.write_text(json.dumps(kept + results, indent=1) + "\n")  # a backend's newest run replaces its last one
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
