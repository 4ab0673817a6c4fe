"""Load on the labeling app: 20 concurrent annotators, 10,000 submissions, while retraining runs.

A real uvicorn server (``activelabel serve``) over a project of 15,000 real
SMS messages (each message three times, numbered), with a batch of 2,000
and retraining every 15 seconds of new labels, so several cycles run in a
separate process during the load. Each simulated annotator asks for the
next item, reads it for a random time (``--think``, mean 0.25 s: several
times faster than people label short texts) and answers it. Latencies are
measured at the client; the baseline, in the same run and on the same
server, is ``/healthz`` (a request that touches no database).

Two scenarios:

- ``plain``: every annotator labels every item served (5-minute assignments).
- ``churn``: 20% of the annotators (4 of 20) skip about 30% of their items
  and abandon about 10%: they take the item and walk away for longer than
  the (short, ``--churn-minutes``) assignment time, so it expires and goes
  back to the queue; half of those come back and answer it anyway, late,
  as a person returning to an open tab would. Skips go to others, expired
  items to whoever asks next, and batches close and train while this goes on.

At the end the answers the server acknowledged are checked against the
database: cycles trained during the load (must be > 0), lost answers
(acknowledged, not stored: must be 0), and items labeled more times than
they need: ``duplicated`` (must be 0) when no label of the item came late,
``late_duplicates`` (counted apart) when one came in on an assignment that
had already expired and been served to someone else. The script exits
non-zero when a check fails, or when the SQLite p95 of next-item or submit
misses ``--p95-target`` ms. Results go to
``benchmarks/results/serve_load.json`` (one record per backend and scenario;
a new run replaces its own).

Usage::

    .venv/bin/python benchmarks/serve_load.py                       # both scenarios on SQLite and PostgreSQL
    .venv/bin/python benchmarks/serve_load.py --scenarios churn --backends sqlite --submissions 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from stamp import stamp  # benchmarks/ is on the path when a script runs
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import Server  # noqa: E402

from activelabel.project import Project, init_project  # noqa: E402
from activelabel.store import repo  # noqa: E402
from activelabel.store.schema import Annotation, Annotator, Assignment  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ANNOTATORS = 20
CHURNERS = 4  # 20% of the annotators skip and abandon
SKIP_P, ABANDON_P, LATE_SHARE = 0.3, 0.1, 0.5


class LoggedServer(Server):
    """The test helper's server with its output in a file; on a failure its log's end is printed."""

    def __init__(self, folder, port=None):
        super().__init__(folder, port, log=folder.parent / "server.log")

    def __exit__(self, *exc):
        if exc[0] is not None:
            code = self.proc.poll()
            print(f"server {'exited with code ' + str(code) if code is not None else 'still running'}; its log ends:\n"
                  + self.log.read_text()[-3000:], file=sys.stderr)
        self.stop()


def build(folder: Path, db: str | None, assignment_minutes: float) -> list[str]:
    sms = pd.read_parquet(DATA / "sms_spam.parquet").drop_duplicates("text").reset_index(drop=True)
    frame = pd.concat([sms.assign(text=sms["text"] + f" #{k}") for k in range(3)], ignore_index=True)
    frame.insert(0, "id", [f"s{i}" for i in range(len(frame))])
    frame.to_csv(folder.parent / "items.csv", index=False)
    p = init_project(folder, ["spam", "ham"], db=db, batch_size=2000, retrain_minutes=0.25,
                     assignment_minutes=assignment_minutes)
    p.import_items(folder.parent / "items.csv", text_column="text", id_column="id")
    items = p.state().items
    rng = np.random.default_rng(0)
    seed = list(rng.choice(items.loc[items["split"] == "pool", "external_id"], 100, replace=False))
    test = list(items.loc[items["split"] == "test", "external_id"][:200])
    frame.set_index("id").loc[seed + test, "label"].reset_index().to_csv(folder.parent / "seed.csv", index=False)
    p.import_labels(folder.parent / "seed.csv")
    p.train()
    tokens = [p.add_annotator(f"annotator{i}") for i in range(ANNOTATORS)]
    p.close()
    return tokens


async def call(client: httpx.AsyncClient, stats: dict, method: str, url: str, **kw) -> httpx.Response:
    """One request, sent again (up to twice) when the connection drops; a resent answer is not stored twice."""
    for attempt in range(3):
        try:
            return await client.request(method, url, **kw)
        except httpx.TransportError:
            if attempt == 2:
                raise
            stats["resent"] += 1


async def annotator(client: httpx.AsyncClient, token: str, quota: int, stats: dict, progress, task,
                    think: float, rng: np.random.Generator, churn: bool, idle_seconds: float) -> None:
    """Ask, read, answer until ``quota`` answers are stored; a churner also skips and abandons."""
    headers = {"Authorization": f"Bearer {token}"}
    done = 0
    rounds = 0
    while done < quota:
        rounds += 1
        if rounds % 5 == 1:  # the baseline, sampled on every fifth round so it adds little load
            t0 = time.perf_counter()
            await call(client, stats, "GET", "/healthz")
            stats["healthz"].append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        r = await call(client, stats, "GET", "/api/next", headers=headers)
        t2 = time.perf_counter()
        item = r.json()["item"]
        stats["next"].append(t2 - t1)
        if item is None:
            await asyncio.sleep(0.2)  # nothing free: the retrainer is publishing the next batch
            continue
        label = "spam" if item["item_id"] % 7 == 0 else "ham"
        kind = "label"
        if churn:
            u = rng.uniform()
            if u < ABANDON_P:  # walk away until the assignment has expired
                stats["abandoned"] += 1
                await asyncio.sleep(idle_seconds * 1.3 + 0.2)
                if rng.uniform() >= LATE_SHARE:
                    continue  # never answered
                stats["late_attempts"] += 1  # come back to the open tab and answer anyway
            elif u < ABANDON_P + SKIP_P:
                kind = "skip"
        if think:
            await asyncio.sleep(rng.uniform(0, 2 * think))  # reading the item
        t3 = time.perf_counter()
        body = {"assignment_id": item["assignment_id"], "answer": kind}
        if kind == "label":
            body["label"] = label
        r = await call(client, stats, "POST", "/api/answer", headers=headers, json=body)
        stats["submit"].append(time.perf_counter() - t3)
        if r.status_code == 200 and r.json()["stored"]:
            stats["acked"].append((token, item["item_id"], kind))
            done += 1
            progress.advance(task)
        elif r.status_code != 200:
            stats["errors"].append(f"{r.status_code} {r.text[:200]}")


async def load(url: str, tokens: list[str], submissions: int, progress, task, think: float, churners: int,
               idle_seconds: float) -> dict:
    stats = {"healthz": [], "next": [], "submit": [], "acked": [], "errors": [], "abandoned": 0,
             "late_attempts": 0, "resent": 0}
    # idle connections are dropped before uvicorn's 5 s keep-alive ends them, so a request never races a close
    limits = httpx.Limits(max_connections=len(tokens) * 2, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        quota = submissions // len(tokens)
        rngs = np.random.default_rng(0).spawn(len(tokens))
        await asyncio.gather(*(annotator(client, t, quota, stats, progress, task, think, r, k < churners,
                                         idle_seconds)
                               for k, (t, r) in enumerate(zip(tokens, rngs))))
    return stats


def audit(folder: Path, stats: dict, started: datetime, ended: datetime) -> dict:
    """Acknowledged answers against the database: cycles during the load, lost, duplicated, late."""
    with Project.open(folder) as p, p.store.session(readonly=True) as s:
        who = dict(s.execute(select(Annotator.token_hash, Annotator.id)).all())
        stored = s.execute(select(Annotation.annotator_id, Annotation.item_id, Annotation.answer)
                           .where(Annotation.source == "web", Annotation.answer != "retract")).all()
        labels = s.execute(select(Assignment.item_id, Assignment.answered_at, Assignment.expires_at)
                           .where(Assignment.outcome == "label")).all()
        imported = s.execute(select(Annotation.item_id).where(Annotation.source != "web",
                                                              Annotation.answer == "label")).scalars().all()
        cycles = repo.cycles(s)

    def utc(t):
        return t if t.tzinfo else t.replace(tzinfo=UTC)

    in_load = [c for c in cycles if started <= utc(c.created_at) <= ended]
    acked = Counter((who[repo.hash_token(t)], i, k) for t, i, k in stats["acked"])
    stored_n = Counter(tuple(r) for r in stored)
    lost = sum((acked - stored_n).values())
    pairs_twice = sum(n - 1 for n in Counter((a, i) for a, i, k in stored if k == "label").values() if n > 1)
    per_item = Counter(r.item_id for r in labels) + Counter(imported)  # no overlap: every item needs one label
    late_items = {r.item_id for r in labels if r.expires_at is not None and utc(r.answered_at) > utc(r.expires_at)}
    over = {i: n - 1 for i, n in per_item.items() if n > 1}
    return {"cycles_during_load": sum(c.error is None and c.model_version is not None for c in in_load),
            "failed_cycles_during_load": sum(c.error is not None for c in in_load),
            "lost": lost, "stored": len(stored), "stored_twice_by_one_annotator": pairs_twice,
            "duplicated": sum(n for i, n in over.items() if i not in late_items),
            "late_duplicates": sum(n for i, n in over.items() if i in late_items),
            "late_answers": len(late_items),
            "skips": sum(k == "skip" for _, _, k in stats["acked"]),
            "abandoned": stats["abandoned"], "errors": len(stats["errors"]), "resent": stats["resent"]}


def run_backend(backend: str, scenario: str, submissions: int, think: float, churn_minutes: float,
                console: Console) -> dict:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    minutes = churn_minutes if scenario == "churn" else 5.0
    churners = CHURNERS if scenario == "churn" else 0
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
            with console.status(f"{backend} {scenario}: building a 15,000-item project"):
                tokens = build(folder, db, minutes)
            with LoggedServer(folder) as server, Progress(TextColumn(f"[bold]{backend} {scenario}"), BarColumn(),
                                                    MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                                    transient=True) as progress:
                task = progress.add_task("submissions", total=submissions)
                started = datetime.now(UTC)
                t0 = time.perf_counter()
                stats = asyncio.run(load(server.url, tokens, submissions, progress, task, think, churners,
                                         minutes * 60))
                seconds = time.perf_counter() - t0
                ended = datetime.now(UTC)
            checked = audit(folder, stats, started, ended)
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    for e in stats["errors"][:5]:
        console.print(f"[red]{backend} {scenario}: error response: {e}")
    ms = {k: np.percentile(np.array(stats[k]) * 1000, [50, 95, 99]) for k in ("healthz", "next", "submit")}
    return {"backend": backend, "scenario": scenario, "think": think, "assignment_minutes": minutes,
            "churners": churners, "submissions": len(stats["acked"]), "seconds": seconds, **checked,
            "ms": {k: v.round(2).tolist() for k, v in ms.items()}}


def checks(r: dict, p95_target: float) -> list[str]:
    """What a run failed, as readable lines (empty: it passed)."""
    failed = []
    if r["cycles_during_load"] <= 0:
        failed.append("no cycle trained during the load")
    for key in ("lost", "duplicated", "stored_twice_by_one_annotator", "errors"):
        if r.get(key, 0):
            failed.append(f"{key} = {r[key]} (must be 0)")
    if r["backend"] == "sqlite":
        for op in ("next", "submit"):
            if r["ms"][op][1] > p95_target:
                failed.append(f"p95 {op} {r['ms'][op][1]:.1f} ms > target {p95_target:.0f} ms")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--scenarios", nargs="+", default=["plain", "churn"], choices=["plain", "churn"])
    parser.add_argument("--think", type=float, default=0.25,
                        help="mean seconds an annotator reads an item (uniform 0-2x); 0: as fast as the server allows")
    parser.add_argument("--churn-minutes", type=float, default=0.05,
                        help="assignment_minutes in the churn scenario (an abandoned item comes back after it)")
    parser.add_argument("--p95-target", type=float, default=50.0, help="ms; SQLite next-item and submit p95")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 200))  # the table is wide; keep it whole in a log file too
    results = [run_backend(b, sc, args.submissions, args.think, args.churn_minutes, console)
               for sc in args.scenarios for b in args.backends]
    for r in results:  # each record keeps its own stamp: a run may re-measure some backends and keep the rest
        r["stamp"] = stamp()
    out = Path(__file__).parent / "results" / "serve_load.json"
    previous = json.loads(out.read_text()) if out.exists() else []
    for r in previous:
        r.setdefault("scenario", "plain")  # runs from before the churn scenario existed
    ran = {(r["backend"], r["scenario"]) for r in results}
    kept = [r for r in previous if (r["backend"], r["scenario"]) not in ran]
    everything = {(r["backend"], r["scenario"]): r for r in kept + results}

    table = Table(title=f"20 annotators, {args.submissions:,} submissions while retraining runs, "
                        f"{args.think} s mean reading time (client-side latency, ms: p50 / p95 / p99)")
    for col in ("backend", "scenario", "next item", "submit", "/healthz (baseline)", "p95 next / healthz",
                "p95 submit / healthz", "p95 next / plain", "p95 submit / plain", "per s"):
        table.add_column(col, justify="right", no_wrap=True)
    audit_table = Table(title="acknowledged answers against the database")
    for col in ("backend", "scenario", "cycles during load", "stored", "lost", "duplicated", "late duplicates",
                "late answers", "skips", "abandoned"):
        audit_table.add_column(col, justify="right", no_wrap=True)
    for r in results:
        m = r["ms"]
        plain = everything.get((r["backend"], "plain"))
        vs = {op: f"{m[op][1] / plain['ms'][op][1]:.2f}x" if plain and r["scenario"] != "plain" else ""
              for op in ("next", "submit")}
        table.add_row(r["backend"], r["scenario"], " / ".join(f"{v:.1f}" for v in m["next"]),
                      " / ".join(f"{v:.1f}" for v in m["submit"]), " / ".join(f"{v:.1f}" for v in m["healthz"]),
                      f"{m['next'][1] / m['healthz'][1]:.1f}x", f"{m['submit'][1] / m['healthz'][1]:.1f}x",
                      vs["next"], vs["submit"], f"{r['submissions'] / r['seconds']:.0f}")
        audit_table.add_row(r["backend"], r["scenario"], str(r["cycles_during_load"]), str(r["stored"]),
                            str(r["lost"]), str(r["duplicated"]), str(r["late_duplicates"]), str(r["late_answers"]),
                            str(r["skips"]), str(r["abandoned"]))
    console.print(table)
    console.print(audit_table)
    failures = []
    for r in results:
        r["failed_checks"] = checks(r, args.p95_target)
        for line in r["failed_checks"]:
            failures.append(f"{r['backend']} {r['scenario']}: {line}")
        if r["scenario"] == "churn":
            console.print(f"{r['backend']} churn: {r['late_answers']} answers came in on an expired assignment "
                          f"({r['late_duplicates']} extra labels on items someone else labeled meanwhile); "
                          f"{r['failed_cycles_during_load']} failed cycles")
    out.write_text(json.dumps([everything[k] for k in sorted(everything)], indent=1) + "\n")
    console.print(f"written to {out}")
    for line in failures:
        console.print(f"[red]check failed: {line}")
    if failures:
        sys.exit(1)
    console.print("all checks passed")


if __name__ == "__main__":
    main()
