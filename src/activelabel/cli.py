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

BUILTIN_DATA = ("digits",)


@app.callback()
def main() -> None:
    """activelabel: the model picks which examples people label next."""


def fail(message: str, code: int = 1) -> None:
    """Print one line on stderr and exit non-zero."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_builtin(name: str):
    """Features and labels of a built-in data set."""
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return X.astype(np.float64), y
    fail(f"unknown data set {name!r}; built-in data sets: {', '.join(BUILTIN_DATA)}", code=2)


@app.command()
def simulate(
    data: Annotated[str, typer.Argument(help="Built-in data set: digits.")],
    strategy: Annotated[list[str], typer.Option("--strategy", "-s", help="Strategy to compare with random (repeatable).")] = ["default"],  # noqa: B006
    seeds: Annotated[int, typer.Option(min=1, help="Seeds per strategy.")] = 3,
    batch_size: Annotated[int, typer.Option(min=1, help="Items labeled per cycle.")] = 10,
    seed_size: Annotated[int, typer.Option(min=2, help="Random seed set size.")] = 20,
    test_size: Annotated[float, typer.Option(help="Held-out test share (0-1) or count.")] = 0.2,
    budget: Annotated[int, typer.Option(min=1, help="Training labels per run.")] = 300,
    cost_per_label: Annotated[float, typer.Option(min=0, help="Price of one label.")] = 1.0,
    out: Annotated[Path, typer.Option(help="Folder for the learning-curve plot.")] = Path("activelabel-out"),
) -> None:
    """Simulate active learning on labeled data against random sampling."""
    from activelabel.loop.simulate import simulate as run_simulation

    unknown = [s for s in strategy if s not in STRATEGIES]
    if unknown:
        fail(f"unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}", code=2)
    X, y = load_builtin(data)
    names = list(dict.fromkeys([*strategy, "random"]))
    size = int(test_size) if test_size >= 1 else test_size
    expected = names.__len__() * seeds * (budget // batch_size + 1)
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("simulating", total=expected)

            def tick(name, seed, record):
                progress.update(task, advance=1, description=f"{name} seed {seed} cycle {record.cycle}")

            result = run_simulation(X, y, strategies=strategy, seeds=seeds, batch_size=batch_size,
                                    seed_size=seed_size, test_size=size, max_labels=budget,
                                    price_per_label=cost_per_label, on_cycle=tick)
    except ActiveLabelError as error:
        fail(str(error))
    _print_curves(result, names)
    _print_savings(result, names, cost_per_label)
    path = _plot(result, names, out, title=f"{data}: {seeds} seeds, batch {batch_size}")
    console.print(f"learning curves: {path}")


def _print_curves(result, names) -> None:
    curves = {n: result.curve(n) for n in names}
    table = Table(title="Test accuracy per cycle (mean over seeds, 95% interval)")
    table.add_column("cycle", justify="right")
    table.add_column("labels", justify="right")
    for n in names:
        table.add_column(n, justify="right")
    base = curves[names[0]]
    for i, labels in enumerate(base.labels):
        cells = [f"{c.mean[i]:.3f} [{c.low[i]:.3f}, {c.high[i]:.3f}]" if i < len(c.mean) else "" for c in curves.values()]
        table.add_row(str(i), str(labels), *cells)
    console.print(table)


def _print_savings(result, names, price) -> None:
    base = result.curve("random")
    target = float(base.mean[-1])
    table = Table(title=f"Labels to reach random's final accuracy ({target:.3f} at {base.labels[-1]} labels)")
    for col in ("strategy", "AULC", "labels needed", "labels saved", "money saved"):
        table.add_column(col, justify="right" if col != "strategy" else "left")
    for n in names:
        aulc = result.aulc(n)
        needed, saved = result.labels_saved(n)
        if n == "random":
            row = [str(base.labels[-1]), "baseline", "-"]
        elif needed is None:
            row = ["not reached", "-", "-"]
        else:
            n_saved = int(base.labels[-1]) - needed
            row = [str(needed), f"{n_saved} ({saved:.0%})", f"{n_saved * price:,.2f}"]
        table.add_row(n, f"{aulc.mean():.4f}", *row)
    console.print(table)


def _plot(result, names, out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for n in names:
        c = result.curve(n)
        ax.plot(c.labels, c.mean, label=n, linestyle="--" if n == "random" else "-")
        ax.fill_between(c.labels, c.low, c.high, alpha=0.2)
    ax.set_xlabel("training labels")
    ax.set_ylabel("test accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / "learning_curve.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":  # pragma: no cover
    app()
