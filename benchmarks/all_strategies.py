"""Every activelabel strategy against random on scikit-learn's digits, as ``activelabel simulate`` runs it.

``python benchmarks/all_strategies.py`` replays batch 10, seed set 20 and a budget of 300 labels over 5 seeds
(each seed's test split and seed set shared by all strategies) and writes the stamped summary to
``benchmarks/results/all_strategies.json``; ``python benchmarks/readme_tables.py`` puts it in the README.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from stamp import save  # benchmarks/ is on the path when a script runs

from activelabel.data import load_labeled
from activelabel.loop.simulate import simulate

STRATEGIES = ["default", "margin", "entropy", "least_confident", "kcenter", "kmeans", "density", "bald",
              "vote_entropy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=-1)
    args = parser.parse_args()
    data = load_labeled("digits")
    console = Console()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("digits", total=(len(STRATEGIES) + 2) * args.seeds)
        result = simulate(data.X, data.y, strategies=STRATEGIES, seeds=args.seeds, batch_size=10, seed_size=20,
                          max_labels=300, n_jobs=args.jobs, on_run=lambda name, seed: progress.advance(task))
    summary = result.summary()
    summary["data"] = {"name": "digits", "items": int(len(data.y)), "features": data.features}
    console.print(f"written to {save('all_strategies', summary)}; README table: python benchmarks/readme_tables.py")


if __name__ == "__main__":
    main()
