"""Training labels from noisy annotators: majority vote against Dawid-Skene and CROWDLAB, on real data sets.

Three simulated annotators of accuracy 0.95, 0.85 and 0.65 (each with a confusion matrix around its accuracy,
seeded) label every item of pendigits and sms_spam; each method aggregates their answers, and the accuracy of
the aggregated labels against the true ones is measured over 10 seeds, with a paired Wilcoxon test against
majority vote. CROWDLAB uses out-of-fold probabilities of the default model trained on the majority labels
(5-fold), as cleanlab advises. Writes the stamped ``benchmarks/results/annotators.json``;
``python benchmarks/readme_tables.py`` puts it in the README.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from scipy import stats
from sklearn.model_selection import cross_val_predict
from stamp import save  # benchmarks/ is on the path when a script runs

from activelabel.agreement import crowdlab, dawid_skene, majority_vote, noisy_labels
from activelabel.data import load_labeled
from activelabel.loop.crowd import simulate_annotators
from activelabel.models.loading import default_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DATASETS = {"pendigits": lambda: load_labeled(str(DATA / "pendigits.parquet")),
            "sms_spam": lambda: load_labeled(str(DATA / "sms_spam.parquet"), text_column="text")}
ACCURACIES = (0.95, 0.85, 0.65)
METHODS = ("majority", "dawid_skene", "crowdlab")
PLANS = ("1x_majority", "3x_majority", "3x_dawid_skene", "3x_crowdlab", "routing_dawid_skene")
BUDGET = {"pendigits": 1500, "sms_spam": 2500}  # money (opinions at 1 each) per run


def run(name: str, seeds: int, console: Console, relabel_fraction: float = 0.4) -> dict:
    data = DATASETS[name]()
    classes, y = np.unique(data.y, return_inverse=True)
    k = len(classes)
    per_seed = {m: [] for m in METHODS}
    t0 = time.perf_counter()
    for seed in range(seeds):
        with console.status(f"{name}: seed {seed + 1} of {seeds}"):
            m = noisy_labels(y, ACCURACIES, k, random_state=seed)
            vote = majority_vote(m, k, random_state=seed)
            per_seed["majority"].append(float((vote.labels == y).mean()))
            per_seed["dawid_skene"].append(float((dawid_skene(m, k, random_state=seed).labels == y).mean()))
            probs = cross_val_predict(default_model(), data.X, vote.labels, cv=5, method="predict_proba")
            per_seed["crowdlab"].append(float((crowdlab(m, probs, random_state=seed).labels == y).mean()))
    out = {"items": int(len(y)), "classes": int(k), "features": data.features, "seeds": seeds,
           "accuracies": list(ACCURACIES), "seconds": time.perf_counter() - t0, "methods": {}}
    base = np.array(per_seed["majority"])
    for method, values in per_seed.items():
        v = np.array(values)
        p = None if method == "majority" or np.allclose(v, base) else float(stats.wilcoxon(v, base).pvalue)
        out["methods"][method] = {"label_accuracy_mean": float(v.mean()), "label_accuracy_per_seed": values,
                                  "vs_majority": float(v.mean() / base.mean()), "p_vs_majority": p}
        console.print(f"{name} {method:12s} label accuracy {v.mean():.4f} (x{v.mean() / base.mean():.4f} of "
                      f"majority){'' if p is None else f', Wilcoxon p = {p:.3g}'}", highlight=False)
    with console.status(f"{name}: the loop with simulated annotators, {len(PLANS)} plans x {seeds} seeds"):
        t0 = time.perf_counter()
        loop = simulate_annotators(data.X, data.y, ACCURACIES, opinions=(1, 3), plan_names=PLANS, seeds=seeds,
                                   batch_size=50, max_money=BUDGET[name], relabel_fraction=relabel_fraction,
                                   n_jobs=-1)
    out["loop"] = {"settings": loop.settings, "ceiling": float(np.mean(loop.ceilings)),
                   "seconds": time.perf_counter() - t0, "plans": loop.summary()}
    for plan, r in out["loop"]["plans"].items():
        console.print(f"{name} {plan:20s} money to 99% {r['money_to_99']} (per seed {r['money_to_99_per_seed']}), "
                      f"training labels {r['label_accuracy']:.4f}, items {r['items_labeled']:.0f}", highlight=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--relabel-fraction", type=float, default=0.4, help="routing's cap per cycle")
    args = parser.parse_args()
    console = Console()
    results = {name: run(name, args.seeds, console, args.relabel_fraction) for name in args.datasets}
    console.print(f"written to {save('annotators', results, peers=['cleanlab', 'krippendorff'])}; README table: "
                  "python benchmarks/readme_tables.py")


if __name__ == "__main__":
    main()
