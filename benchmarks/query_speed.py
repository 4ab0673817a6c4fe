"""Seconds and peak memory of selecting a batch from large pools.

For every pool size the same probabilities and features feed activelabel's
``entropy`` and ``default`` strategies and a plain NumPy floor measured in
the same run: entropy written the obvious way, then ``np.argpartition``.
Ratios against the floor are what to read; absolute seconds depend on the
machine.

Usage::

    .venv/bin/python benchmarks/query_speed.py            # 10k, 100k, 1M items
    .venv/bin/python benchmarks/query_speed.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from rich.console import Console
from rich.table import Table

from activelabel.strategies import select_batch

N_FEATURES = 64
N_CLASSES = 10
BATCH = 1000


def make_pool(n: int, rng: np.random.Generator):
    """Clustered float32 features and softmax probabilities of a linear model over them."""
    centres = rng.normal(size=(N_CLASSES, N_FEATURES)).astype(np.float32)
    X = centres[rng.integers(N_CLASSES, size=n)] + rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    logits = X @ (centres.T * 0.3)
    logits -= logits.max(axis=1, keepdims=True)
    proba = np.exp(logits.astype(np.float64))
    proba /= proba.sum(axis=1, keepdims=True)
    return X, proba


def floor(proba: np.ndarray) -> np.ndarray:
    """Plain NumPy: entropy, then the top BATCH by argpartition."""
    ent = -(proba * np.log(np.clip(proba, 1e-12, None))).sum(axis=1)
    return np.argpartition(-ent, BATCH - 1)[:BATCH]


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peak_bytes(fn) -> int:
    """Peak bytes allocated during ``fn`` beyond what was allocated before (NumPy reports to tracemalloc)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    console = Console()
    rng = np.random.default_rng(0)
    table = Table(title=f"Selecting {BATCH} items, {N_FEATURES} float32 features, {N_CLASSES} classes")
    for col in ("pool", "method", "seconds", "x floor", "peak MB", "peak / X"):
        table.add_column(col, justify="right" if col not in ("method",) else "left")
    for n in args.sizes:
        X, proba = make_pool(n, rng)
        repeats = 5 if n <= 100_000 else 3
        x_mb = X.nbytes / 2**20
        t_floor = best_time(lambda: floor(proba), repeats)
        rows = [("numpy floor (entropy + argpartition)", t_floor, peak_bytes(lambda: floor(proba)))]
        for strategy in ("entropy", "default"):
            def run(strategy=strategy):
                return select_batch(strategy, batch_size=BATCH, proba=proba, X=X, random_state=0)
            with console.status(f"{strategy} on {n:,} items"):
                t = best_time(run, repeats)
                rows.append((f"activelabel {strategy}", t, peak_bytes(run)))
        for name, t, peak in rows:
            table.add_row(f"{n:,}", name, f"{t:.3f}", f"{t / t_floor:.2f}", f"{peak / 2**20:.0f}",
                          f"{peak / 2**20 / x_mb:.2f}")
        del X, proba
    console.print(table)


if __name__ == "__main__":
    main()
