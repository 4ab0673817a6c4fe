"""Scoring on a Dask cluster: partitions are scored where the workers are, only their best candidates travel.

``connect("local:N")`` starts a ``LocalCluster`` of N single-threaded worker processes on this machine;
``connect("tcp://host:8786")`` joins a running scheduler. The fitted model (small) is broadcast to every worker
once; each task opens the features file at its path, scores its rows chunk by chunk and returns its best
``beta * k`` candidates, which the client merges as they arrive.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from activelabel.errors import ActiveLabelError, ClusterError, InvalidParameterError, ModelImportError
from activelabel.scale.pool import partition_best
from activelabel.strategies.stream import Candidates, merge_candidates

__all__ = ["connect", "joblib_on", "best_on_cluster", "PARTITION_CHUNKS"]

PARTITION_CHUNKS = 10  # chunks per task: enough work per task that scheduling costs little


@contextlib.contextmanager
def connect(spec: str, *, timeout: float = 20.0) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for ``spec`` (``local:N`` or a scheduler address), closed on exit.

    Raises
    ------
    InvalidParameterError
        ``spec`` is neither ``local:N`` (N >= 1) nor an address such as ``tcp://host:8786``.
    ClusterError
        The scheduler cannot be reached within ``timeout`` seconds, or the local cluster cannot start.
    """
    local = re.fullmatch(r"local:(\d+)", spec.strip())
    if not local and not re.fullmatch(r"(tcp|tls|inproc|ucx)://\S+", spec.strip()):
        raise InvalidParameterError(f"--dask {spec!r}: give local:N (N worker processes here) or a scheduler "
                                    "address such as tcp://host:8786")
    if local and int(local.group(1)) < 1:
        raise InvalidParameterError(f"--dask {spec!r}: a local cluster needs at least 1 worker")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ModelImportError("--dask needs dask.distributed: pip install 'activelabel[dask]'") from None

    cluster = None
    try:
        if local:
            cluster = LocalCluster(n_workers=int(local.group(1)), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster, timeout=timeout)
        else:
            client = Client(spec.strip(), timeout=timeout)
    except (OSError, TimeoutError, RuntimeError) as exc:
        if cluster is not None:
            cluster.close()
        if local:  # worker processes re-import the main module: a script must guard its top level
            raise ClusterError(f"--dask {spec}: the local cluster did not start ({exc}); in a script, start it "
                               "under if __name__ == '__main__':") from None
        raise ClusterError(f"--dask {spec}: cannot reach the scheduler ({exc})") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def joblib_on(spec: str) -> Iterator[Any]:
    """Run joblib's parallel work (simulate's seeds and strategies) on the Dask cluster ``spec``; the client."""
    import joblib

    with connect(spec) as client, joblib.parallel_config(backend="dask"):
        yield client


def best_on_cluster(client: Any, model: Any, path: str, n: int, strategy: str, classes: np.ndarray,
                    mask: np.ndarray, m: int, chunk_rows: int,
                    progress: Callable[[int, int], None] | None = None) -> Candidates:
    """The best ``m`` candidates of the file's ``n`` rows, scored in partitions on ``client``'s workers."""
    from distributed import as_completed

    step = chunk_rows * PARTITION_CHUNKS
    # a key of its own (hash=False): with the content's hash as key, a call made right after another got the
    # key the previous call was releasing, and its tasks failed with "lost dependencies"
    model_future = client.scatter(model, broadcast=True, hash=False)
    futures = {client.submit(partition_best, model_future, path, start, min(start + step, n), strategy, classes,
                             mask[start:start + step], m, chunk_rows, pure=False): start
               for start in range(0, n, step)}
    best, done = merge_candidates([], m), 0
    try:
        for future in as_completed(futures):
            start = futures[future]
            try:
                part = future.result()
            except ActiveLabelError:
                raise
            except Exception as exc:  # a worker died or the task failed there: one line naming the rows
                raise ClusterError(f"scoring rows {start:,}-{min(start + step, n):,} of {path} failed on the "
                                   f"cluster: {type(exc).__name__}: {exc}") from None
            best = merge_candidates([best, part], m)
            done += min(step, n - start)
            if progress is not None:
                progress(done, n)
    finally:
        client.cancel([*futures, model_future])
    return best
