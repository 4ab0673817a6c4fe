"""Pools scored in chunks (and on a Dask cluster) pick the batch the in-memory path picks."""

import numpy as np
import pytest

from activelabel.errors import InvalidParameterError
from activelabel.strategies import select_batch
from activelabel.strategies.stream import select_chunked


def _pool(n=20_000, c=4, d=8, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    proba[100:300] = proba[100]  # ties, also at the cut
    samples = np.stack([proba * rng.uniform(0.5, 1.5, size=(n, c)) for _ in range(5)])
    samples /= samples.sum(axis=2, keepdims=True)
    X = rng.normal(size=(n, d)).astype(np.float32)
    labeled = rng.random(n) < 0.05
    excluded = rng.random(n) < 0.1
    return proba, samples, X, labeled, excluded


@pytest.mark.parametrize("strategy", ["default", "margin", "entropy", "bald", "random"])
@pytest.mark.parametrize("chunk", [1_000, 7_777, 20_000])
def test_chunked_selection_equals_the_in_memory_batch(strategy, chunk):
    proba, samples, X, labeled, excluded = _pool()
    whole = select_batch(strategy, batch_size=300, proba=proba, samples=samples, X=X, labeled_mask=labeled,
                         exclude_mask=excluded, random_state=3)
    chunks = ((s, proba[s:s + chunk], samples[:, s:s + chunk]) for s in range(0, len(proba), chunk))
    part = select_chunked(strategy, chunks, batch_size=300, n=len(proba), mask=labeled | excluded,
                          features=lambda idx: X[idx], random_state=3)
    assert np.array_equal(part.indices, whole.indices)
    assert part.n_random == whole.n_random
    if strategy not in ("random",):
        assert np.array_equal(part.scores, whole.scores[part.candidates])


def test_a_strategy_that_needs_the_whole_pool_is_refused_by_name():
    proba, samples, X, labeled, excluded = _pool(n=1_000)
    with pytest.raises(InvalidParameterError, match="kcenter.*whole pool"):
        select_chunked("kcenter", [(0, proba, None)], batch_size=5, n=1_000, mask=labeled)


def _disk_pool(tmp_path, n, d=16, seed=0):
    from sklearn.linear_model import LogisticRegression

    from activelabel.scale import create_features

    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(5, d))
    y = rng.integers(0, 5, n)
    out = create_features(tmp_path / "pool.npy", n, d)
    for start in range(0, n, 50_000):  # written chunk by chunk, as a featurizer would
        stop = min(start + 50_000, n)
        out.write(start, centres[y[start:stop]] + rng.normal(size=(stop - start, d)))
    X = np.load(tmp_path / "pool.npy")
    labeled = np.zeros(n, dtype=bool)
    labeled[rng.choice(n, 300, replace=False)] = True
    excluded = rng.random(n) < 0.1
    model = LogisticRegression(max_iter=500).fit(X[labeled], y[labeled])
    return tmp_path / "pool.npy", X, model, labeled, excluded


def test_a_pool_on_disk_scored_in_chunks_picks_the_in_memory_batch(tmp_path):
    from activelabel.scale import select_on_disk

    path, X, model, labeled, excluded = _disk_pool(tmp_path, 30_000)
    whole = select_batch("default", batch_size=200, proba=model.predict_proba(X), X=X, labeled_mask=labeled,
                         exclude_mask=excluded, random_state=11)
    seen = []
    part = select_on_disk(model, path, classes=model.classes_, batch_size=200, mask=labeled | excluded,
                          random_state=11, chunk_rows=4_096, progress=lambda done, total: seen.append(done))
    assert np.array_equal(part.indices, whole.indices)
    assert np.allclose(part.scores, whole.scores[part.candidates])  # chunked scores are the unchunked ones
    assert seen[-1] == len(X) and seen == sorted(seen)


def test_a_two_worker_local_cluster_picks_the_in_memory_batch_on_200_000_items(tmp_path):
    from activelabel.scale import connect, select_on_disk

    path, X, model, labeled, excluded = _disk_pool(tmp_path, 200_000)
    whole = select_batch("default", batch_size=500, proba=model.predict_proba(X), X=X, labeled_mask=labeled,
                         exclude_mask=excluded, random_state=5)
    with connect("local:2") as client:
        assert len(client.scheduler_info()["workers"]) == 2
        part = select_on_disk(model, path, classes=model.classes_, batch_size=500, mask=labeled | excluded,
                              random_state=5, chunk_rows=5_000, client=client)
    assert np.array_equal(part.indices, whole.indices)
    assert np.array_equal(part.candidates[:50], np.argsort(-np.where(labeled | excluded, -np.inf, whole.scores),
                                                           kind="stable")[:50])


def test_a_cluster_spec_or_scheduler_that_is_wrong_is_one_line():
    from activelabel.errors import ClusterError
    from activelabel.scale import connect

    with pytest.raises(InvalidParameterError, match="local:N"), connect("localhost:8786"):
        pass
    with pytest.raises(InvalidParameterError, match="at least 1"), connect("local:0"):
        pass
    with pytest.raises(ClusterError, match="tcp://127.0.0.1:9.*cannot reach"), connect("tcp://127.0.0.1:9", timeout=2):
        pass


def test_a_features_file_that_is_missing_truncated_or_not_float32_is_named(tmp_path):
    from activelabel.errors import ShapeMismatchError, UnreadableFileError
    from activelabel.scale import create_features, open_features

    with pytest.raises(UnreadableFileError, match="no such features file"):
        open_features(tmp_path / "none.npy")
    np.save(tmp_path / "wide.npy", np.zeros((4, 3)))
    with pytest.raises(ShapeMismatchError, match="float32.*float64"):
        open_features(tmp_path / "wide.npy")
    f = create_features(tmp_path / "f.npy", 1_000, 8)
    f.write(10, np.ones((5, 8)))
    assert np.array_equal(f.rows(9, 16).sum(axis=1), [0, 8, 8, 8, 8, 8, 0])
    with pytest.raises(ShapeMismatchError, match="block of shape \\(2, 3\\)"):
        f.write(0, np.ones((2, 3)))
    with open(tmp_path / "f.npy", "r+b") as raw:
        raw.truncate(2_000)
    with pytest.raises(UnreadableFileError, match="truncated"):
        open_features(tmp_path / "f.npy")


def test_simulate_on_a_local_dask_cluster_gives_the_runs_of_one_process(tmp_path):
    import json

    from helpers import one_line_error, run_cli

    common = ["simulate", "digits", "--seeds", "2", "--budget", "80", "--batch-size", "20", "--json"]
    here = run_cli(*common, "--jobs", "1", "--out", tmp_path / "here")
    there = run_cli(*common, "--dask", "local:2", "--out", tmp_path / "there")
    assert here.returncode == 0 and there.returncode == 0, there.stderr
    a, b = json.loads(here.stdout)["strategies"], json.loads(there.stdout)["strategies"]
    assert a["default"]["aulc_per_seed"] == b["default"]["aulc_per_seed"]
    assert a["random"]["curve"] == b["random"]["curve"]
    one_line_error(run_cli("simulate", "digits", "--dask", "localhost:8786"), "local:N", "tcp://host:8786")


def test_what_would_fail_after_scoring_is_refused_before_it(tmp_path):
    from sklearn.svm import LinearSVC

    from activelabel.errors import BatchTooLargeError, MissingPredictProbaError
    from activelabel.scale import select_on_disk

    path, X, model, labeled, excluded = _disk_pool(tmp_path, 5_000)
    heard = []

    def pick(**kwargs):
        options = dict(classes=model.classes_, batch_size=10, mask=labeled, progress=lambda *a: heard.append(a))
        return select_on_disk(kwargs.pop("model", model), path, **(options | kwargs))

    with pytest.raises(InvalidParameterError, match="positive integer"):
        pick(batch_size=2.5)
    with pytest.raises(BatchTooLargeError, match="larger than the 3 unlabeled"):
        pick(mask=np.arange(5_000) > 2)
    with pytest.raises(MissingPredictProbaError, match="LinearSVC"):
        pick(model=LinearSVC().fit(X[:300], np.arange(300) % 5))
    with pytest.raises(InvalidParameterError, match="'bald' needs a committee"):
        pick(strategy="bald")
    with pytest.raises(InvalidParameterError, match="class 3, which is not in classes \\(0, 1, 2\\)"):
        pick(classes=model.classes_[:3])
    assert heard == []  # nothing was scored


def test_a_cluster_gives_the_same_batch_call_after_call(tmp_path):
    from activelabel.scale import connect, select_on_disk

    path, X, model, labeled, excluded = _disk_pool(tmp_path, 20_000)
    with connect("local:2") as client:
        picks = [select_on_disk(model, path, classes=model.classes_, batch_size=20, mask=labeled, chunk_rows=1_000,
                                client=client, random_state=0).indices for _ in range(6)]
    assert all(np.array_equal(p, picks[0]) for p in picks)
