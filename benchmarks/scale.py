"""Large pools: seconds and peak memory to pick a batch from 1,000,000 and 10,000,000 items on disk, in one
process and on a 2-worker Dask LocalCluster, against the whole pool in memory; and the test-set intervals.

Pools: ``n`` x 64 float32 features in a ``.npy`` file (ten Gaussian classes), written chunk by chunk; a logistic
regression fitted on 2,000 labeled rows; a batch of 1,000 with the default strategy (beta 10). Each
configuration runs in a fresh process so its peak resident memory (VmHWM) is its own; on the cluster the
client's peak and the largest worker's are given. The baseline, measured in the same run, is ``select_batch``
with the 1,000,000-item pool in memory. Flat memory: the 10,000,000-item peak over the 1,000,000-item one.

Intervals: ``evaluate`` on a 40,000-item test set against scipy's item bootstrap of the same 1,000 resamples.

Simulate: ``activelabel simulate`` of the default against random on a 200,000-row table (20 features, five
classes, ``make_classification``), 5 seeds, default settings (40,000 test items, budget 1,000, batch 20), wall
seconds on 2 cores; and one seed in one process against the same seed with the item bootstrap put back.

Import: 1,000,000 and 10,000,000 short texts (real SMS messages, numbered) into a new project on SQLite and
PostgreSQL, each in its own process (``import_speed.py``'s steps): seconds and peak memory.

Each part carries the stamp of the run that measured it; ``--parts`` runs some and keeps the others' figures.
Writes the stamped ``benchmarks/results/scale.json``; ``python benchmarks/readme_tables.py`` puts it in the
README. Files go to ``--folder`` (default a temporary folder; 2.6 GB for the larger pool).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from stamp import RESULTS, save, stamp  # noqa: E402  (benchmarks/ is on the path when a script runs)

N_FEATURES, N_CLASSES, BATCH, LABELED = 64, 10, 1_000, 2_000

CHILD = r"""
import json, pickle, sys, time
import numpy as np
mode, path, model_path = sys.argv[1], sys.argv[2], sys.argv[3]
model = pickle.load(open(model_path, "rb"))
from activelabel.scale import open_features, select_on_disk
n = len(open_features(path))
mask = np.zeros(n, dtype=bool)
mask[:%d] = True  # the labeled rows
t0 = time.perf_counter()
extra = {}
if mode == "memory":
    from activelabel.strategies import select_batch
    X = np.load(path)
    batch = select_batch("default", batch_size=%d, proba=model.predict_proba(X), X=X, labeled_mask=mask,
                         random_state=0)
elif mode == "disk":
    batch = select_on_disk(model, path, classes=model.classes_, batch_size=%d, mask=mask, random_state=0)
else:
    from activelabel.scale import connect
    with connect("local:2") as client:
        started = time.perf_counter()
        batch = select_on_disk(model, path, classes=model.classes_, batch_size=%d, mask=mask, random_state=0,
                               client=client)
        extra["cluster_start_seconds"] = started - t0
        def hwm():
            return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024
        extra["worker_peak_mb"] = max(client.run(hwm).values())
seconds = time.perf_counter() - t0
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "peak_mb": int(hwm.split()[1]) / 1024, "first": [int(i) for i in batch.indices[:20]],
                  **extra}))
""" % (LABELED, BATCH, BATCH, BATCH)


def make_pool(path: Path, n: int, console: Console):
    """Write ``n`` rows chunk by chunk; fit the model on the first ``LABELED`` rows; return the model's path."""
    import pickle

    from sklearn.linear_model import LogisticRegression

    from activelabel.scale import create_features

    rng = np.random.default_rng(0)
    centres = rng.normal(scale=1.5, size=(N_CLASSES, N_FEATURES))
    out = create_features(path, n, N_FEATURES)
    first = None
    with Progress(console=console, transient=True) as bar:
        job = bar.add_task(f"writing {n:,} x {N_FEATURES} features", total=n)
        for start in range(0, n, 500_000):
            stop = min(start + 500_000, n)
            y = rng.integers(0, N_CLASSES, stop - start)
            block = (centres[y] + rng.normal(size=(stop - start, N_FEATURES))).astype(np.float32)
            out.write(start, block)
            if first is None:
                first = (block[:LABELED], y[:LABELED])
            bar.update(job, completed=stop)
    model = LogisticRegression(max_iter=1_000).fit(*first)
    model_path = path.with_suffix(".model.pkl")
    model_path.write_bytes(pickle.dumps(model))
    return model_path


def child(mode: str, path: Path, model_path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(model_path)], capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def intervals() -> dict:
    from scipy.stats import bootstrap

    from activelabel.loop.evaluation import evaluate, macro_f1

    rng = np.random.default_rng(0)
    t = rng.integers(0, N_CLASSES, 40_000)
    p = np.where(rng.random(len(t)) < 0.8, t, rng.integers(0, N_CLASSES, len(t)))
    t0 = time.perf_counter()
    ours = evaluate(t, p, N_CLASSES, random_state=0)
    mine = time.perf_counter() - t0

    def both(a, b, axis=-1):
        return np.stack([(a == b).mean(axis=axis), macro_f1(a, b, N_CLASSES, axis=axis)])

    t0 = time.perf_counter()
    items = bootstrap((t, p), both, paired=True, vectorized=True, n_resamples=1_000, method="percentile",
                      rng=rng, batch=100)
    theirs = time.perf_counter() - t0
    low, high = items.confidence_interval
    return {"test_items": len(t), "seconds": mine, "item_bootstrap_seconds": theirs, "speedup": theirs / mine,
            "accuracy_ci": list(ours.accuracy_ci), "item_bootstrap_accuracy_ci": [float(low[0]), float(high[0])],
            "macro_f1_ci": list(ours.macro_f1_ci), "item_bootstrap_macro_f1_ci": [float(low[1]), float(high[1])]}


def _item_bootstrap_evaluate(y_true, y_pred, n_classes, *, n_resamples=1000, confidence=0.95, random_state=None):
    """What the learner evaluated with before: scipy's percentile bootstrap over items (the baseline)."""
    from scipy.stats import bootstrap

    from activelabel.loop.evaluation import Metrics, macro_f1

    t, p = np.asarray(y_true), np.asarray(y_pred)

    def both(a, b, axis=-1):
        return np.stack([(a == b).mean(axis=axis), macro_f1(a, b, n_classes, axis=axis)])

    point = both(t, p)
    res = bootstrap((t, p), both, paired=True, vectorized=True, n_resamples=n_resamples, confidence_level=confidence,
                    method="percentile", rng=np.random.default_rng(random_state), batch=100)
    low, high = res.confidence_interval
    return Metrics(accuracy=float(point[0]), accuracy_ci=(float(low[0]), float(high[0])), macro_f1=float(point[1]),
                   macro_f1_ci=(float(low[1]), float(high[1])), n_test=len(t))


def simulate_table(folder: Path, console: Console) -> dict:
    import pandas as pd
    from sklearn.datasets import make_classification

    import activelabel.loop.learner as learner
    from activelabel.loop.simulate import simulate

    X, y = make_classification(n_samples=200_000, n_features=20, n_informative=10, n_classes=5,
                               n_clusters_per_class=2, random_state=0)
    table = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)]).assign(label=[f"c{v}" for v in y])
    path = folder / "table-200000.csv"
    table.to_csv(path, index=False)
    with console.status("simulate: 200,000 rows, 5 seeds, default against random"):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "activelabel.cli", "simulate", str(path), "--seeds", "5",
                               "--jobs", "2", "--out", str(folder / "simulate-out"), "--json"],
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    summary = json.loads(done.stdout)
    one, ours = {}, learner.evaluate
    try:
        for name, evaluate in (("ours", ours), ("item_bootstrap", _item_bootstrap_evaluate)):
            learner.evaluate = evaluate  # one process (n_jobs=1), so the learner here is the one that runs
            with console.status(f"simulate: one seed in one process, {name} intervals"):
                t0 = time.perf_counter()
                simulate(X, y, strategies=["default"], seeds=1, n_jobs=1)
                one[name] = time.perf_counter() - t0
    finally:
        learner.evaluate = ours
    return {"rows": len(y), "seeds": 5, "seconds": wall, "target_seconds": 600,
            "final_accuracy": summary["strategies"]["default"]["final_accuracy"],
            "one_seed_seconds": one["ours"], "one_seed_item_bootstrap_seconds": one["item_bootstrap"],
            "one_seed_speedup": one["item_bootstrap"] / one["ours"]}


def imports(folder: Path, sizes: list[int], backends: list[str], console: Console) -> list[dict]:
    from import_speed import make_files, pg_database, step

    out = []
    for n in sizes:
        with console.status(f"writing {n:,} short texts"):
            items, _ = make_files(folder, n, 1)
        for backend in backends:
            project = folder / f"import-{backend}-{n}"
            db, drop = pg_database() if backend == "postgresql" else ("", lambda: None)
            try:
                step("init", project, db=db)
                with console.status(f"{backend}: importing {n:,} items"):
                    r = step("items", project, items)
            finally:
                drop()
            assert r["new"] == n
            out.append({"rows": n, "backend": backend, "seconds": r["seconds"], "peak_mb": r["peak_mb"],
                        "csv_mb": items.stat().st_size / 2**20})
            console.print(f"import {n:>12,} {backend:10s} {r['seconds']:8.1f} s  peak {r['peak_mb']:7.0f} MB")
            shutil.rmtree(project, ignore_errors=True)
        items.unlink()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--parts", nargs="+", default=["intervals", "simulate", "pools", "import"],
                        choices=["intervals", "simulate", "pools", "import"])
    parser.add_argument("--import-sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    console = Console()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="activelabel-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    previous = RESULTS / "scale.json"
    results = json.loads(previous.read_text())["results"] if previous.exists() else {}
    part_stamp = stamp(["dask", "distributed"])
    if "intervals" in args.parts:
        r = results["intervals"] = dict(intervals(), stamp=part_stamp)
        console.print(f"intervals on {r['test_items']:,} test items: {r['seconds']:.4f} s against the item "
                      f"bootstrap's {r['item_bootstrap_seconds']:.2f} s ({r['speedup']:.0f}x)")
    if "simulate" in args.parts:
        r = results["simulate"] = dict(simulate_table(folder, console), stamp=part_stamp)
        console.print(f"simulate on {r['rows']:,} rows, 5 seeds: {r['seconds']:.0f} s (target 600 s); one seed "
                      f"{r['one_seed_seconds']:.1f} s against {r['one_seed_item_bootstrap_seconds']:.1f} s with the "
                      f"item bootstrap ({r['one_seed_speedup']:.1f}x)")
    if "import" in args.parts:
        results["imports"] = imports(folder, args.import_sizes, args.backends, console)
        results["imports_stamp"] = part_stamp
    if "pools" in args.parts:
        results["pools"], results["pools_stamp"] = [], part_stamp
    for n in args.sizes if "pools" in args.parts else []:
        path = folder / f"pool-{n}.npy"
        model_path = make_pool(path, n, console)
        modes = ["memory", "disk", "cluster"] if n == min(args.sizes) else ["disk", "cluster"]
        for mode in modes:
            with console.status(f"{n:,} items: {mode}"):
                out = child(mode, path, model_path)
            out.update(pool=n, mode=mode)
            results["pools"].append(out)
            console.print(f"{n:>12,} {mode:8s} {out['seconds']:8.1f} s  peak {out['peak_mb']:7.0f} MB"
                          + (f"  (largest worker {out['worker_peak_mb']:.0f} MB)" if "worker_peak_mb" in out else ""))
        path.unlink()
    if "pools" not in args.parts:
        console.print(f"written to {save('scale', results, peers=['dask', 'distributed'])}")
        return
    by = {(r["pool"], r["mode"]): r for r in results["pools"]}
    small, large = min(args.sizes), max(args.sizes)
    same = by[small, "memory"]["first"] == by[small, "disk"]["first"] == by[small, "cluster"]["first"]
    results["same_batch_as_memory"] = same
    if large != small:
        for mode in ("disk", "cluster"):
            key = "worker_peak_mb" if mode == "cluster" else "peak_mb"
            results[f"{mode}_peak_ratio_10x_items"] = by[large, mode][key] / by[small, mode][key]
            console.print(f"{mode}: {large // small}x the items, {results[f'{mode}_peak_ratio_10x_items']:.2f}x the "
                          f"peak memory")
    console.print(f"the same first 20 picks in memory, on disk and on the cluster: {same}")
    console.print(f"written to {save('scale', results, peers=['dask', 'distributed'])}")


if __name__ == "__main__":
    main()
