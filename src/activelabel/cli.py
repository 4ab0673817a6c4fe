"""The ``activelabel`` command line.

Errors the user can fix (bad options, bad data) end with one readable line
on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from activelabel.errors import ActiveLabelError
from activelabel.strategies import STRATEGIES

app = typer.Typer(help="activelabel: the model picks which examples people label next.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()
err = Console(stderr=True)

@app.callback()
def main() -> None:
    """activelabel: the model picks which examples people label next."""


def fail(message: str, code: int = 1) -> None:
    """Print one line on stderr and exit non-zero."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_model(path: str | None):
    """A classifier from an import path (``package.module.Class`` or ``package.module:Class``)."""
    from importlib import import_module

    from activelabel.errors import ModelImportError
    from activelabel.loop.simulate import default_model

    if path is None:
        return default_model()
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    try:
        factory = getattr(import_module(module_name), attr)
        model = factory()
    except (ImportError, AttributeError, ValueError, TypeError) as error:
        raise ModelImportError(f"cannot build model {path!r}: {error}") from None
    if not hasattr(model, "fit"):
        raise ModelImportError(f"{path!r} is not a scikit-learn estimator (it has no fit)")
    return model


def _split_names(values: list[str]) -> list[str]:
    """Accept both ``-s a -s b`` and ``-s a,b``."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@app.command()
def simulate(
    data: Annotated[str, typer.Argument(help="A CSV, Parquet or NPZ file of labeled examples, or 'digits'.")],
    label_column: Annotated[str, typer.Option(help="Column with the labels.")] = "label",
    text_column: Annotated[str | None, typer.Option(help="Column of text (TF-IDF features).")] = None,
    feature_columns: Annotated[str | None, typer.Option(help="Comma-separated feature columns (default: all but the label).")] = None,
    strategies: Annotated[list[str], typer.Option("--strategies", "--strategy", "-s", help="Strategies to compare with random (repeat or comma-separate).")] = ["default"],  # noqa: B006
    model: Annotated[str | None, typer.Option(help="scikit-learn classifier import path (default: scaled logistic regression).")] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per strategy.")] = 10,
    batch_size: Annotated[int, typer.Option(min=1, help="Items labeled per cycle.")] = 20,
    seed_size: Annotated[int, typer.Option(min=2, help="Random seed set size.")] = 20,
    test_size: Annotated[float, typer.Option(help="Held-out test share (0-1) or count.")] = 0.2,
    budget: Annotated[int, typer.Option(min=1, help="Training labels per run.")] = 1000,
    cost_per_label: Annotated[float, typer.Option(min=0, help="Price of one label.")] = 1.0,
    jobs: Annotated[int, typer.Option(help="Parallel processes (-1: every core).")] = -1,
    out: Annotated[Path, typer.Option(help="Folder for report.html, results.json and the plots.")] = Path("activelabel-out"),
) -> None:
    """Simulate active learning on labeled data against random sampling, with an HTML report."""
    from activelabel.data import load_labeled
    from activelabel.loop.simulate import simulate as run_simulation
    from activelabel.report import write_report

    names = _split_names(strategies)
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown:
        fail(f"unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}", code=2)
    size = int(test_size) if test_size >= 1 else test_size
    try:
        columns = _split_names([feature_columns]) if feature_columns else None
        labeled = load_labeled(data, label_column=label_column, text_column=text_column, feature_columns=columns)
        estimator = load_model(model)
        all_names = list(dict.fromkeys([*names, "random"]))
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task(f"simulating {labeled.name}", total=(len(all_names) + 1) * seeds)
            result = run_simulation(
                labeled.X, labeled.y, strategies=names, seeds=seeds, model=estimator, batch_size=batch_size,
                seed_size=seed_size, test_size=size, max_labels=budget, price_per_label=cost_per_label,
                n_jobs=jobs, on_run=lambda name, seed: progress.advance(task))
    except ActiveLabelError as error:
        fail(str(error))
    summary = result.summary()
    summary["data"] = {"source": data, "name": labeled.name, "items": int(len(labeled.y)),
                       "classes": int(len(np.unique(labeled.y))), "features": labeled.features}
    _print_summary(summary)
    paths = write_report(summary, out, title=labeled.name,
                         description=f"{len(labeled.y):,} items, {summary['data']['classes']} classes; "
                                     f"features: {labeled.features}")
    console.print(f"report: {paths['html']}  numbers: {paths['json']}")


def _print_summary(summary: dict) -> None:
    ceiling = summary["ceiling_accuracy"]
    table = Table(title=f"{summary['data']['name']}: full-pool accuracy {ceiling:.4f}; "
                        f"{len(summary['seeds'])} seeds, medians over seeds")
    for col in ("strategy", "AULC", "final acc.", "labels to 95%", "labels to 99%", "saved vs random (99%)",
                "money saved", "p vs random", "plateau stop at"):
        # names and "baseline" stay whole on narrow terminals; headers wrap instead
        table.add_column(col, justify="left" if col == "strategy" else "right", min_width=8,
                         no_wrap=col == "strategy")
    for name, s in summary["strategies"].items():
        plateau = s["stopping"]["plateau"]["labels"]
        table.add_row(
            name, f"{s['aulc_mean']:.4f}", f"{s['final_accuracy']:.3f}",
            "-" if s["labels_to_95"] is None else f"{s['labels_to_95']:.0f}",
            "-" if s["labels_to_99"] is None else f"{s['labels_to_99']:.0f}",
            "baseline" if name == "random" else ("-" if s["savings_vs_random_99"] is None else f"{s['savings_vs_random_99']:.0%}"),
            "-" if s["money_saved_vs_random_99"] is None or name == "random" else f"{s['money_saved_vs_random_99']:,.2f}",
            "-" if s["p_value_vs_random"] is None else f"{s['p_value_vs_random']:.3g}",
            "-" if plateau is None else f"{plateau:.0f}",
        )
    console.print(table)
    curves = {n: s["curve"] for n, s in summary["strategies"].items()}
    acc = Table(title="Test accuracy per cycle (mean over seeds)")
    acc.add_column("labels", justify="right")
    for n in curves:
        acc.add_column(n, justify="right")
    first = next(iter(curves.values()))
    for i, labels in enumerate(first["labels"]):
        acc.add_row(str(labels), *[f"{c['accuracy'][i]:.3f}" if i < len(c["accuracy"]) else "" for c in curves.values()])
    console.print(acc)


if __name__ == "__main__":  # pragma: no cover
    app()
