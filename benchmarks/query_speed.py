"""Seconds and peak memory of selecting a batch from large pools.

Part 1, in this process: for every pool size the same probabilities and
features feed activelabel's ``entropy`` and ``default`` strategies and a
plain NumPy floor measured in the same run: entropy written the obvious
way, then ``np.argpartition``.

Part 2 (``--peers``): activelabel against the peers' uncertainty and
diversity strategies (modAL, scikit-activeml, small-text; install
``benchmarks/requirements.txt``). Each measurement runs in its own process
with the same pool, a logistic regression fitted on 1,000 labeled items,
a 300 s time limit and a 16 GB address-space limit; it includes the
strategy's own ``predict_proba`` over the pool. A peer that timed out at a
size is not run at larger sizes.

Ratios are what to read; absolute seconds depend on the machine.

Usage::

    .venv/bin/python benchmarks/query_speed.py                  # part 1: 10k, 100k, 1M items
    .venv/bin/python benchmarks/query_speed.py --peers          # part 2 as well
    .venv/bin/python benchmarks/query_speed.py --sizes 10000 100000 --peers
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from stamp import peer_packages, save  # benchmarks/ is on the path when a script runs

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


TIME_LIMIT = 300
MEMORY_LIMIT = 16 * 2**30
N_LABELED = 1000
PEER_METHODS = ["activelabel default", "activelabel entropy", "modal_margin", "skal_margin", "modal_ranked_batch",
                "skal_coreset", "skal_typiclust", "skal_clue", "skal_badge", "skal_probcover",
                "smalltext_kmeans", "smalltext_coreset"]


def worker(method: str, n: int) -> None:
    """Time one selection on the shared pool; print seconds and peak RSS as JSON."""
    from sklearn.linear_model import LogisticRegression

    from activelabel.loop.learner import QueryContext

    rng = np.random.default_rng(0)
    X, proba = make_pool(n, rng)
    y = proba.argmax(axis=1)
    labeled = np.arange(N_LABELED)
    model = LogisticRegression(max_iter=300).fit(X[labeled], y[labeled])
    mask = np.zeros(n, dtype=bool)
    mask[labeled] = True
    t = time.perf_counter()
    if method.startswith("activelabel"):
        p = model.predict_proba(X)
        picks = select_batch(method.split()[1], batch_size=BATCH, proba=p, X=X, labeled_mask=mask,
                             random_state=0).indices
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from peers import PEERS

        ctx = QueryContext(model=model, X=X, proba=None, classes=np.arange(N_CLASSES),
                           candidates=np.arange(N_LABELED, n), labeled=labeled, y_labeled=y[labeled],
                           batch_size=BATCH, rng=np.random.default_rng(0))
        picks = PEERS[method](ctx)
    seconds = time.perf_counter() - t
    assert len(np.unique(picks)) == BATCH
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss": peak}))


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def measure(method: str, n: int) -> dict:
    """Run :func:`worker` in a fresh process under the time and memory limits."""
    try:
        out = subprocess.run([sys.executable, __file__, "--worker", method, str(n)], capture_output=True,
                             text=True, timeout=TIME_LIMIT + 30, preexec_fn=_limit_memory)
    except subprocess.TimeoutExpired:
        return {"status": f"> {TIME_LIMIT} s"}
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        if "MemoryError" in tail or "Unable to allocate" in tail or out.returncode == -9:
            return {"status": "> 16 GB"}
        return {"status": f"failed: {tail[:80]}"}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["seconds"] > TIME_LIMIT:
        return {"status": f"> {TIME_LIMIT} s", **result}
    return {"status": "ok", **result}


def peers_table(sizes: list[int], console: Console) -> None:
    results: dict[str, dict[int, dict]] = {m: {} for m in PEER_METHODS}
    for i, n in enumerate(sizes):
        for method in PEER_METHODS:
            earlier = [r for r in results[method].values() if r["status"] != "ok"]
            if earlier:
                results[method][n] = {"status": earlier[0]["status"] + " (smaller pool)"}
                continue
            previous = results[method].get(sizes[i - 1]) if i else None
            if previous and previous["seconds"] * n / sizes[i - 1] > TIME_LIMIT:
                # Every method here costs at least linear time in the pool size, so
                # this one cannot finish in the limit: say so instead of waiting.
                results[method][n] = {"status": f"> {TIME_LIMIT} s (projected from {previous['seconds']:.0f} s "
                                                f"at {sizes[i - 1]:,})"}
                continue
            with console.status(f"{method} on {n:,} items"):
                results[method][n] = measure(method, n)
    table = Table(title=f"Selecting {BATCH} of n items with 1,000 labeled: seconds (peak RSS GB); "
                        f"x = seconds / activelabel default")
    table.add_column("method")
    for n in sizes:
        table.add_column(f"{n:,}", justify="right")
    for method in PEER_METHODS:
        cells = []
        for n in sizes:
            r, ours = results[method][n], results["activelabel default"][n]
            if r["status"] != "ok":
                cells.append(r["status"])
                continue
            ratio = r["seconds"] / ours["seconds"] if ours["status"] == "ok" else float("nan")
            cells.append(f"{r['seconds']:.2f} s ({r['peak_rss'] / 2**30:.1f}) x{ratio:.1f}")
        table.add_row(method, *cells)
    console.print(table)
    save("query_speed_peers", {m: {str(n): r for n, r in v.items()} for m, v in results.items()},
         peers=peer_packages(PEER_METHODS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--peers", action="store_true", help="also time the peers (part 2)")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    console = Console()
    rng = np.random.default_rng(0)
    table = Table(title=f"Selecting {BATCH} items, {N_FEATURES} float32 features, {N_CLASSES} classes")
    for col in ("pool", "method", "seconds", "x floor", "peak MB", "peak / X"):
        table.add_column(col, justify="right" if col not in ("method",) else "left")
    measured = []
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
            measured.append({"pool": n, "method": name, "seconds": t, "x_floor": t / t_floor,
                             "peak_mb": peak / 2**20, "peak_over_x": peak / 2**20 / x_mb})
        del X, proba
    console.print(table)
    console.print(f"written to {save('query_speed', measured)}")
    if args.peers:
        peers_table(args.sizes, console)


if __name__ == "__main__":
    main()
