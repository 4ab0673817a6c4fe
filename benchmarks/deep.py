"""Deep models in the loop: the CNN on Fashion-MNIST, MC dropout and ensemble BALD against random, and MiniLM
embeddings + MLP against TF-IDF + logistic regression on sms_spam.

Fashion-MNIST: 12,500 images (the first of the original training set), a 2,500-image test set carved out per
seed, so the pool is 10,000; batch 200, seed set 200, random share 10%. The same CNN
(``activelabel.models.deep.cnn``, MC dropout with 20 passes) runs random, the default strategy (on the passes'
mean) and BALD; ``ensemble`` (5 CNNs from different seeds) runs BALD on its members. The ceiling is the CNN
trained on the whole pool of each seed; the table gives the labels each needs to reach 99% of it (median over
seeds) and the AULC, with the share of random's labels.

sms_spam: the default strategy with MiniLM sentence embeddings (384 dims) into the MLP, against TF-IDF (reduced
by SVD to 100 dims, as ``simulate --text-column`` does) into logistic regression, on the same seeds: final
accuracy and labels to 99% of each one's own ceiling.

Writes the stamped ``benchmarks/results/deep_images.json`` and ``deep_text.json`` (one per part, each with the
stamp of its own run); ``python benchmarks/readme_tables.py`` puts them in the README.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one PyTorch thread per process: the runs are the parallelism

import numpy as np  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from stamp import save  # noqa: E402  (benchmarks/ is on the path when a script runs)

from activelabel.data import load_labeled  # noqa: E402
from activelabel.loop.learner import ActiveLearner  # noqa: E402
from activelabel.loop.simulate import SimulationResult, ceiling_accuracy, simulate  # noqa: E402
from activelabel.models.deep import DeepClassifier, cnn, ensemble  # noqa: E402
from activelabel.models.featurizers import text_embeddings  # noqa: E402
from activelabel.models.loading import default_model  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _summary(result, name: str) -> dict:
    s = result.summary()["strategies"][name]
    return {"labels_to_99": s["labels_to_99"], "aulc_mean": s["aulc_mean"], "aulc_per_seed": s["aulc_per_seed"],
            "final_accuracy": s["final_accuracy"], "p_value_vs_random": s["p_value_vs_random"],
            "curve": s["curve"]}


def fashion(seeds: int, budget: int, console: Console) -> dict:
    z = np.load(DATA / "fashion_mnist.npz")
    X, y = z["X"][:12_500].astype(np.float32) / 255.0, z["y"][:12_500]
    kwargs = dict(batch_size=200, seed_size=200, test_size=2_500, random_fraction=0.1, max_labels=budget,
                  price_per_label=0.0)
    seed_list = list(range(seeds))
    # One pool for every run, the costliest (the ensemble) first. The ensemble shares the CNN's random runs and
    # ceiling: the target is 99% of the full-pool accuracy of the same CNN, and simulate() would train both
    # again with five members.
    runs = [("ensemble bald", ensemble(), "bald")] + [("cnn " + n, cnn(), n) for n in ("bald", "default", "random")]
    tasks = [delayed(_run)(model, X, y, strategy, s, kwargs) for _, model, strategy in runs for s in seed_list]
    tasks += [delayed(ceiling_accuracy)(cnn(), X, y, s, kwargs) for s in seed_list]
    histories: dict[str, dict[int, list]] = {label: {} for label, _, _ in runs}
    ceilings: dict[int, float] = {}
    t0 = time.perf_counter()
    with Progress(console=console) as bar:
        job = bar.add_task("fashion_mnist runs", total=len(tasks))
        for label, seed, value in Parallel(n_jobs=2, return_as="generator_unordered")(tasks):
            if label == "__ceiling__":
                ceilings[seed] = value
            else:
                histories[label][seed] = value
            bar.advance(job)
    result = SimulationResult(histories={("random" if k == "cnn random" else k): [v[s] for s in seed_list]
                                         for k, v in histories.items()},
                              seeds=seed_list, ceilings=[ceilings[s] for s in seed_list], price_per_label=0.0,
                              settings=dict(kwargs, seeds=seeds, pool=10_000, model="cnn (MC dropout, 20 passes)",
                                            ensemble="5 CNNs"))
    out = {("cnn random" if k == "random" else k): _summary(result, k) for k in result.strategies}
    base = out["cnn random"]["labels_to_99"]
    for r in out.values():
        r["share_of_random_labels"] = None if r["labels_to_99"] is None or not base else r["labels_to_99"] / base
    return {"ceiling": result.ceiling_accuracy, "ceiling_per_seed": result.ceilings,
            "seconds": time.perf_counter() - t0, "pool": 10_000, "settings": result.settings, "methods": out}


def _run(model, X, y, strategy, seed, kwargs):
    """One run, tagged with the label its model and strategy carry in the table."""
    learner = ActiveLearner(model, strategy=strategy, random_state=seed, **kwargs)
    learner.start(X, y)
    label = ("ensemble " if model.n_members > 1 else "cnn ") + strategy
    return label, seed, learner.run(lambda idx: y[idx], max_cycles=100_000)


def sms(seeds: int, budget: int, console: Console) -> dict:
    tfidf = load_labeled(str(DATA / "sms_spam.parquet"), text_column="text")
    texts = load_labeled_texts()
    with console.status(f"sms_spam: MiniLM embeddings of {len(texts):,} messages"):
        t0 = time.perf_counter()
        emb = text_embeddings(texts)
        embed_seconds = time.perf_counter() - t0
    common = dict(strategies=["default"], seeds=seeds, batch_size=20, seed_size=20, max_labels=budget, n_jobs=2)
    out = {}
    for name, X, model in (("TF-IDF + logistic regression", tfidf.X, default_model()),
                           ("MiniLM + MLP", emb, DeepClassifier("mlp"))):
        with console.status(f"sms_spam: {name}"):
            t0 = time.perf_counter()
            r = simulate(X, tfidf.y, model=model, **common)
        out[name] = dict(_summary(r, "default"), ceiling=r.ceiling_accuracy, seconds=time.perf_counter() - t0)
    return {"embedding_seconds": embed_seconds, "items": len(texts), "methods": out}


def load_labeled_texts() -> list[str]:
    import pandas as pd

    return pd.read_parquet(DATA / "sms_spam.parquet")["text"].fillna("").tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", default=["fashion_mnist", "sms_spam"],
                        choices=["fashion_mnist", "sms_spam"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--fashion-budget", type=int, default=4_000, help="training labels per fashion_mnist run")
    parser.add_argument("--sms-budget", type=int, default=600)
    args = parser.parse_args()
    console = Console()
    if "fashion_mnist" in args.parts:
        images = fashion(args.seeds, args.fashion_budget, console)
        for name, r in images["methods"].items():
            console.print(f"fashion_mnist {name:14s} labels to 99% {r['labels_to_99']} "
                          f"(share of random {r['share_of_random_labels']}), AULC {r['aulc_mean']:.4f}")
        console.print(f"written to {save('deep_images', images, peers=['torch', 'skorch'])}")
    if "sms_spam" in args.parts:
        text = sms(args.seeds, args.sms_budget, console)
        for name, r in text["methods"].items():
            console.print(f"sms_spam {name:30s} final {r['final_accuracy']:.4f}, ceiling {r['ceiling']:.4f}, "
                          f"labels to 99% {r['labels_to_99']}")
        console.print(f"written to {save('deep_text', text, peers=['torch', 'skorch'])}")


if __name__ == "__main__":
    main()
