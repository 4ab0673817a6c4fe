"""The ``activelabel`` command line.

Errors the user can fix (bad options, bad data) end with one readable line
on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations


import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from activelabel.errors import ActiveLabelError
from activelabel.models.loading import load_model
from activelabel.strategies import STRATEGIES

app = typer.Typer(help="activelabel: the model picks which examples people label next.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()
err = Console(stderr=True)

def _version(shown: bool) -> None:
    if shown:
        from activelabel import __version__

        console.print(f"activelabel {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """activelabel: the model picks which examples people label next."""


def fail(message: str, code: int = 1) -> None:
    """Print one line on stderr and exit non-zero."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _split_names(values: list[str]) -> list[str]:
    """Accept both ``-s a -s b`` and ``-s a,b``."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _share_or_count(value: float | None) -> float | int | None:
    """``--test-size``: a whole number from 1 up is a count; anything else (a fraction, NaN, 2.5) goes on as given,
    for the code that uses it to accept or refuse in its own words."""
    if value is not None and 1 <= value < 2**53 and value == int(value):  # exact as a float: NaN, inf stay
        return int(value)
    return value


def _accuracies(value: str | None) -> list[float] | None:
    """``--annotators 0.95,0.85,0.65``: one simulated annotator per accuracy in (0, 1]."""
    if value is None:
        return None
    try:
        out = [float(v) for v in _split_names([value])]
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a comma-separated list of accuracies such as 0.95,0.85,0.65")
    if not out or any(not 0 < a <= 1 for a in out):
        raise typer.BadParameter(f"{value!r}: every accuracy must be in (0, 1], e.g. 0.95,0.85,0.65")
    return out


def _opinions(value: str) -> list[int]:
    """``--opinions 1..3`` (a range) or ``1,3`` (a list): opinion counts per item to compare."""
    try:
        if ".." in value:
            low, high = (int(v) for v in value.split("..", 1))
            out = list(range(low, high + 1))
        else:
            out = [int(v) for v in _split_names([value])]
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a range such as 1..3 or a list such as 1,3")
    if ".." in value and not out:
        raise typer.BadParameter(f"{value!r}: a range goes up, e.g. 1..3")
    if not out or min(out) < 1 or max(out) > 10:
        raise typer.BadParameter(f"{value!r}: opinion counts must be between 1 and 10")
    return out


def _not_zero(value: int) -> int:
    if value == 0:
        raise typer.BadParameter("0 processes cannot run anything; give 1 or more, or -1 for every core")
    return value


@app.command()
def simulate(
    data: Annotated[str, typer.Argument(help="A CSV, Parquet or NPZ file of labeled examples, or 'digits'.")],
    label_column: Annotated[str, typer.Option(help="Column with the labels.")] = "label",
    text_column: Annotated[str | None, typer.Option(help="Column of text (TF-IDF features).")] = None,
    feature_columns: Annotated[str | None, typer.Option(help="Comma-separated feature columns (default: all but the label).")] = None,
    strategies: Annotated[list[str], typer.Option("--strategies", "--strategy", "-s", help="Strategies to compare with random (repeat or comma-separate).")] = ["default"],  # noqa: B006
    model: Annotated[str | None, typer.Option(help="scikit-learn classifier import path, or mlp, cnn, mc-dropout, ensemble (PyTorch, extra \\[torch]; default: scaled logistic regression).")] = None,
    seeds: Annotated[int, typer.Option(min=1, max=10_000, help="Seeds per strategy.")] = 10,
    batch_size: Annotated[int, typer.Option(min=1, help="Items labeled per cycle.")] = 20,
    seed_size: Annotated[int, typer.Option(min=2, help="Random seed set size.")] = 20,
    test_size: Annotated[float, typer.Option(help="Held-out test share (0-1) or count.")] = 0.2,
    budget: Annotated[int, typer.Option(min=1, help="Training labels per run.")] = 1000,
    cost_per_label: Annotated[float, typer.Option(min=0, help="Price of one label.")] = 1.0,
    jobs: Annotated[int, typer.Option(callback=_not_zero, help="Parallel processes (-1: every core, -2: all but one).")] = -1,
    out: Annotated[Path, typer.Option(help="Folder for report.html, results.json and the plots.")] = Path("activelabel-out"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON (what results.json holds).")] = False,
    annotators: Annotated[str | None, typer.Option(help="Also simulate noisy annotators of these accuracies, e.g. 0.95,0.85,0.65, and compare opinions per item, aggregation and routing at equal money.")] = None,
    opinions: Annotated[str, typer.Option(help="Opinion counts per item to compare with --annotators: a range 1..3 or a list 1,3.")] = "1..3",
    relabel_fraction: Annotated[float, typer.Option(min=0, max=1, help="Routing: share of each cycle's opinions that may go to labeled items.")] = 0.4,
    dask: Annotated[str | None, typer.Option("--dask", help="Run the seeds on a Dask cluster: local:N (N worker processes here) or a scheduler address such as tcp://host:8786 (extra \\[dask]).")] = None,
) -> None:
    """Simulate active learning on labeled data against random sampling, with an HTML report."""
    from activelabel.data import load_labeled
    from activelabel.loop.simulate import simulate as run_simulation
    from activelabel.report import write_report

    names = _split_names(strategies)
    try:
        accuracies, counts = _accuracies(annotators), _opinions(opinions)
    except typer.BadParameter as error:
        fail(f"activelabel simulate: {error}", code=2)
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown:
        fail(f"unknown strategy {unknown[0]!r}; choose from {', '.join(STRATEGIES)}", code=2)
    size = _share_or_count(test_size)
    try:
        columns = _split_names([feature_columns]) if feature_columns else None
        labeled = load_labeled(data, label_column=label_column, text_column=text_column, feature_columns=columns)
        estimator = load_model(model)
        if accuracies is not None:  # before minutes of strategy runs, not after them
            from activelabel.loop.crowd import check_settings

            try:
                check_settings(accuracies, counts, len(np.unique(labeled.y)), batch_size=batch_size,
                               seed_size=seed_size, max_money=budget * cost_per_label,
                               price_per_label=cost_per_label, relabel_fraction=relabel_fraction)
            except ActiveLabelError as error:
                fail(f"activelabel simulate: --annotators: {error}", code=2)
        all_names = list(dict.fromkeys([*names, "random"]))
        if dask:
            from activelabel.scale.cluster import joblib_on

            cluster, jobs = joblib_on(dask), -1  # every worker of the cluster
        else:
            cluster = nullcontext()
        with cluster, Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task(f"simulating {labeled.name}", total=(len(all_names) + 1) * seeds)
            result = run_simulation(
                labeled.X, labeled.y, strategies=names, seeds=seeds, model=estimator, batch_size=batch_size,
                seed_size=seed_size, test_size=size, max_labels=budget, price_per_label=cost_per_label,
                n_jobs=jobs, on_run=lambda name, seed: progress.advance(task))
            crowd = None
            if accuracies is not None:
                from activelabel.loop.crowd import plans, simulate_annotators

                todo = plans(counts)
                task = progress.add_task("noisy annotators", total=(len(todo) + 1) * seeds)
                crowd = simulate_annotators(
                    labeled.X, labeled.y, accuracies, opinions=counts, seeds=seeds, model=estimator,
                    strategy=names[0], batch_size=batch_size, seed_size=seed_size, test_size=size,
                    max_money=budget * cost_per_label, price_per_label=cost_per_label,
                    relabel_fraction=relabel_fraction, n_jobs=jobs, on_run=lambda name, seed: progress.advance(task))
    except ActiveLabelError as error:
        fail(str(error))
    summary = result.summary()
    if crowd is not None:
        summary["annotators"] = crowd.summary()
        summary["annotator_settings"] = dict(crowd.settings, ceiling=float(np.mean(crowd.ceilings)))
    summary["settings"]["model_name"] = model or "default"  # the name given (mlp, ensemble, an import path)
    summary["data"] = {"source": data, "name": labeled.name, "items": int(len(labeled.y)),
                       "classes": int(len(np.unique(labeled.y))), "features": labeled.features}
    if not as_json:
        _print_summary(summary)
    paths = write_report(summary, out, title=labeled.name,
                         description=f"{len(labeled.y):,} items, {summary['data']['classes']} classes; "
                                     f"features: {labeled.features}")
    if as_json:  # stdout holds the JSON alone, for jq and scripts; where the files went goes to stderr
        print(paths["json"].read_text())
        err.print(f"report: {paths['html']}", highlight=False, soft_wrap=True)
    else:
        console.print(f"report: {paths['html']}  numbers: {paths['json']}", highlight=False, soft_wrap=True)


def _print_summary(summary: dict) -> None:
    """The summary and the accuracy per cycle: Rich tables on a terminal, plain text with every column
    whatever the width otherwise (a file, a pipe, a CI log)."""
    from activelabel.report import SUMMARY_COLUMNS, summary_rows

    ceiling = summary["ceiling_accuracy"]
    title = (f"{summary['data']['name']}: full-pool accuracy {ceiling:.4f}; "
             f"{len(summary['seeds'])} seeds, medians over seeds")
    _print_table(title, SUMMARY_COLUMNS, summary_rows(summary))
    curves = {n: s["curve"] for n, s in summary["strategies"].items()}
    first = next(iter(curves.values()))
    rows = [[str(labels), *[f"{c['accuracy'][i]:.3f}" if i < len(c["accuracy"]) else "" for c in curves.values()]]
            for i, labels in enumerate(first["labels"])]
    _print_table("Test accuracy per cycle (mean over seeds)", ["labels", *curves], rows)
    if summary.get("annotators"):
        from activelabel.report import ANNOTATOR_COLUMNS, annotator_rows

        st = summary["annotator_settings"]
        _print_table(f"Noisy annotators ({', '.join(f'{a:g}' for a in st['accuracies'])}) at equal money: "
                     f"99% of the true-label ceiling is {0.99 * st['ceiling']:.4f}", ANNOTATOR_COLUMNS,
                     annotator_rows(summary))


def _print_table(title: str, columns, rows: list[list[str]]) -> None:
    if not console.is_terminal:
        import pandas as pd

        console.print(title, highlight=False, soft_wrap=True)
        console.print(pd.DataFrame(rows, columns=list(columns)).to_string(index=False), highlight=False,
                      soft_wrap=True)
        return
    table = Table(title=title)
    for col in columns:  # names stay whole on narrow terminals; headers wrap instead
        table.add_column(col, justify="left" if col in ("strategy",) else "right", min_width=6,
                         no_wrap=col == "strategy")
    for row in rows:
        table.add_row(*row)
    console.print(table)


# ---------------------------------------------------------------- labeling projects
ProjectDir = Annotated[Path, typer.Argument(help="The project folder.")]


@contextmanager
def _project(folder: Path, message: str = "working"):
    """Open the project, show a spinner, and turn every activelabel error into one line and exit 1."""
    from activelabel.project import Project

    try:
        with Project.open(folder) as project, console.status(message) as status:
            yield project, status
    except ActiveLabelError as error:
        fail(str(error))


@app.command()
def init(
    folder: ProjectDir,
    labels: Annotated[str, typer.Option(help="Comma-separated label names, e.g. spam,ham.")],
    db: Annotated[str | None, typer.Option(help="Database URL (default: a SQLite file in the folder), e.g. postgresql+psycopg://user@host/db.")] = None,
    strategy: Annotated[str, typer.Option(help="Query strategy.")] = "default",
    batch_size: Annotated[int, typer.Option(min=1, help="Items per cycle's batch.")] = 100,
    price_per_label: Annotated[float, typer.Option(min=0, help="Price of one answer.")] = 0.0,
    budget: Annotated[float, typer.Option(min=0, help="Money for labels (0: none).")] = 0.0,
) -> None:
    """Create a labeling project: a config file and a database (SQLite in the folder by default)."""
    from activelabel.project import init_project
    from activelabel.store.db import shown_url

    try:
        project = init_project(folder, _split_names([labels]), db=db, strategy=strategy, batch_size=batch_size,
                               price_per_label=price_per_label, budget=budget)
    except ActiveLabelError as error:
        fail(str(error))
    project.close()
    console.print(f"created project in {folder} (labels: {', '.join(project.config.labels)}; "
                  f"database: {'SQLite file' if not project.config.db else 'PostgreSQL' if 'postgres' in project.config.db else shown_url(project.config.db)})")


@app.command("import")
def import_(
    folder: ProjectDir,
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file of items.")],
    text_column: Annotated[str | None, typer.Option(help="Column of text.")] = None,
    image_column: Annotated[str | None, typer.Option(help="Column of image paths (PNG/JPEG, relative to the file).")] = None,
    feature_columns: Annotated[str | None, typer.Option(help="Comma-separated table columns.")] = None,
    id_column: Annotated[str | None, typer.Option(help="Column of item ids (default: a hash of the content).")] = None,
    label_column: Annotated[str | None, typer.Option(help="Column of labels already known (empty: unknown).")] = None,
    embedding_column: Annotated[str | None, typer.Option(help="Column of precomputed embedding vectors to use as features.")] = None,
    test_size: Annotated[float | None, typer.Option(help="Held-out test items: a fraction (<1) or a count; default the smaller of 500 and 10%.")] = None,
    features: Annotated[str | None, typer.Option(help="Text features: tfidf (default) or embeddings (needs the \\[embeddings] extra).")] = None,
    image_model: Annotated[Path | None, typer.Option(help="Images: embeddings from this TorchScript model file (needs the \\[torch] extra) instead of 32x32 pixels.")] = None,
) -> None:
    """Import items; re-importing the same file adds nothing. All or nothing."""
    size = _share_or_count(test_size)
    if image_model is not None:
        if features:
            fail("activelabel import: give --features or --image-model, not both", code=2)
        if not image_model.is_file():
            fail(f"activelabel import: --image-model {image_model}: no such file", code=2)
        features = f"torchscript:{image_model.resolve()}"
    with _project(folder, f"importing {file}") as (project, status):
        counts = project.import_items(
            file, text_column=text_column, image_column=image_column,
            feature_columns=_split_names([feature_columns]) if feature_columns else None, id_column=id_column,
            label_column=label_column, embedding_column=embedding_column, test_size=size, featurizer=features,
            progress=lambda rows: status.update(f"importing {file}: {rows:,} rows read and checked"))
    console.print(f"imported {counts['new']:,} new items ({counts['test']:,} held out for testing), "
                  f"{counts['existing']:,} already there, {counts['labels']:,} known labels"
                  + (f", {counts['repaired']:,} missing vectors repaired" if counts.get("repaired") else ""))


@app.command("import-labels")
def import_labels(
    folder: ProjectDir,
    file: Annotated[Path, typer.Argument(help="CSV or JSONL of id,label; a Label Studio JSON export; Prodigy JSONL.")],
    id_column: Annotated[str, typer.Option(help="Column of item ids.")] = "id",
    label_column: Annotated[str, typer.Option(help="Column of labels.")] = "label",
    annotator_column: Annotated[str | None, typer.Option(help="Column naming who answered.")] = None,
    seconds_column: Annotated[str | None, typer.Option(help="Column of seconds spent.")] = None,
) -> None:
    """Store answers from a file. All or nothing."""
    with _project(folder, f"importing labels from {file}") as (project, _):
        counts = project.import_labels(file, id_column=id_column, label_column=label_column,
                                       annotator_column=annotator_column, seconds_column=seconds_column)
    already = counts.get("already", 0)
    if counts["labels"] == 0 and counts["skips"] == 0 and already > 0:
        console.print(f"nothing new: {already:,} rows already stored")
        return
    extra = f", {counts['ignored']:,} rows without a label ignored" if counts["ignored"] else ""
    extra += f", {already:,} rows already stored (not stored again)" if already else ""
    console.print(f"stored {counts['labels']:,} labels and {counts['skips']:,} skips{extra}")


@app.command()
def train(
    folder: ProjectDir,
    force: Annotated[bool, typer.Option("--force", help="Train even when no answer came in since the last cycle.")] = False,
) -> None:
    """Run a cycle now: fit, evaluate on the labeled test items, select the next batch."""
    with _project(folder, "training") as (project, status):
        result = project.train(progress=lambda stage: status.update(f"training: {stage}"), force=force)
    if result.get("nothing_new"):
        console.print(result.get("reason", "nothing new to train on"), highlight=False)
        return
    acc = result["accuracy"]
    lo, hi = result["accuracy_ci"]
    metric = ("no labeled test items: label some with activelabel query --test" if acc is None
              else f"test accuracy {acc:.3f} (95% CI {lo:.3f}-{hi:.3f}, {result['test_labels']} test labels)")
    console.print(f"cycle {result['cycle']}: {result['labels_used']:,} training labels; {metric}; "
                  f"next batch {result['batch']} items"
                  + (f", {result['routed']} of them for another opinion" if result.get("routed") else "")
                  + f" ({result['seconds']:.1f} s)")


@app.command()
def query(
    folder: ProjectDir,
    n: Annotated[int, typer.Option("-n", min=1, help="Items to issue.")] = 100,
    out: Annotated[Path, typer.Option(help="JSONL file to write.")] = Path("batch.jsonl"),
    test: Annotated[bool, typer.Option("--test", help="Issue unlabeled held-out test items instead.")] = False,
    reissue: Annotated[bool, typer.Option("--reissue", help="Also issue items already out (issued and unanswered, "
                                                            "or open in the web app).")] = False,
) -> None:
    """Issue the next batch for an outside labeling service: write the file, then record it as issued."""
    with _project(folder, "selecting") as (project, _):
        batch = project.query(n, out=out, test=test, reissue=reissue)
    short = f"; only {len(batch):,} of the {n:,} asked for were left to issue" if 0 < len(batch) < n else ""
    console.print(f"wrote {len(batch):,} items to {out} (strategy: "
                  f"{batch['strategy'].iloc[0] if len(batch) else 'none left'}){short}", highlight=False)


def _shown_path(path: str | None) -> str:
    """A recorded file as the user would type it here: relative to the current folder when inside it."""
    if not path:
        return ""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _when(value) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M")


@app.command()
def batches(
    folder: ProjectDir,
    release: Annotated[int | None, typer.Option("--release", metavar="BATCH",
                                                help="Return this batch's unanswered items to the pool.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the batches issued with query (answered, unanswered, released), or release one."""
    import json

    with _project(folder, "reading") as (project, _):
        if release is not None:
            done = project.release_batch(release)
        else:
            rows = project.batches()
    if release is not None:
        if as_json:
            print(json.dumps(done, default=str))
        elif done["already"]:
            console.print(f"batch {release} was already released ({_when(done['released_at'])})", highlight=False)
        else:
            console.print(f"released batch {release}: {done['unanswered']:,} unanswered items are back in the pool "
                          f"({done['answered']:,} answered)", highlight=False)
        return
    if as_json:
        print(json.dumps(rows, default=str))
        return
    if not rows:
        console.print("no batches issued yet (activelabel query issues one)")
        return
    from rich import box

    table = Table(title=f"{folder}: issued batches", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1), collapse_padding=True)
    for col in ("batch", "issued", "strategy", "size", "answered", "unanswered", "released", "file"):
        # the file and the times fold onto more lines on a narrow terminal; the other columns stay whole
        table.add_column(col, justify="right" if col in ("batch", "size", "answered", "unanswered") else "left",
                         overflow="fold", no_wrap=col not in ("issued", "released", "file"))
    for r in rows:
        table.add_row(str(r["id"]), _when(r["created_at"]), r["strategy"], f"{r['size']:,}", f"{r['answered']:,}",
                      f"{r['unanswered']:,}", _when(r["released_at"]) or "no", _shown_path(r["file"]))
    console.print(table)


@app.command()
def status(folder: ProjectDir,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Items, labels, cycles, the latest metrics with intervals, money, and stopping advice."""
    import json

    with _project(folder, "reading") as (project, _):
        st = project.status()
    if as_json:
        print(json.dumps(st, default=str))
        return
    table = Table(title=f"{folder}", show_header=False)
    retired = st.get("retired", 0)
    table.add_row("items", f"{st['items']:,} ({st['pool']:,} pool, {st['test']:,} test"
                           + (f", {retired:,} retired)" if retired else ")"))
    table.add_row("labeled", f"{st['labeled']:,} pool, {st['test_labeled']:,} test")
    table.add_row("cycles", str(st["cycles"]))
    if st["latest"] and st["latest"]["accuracy"] is not None:
        lt = st["latest"]
        table.add_row("test accuracy", f"{lt['accuracy']:.3f} (95% CI {lt['accuracy_ci'][0]:.3f}-"
                                       f"{lt['accuracy_ci'][1]:.3f}; {lt['test_labels']} test labels)")
        table.add_row("macro F1", f"{lt['macro_f1']:.3f} (95% CI {lt['macro_f1_ci'][0]:.3f}-{lt['macro_f1_ci'][1]:.3f})")
    money = f"{st['money_spent']:,.2f}" + (f" of {st['budget']:,.2f}" if st["budget"] else "")
    table.add_row("money spent", money)
    table.add_row("advice", st["advice"])
    console.print(table)


@app.command()
def agreement(folder: ProjectDir,
              as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False) -> None:
    """How far the annotators agree: overall, per person, and which labels they confuse with each other."""
    import json

    with _project(folder, "reading") as (project, _):
        report = project.agreement()
    if as_json:
        print(json.dumps(report))
        return

    def shown(x) -> str:
        return "-" if x is None else f"{x:.3f}"

    console.print(f"{report['items_labeled']:,} items labeled by named people, "
                  f"{report['items_with_several_opinions']:,} with two or more opinions; "
                  f"Fleiss' kappa {shown(report['fleiss_kappa'])}, Krippendorff's alpha "
                  f"{shown(report['krippendorff_alpha'])}; consensus by {report['consensus_method']}",
                  highlight=False, soft_wrap=True)
    people = [a["name"] for a in report["annotators"]]
    table = Table(title="per annotator (kappa: Cohen's, on the items both labeled)")
    for col in ("annotator", "labels", "shared items", "agrees with consensus", *people):
        table.add_column(col, justify="left" if col == "annotator" else "right")
    for a in report["annotators"]:
        table.add_row(a["name"], f"{a['labels']:,}", f"{a['shared_items']:,}", shown(a["agreement_with_consensus"]),
                      *("1" if other == a["name"] else shown(a["kappa"][other]) for other in people))
    console.print(table)
    pairs = Table(title="labels given to one item by two people (counts)")
    pairs.add_column("")
    for label in report["labels"]:
        pairs.add_column(label, justify="right")
    for label, row in report["label_pairs"].items():
        pairs.add_row(label, *(f"{row[other]:,}" for other in report["labels"]))
    console.print(pairs)


@app.command()
def export(
    folder: ProjectDir,
    out: Annotated[Path, typer.Argument(help="File to write (.csv, .jsonl, .parquet, .json for Label Studio).")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv, jsonl, parquet, labelstudio, prodigy, or answers (every answer event, for auditing: .csv, .jsonl or .parquet).")] = None,
) -> None:
    """Export every item with its label and the latest model's prediction."""
    with _project(folder, f"exporting to {out}") as (project, _):
        n = project.export(out, fmt)
    console.print(f"wrote {n:,} items to {out}")


items_app = typer.Typer(help="Retire bad items (duplicates, broken, off-topic) or restore them.", no_args_is_help=True)
app.add_typer(items_app, name="items")
ItemIds = Annotated[list[str] | None, typer.Argument(help="Item ids (as in the import file).", show_default=False)]
IdsFile = Annotated[Path | None, typer.Option("--file", help="A file of item ids: the id column of a CSV, JSONL "
                                                            "or Parquet file, or one id per line.")]


def _item_ids(ids: list[str] | None, file: Path | None) -> list[str]:
    from activelabel.project.curation import read_ids

    wanted = list(ids or [])
    if file is not None:
        try:
            wanted += read_ids(file)
        except ActiveLabelError as error:
            fail(str(error))
    if not wanted:
        fail("give item ids, or --file with one id per line", code=2)
    return wanted


@items_app.command("remove")
def items_remove(
    folder: ProjectDir,
    ids: ItemIds = None,
    file: IdsFile = None,
    reason: Annotated[str | None, typer.Option(help="Why, kept with each item.")] = None,
) -> None:
    """Retire items: left out of selection, training, the queue and exports; their history stays."""
    wanted = _item_ids(ids, file)
    with _project(folder, "retiring") as (project, _):
        done = project.retire_items(wanted, reason=reason)
    extra = f" ({done['already']:,} were retired already)" if done["already"] else ""
    console.print(f"retired {done['retired']:,} items{extra}", highlight=False)


@items_app.command("restore")
def items_restore(folder: ProjectDir, ids: ItemIds = None, file: IdsFile = None) -> None:
    """Bring retired items back into the project."""
    wanted = _item_ids(ids, file)
    with _project(folder, "restoring") as (project, _):
        done = project.restore_items(wanted)
    extra = f" ({done['not_retired']:,} were not retired)" if done["not_retired"] else ""
    console.print(f"restored {done['restored']:,} items{extra}", highlight=False)


annotator_app = typer.Typer(help="Annotators and their tokens.", no_args_is_help=True)
app.add_typer(annotator_app, name="annotator")


AnnotatorName = Annotated[str, typer.Argument(help="The annotator's name.")]


def _say_token(message: str, token: str) -> None:
    console.print(f"{message}; token (shown once, keep it safe):", highlight=False)
    print(token)


@annotator_app.command("add")
def annotator_add(
    folder: ProjectDir,
    name: AnnotatorName,
    role: Annotated[str, typer.Option(help="annotator or admin.")] = "annotator",
) -> None:
    """Add an annotator (or bring back a revoked one) and print their token (shown once; only its hash is stored)."""
    from activelabel.store import annotators

    with _project(folder, "adding") as (project, _), project.store.session() as s:
        token = annotators.add(s, name, role)
    _say_token(f"added {role} {name!r}", token)


@annotator_app.command("list")
def annotator_list(folder: ProjectDir) -> None:
    """Everyone who can log in: role, answers, open sessions, last seen, revoked or active."""
    from datetime import UTC, datetime

    from activelabel.store import annotators

    with _project(folder, "reading") as (project, _), project.store.session(readonly=True) as s:
        people = annotators.listing(s, datetime.now(UTC))
    table = Table("name", "role", "answers", "sessions", "last seen (UTC)", "status")
    for p in people:
        table.add_row(p["name"], p["role"], f"{p['answers']:,}", str(p["sessions"]),
                      f"{p['last_seen']:%Y-%m-%d %H:%M}" if p["last_seen"] else "",
                      f"revoked {p['revoked']:%Y-%m-%d}" if p["revoked"] else "active")
    console.print(table if people else "no annotators yet: add one with 'activelabel annotator add'")


@annotator_app.command("revoke")
def annotator_revoke(folder: ProjectDir, name: AnnotatorName) -> None:
    """Revoke someone: their token and sessions stop working, their open items go back; their answers stay."""
    from datetime import UTC, datetime

    from activelabel.store import annotators

    with _project(folder, "revoking") as (project, _), project.store.session() as s:
        done = annotators.revoke(s, name, datetime.now(UTC))
    console.print(f"revoked {name!r}: {done['sessions_ended']} sessions ended, {done['items_released']} open items "
                  "back in the queue", highlight=False)


@annotator_app.command("rotate")
def annotator_rotate(folder: ProjectDir, name: AnnotatorName) -> None:
    """Give someone a new token; the old one and its sessions stop working."""
    from datetime import UTC, datetime

    from activelabel.store import annotators

    with _project(folder, "rotating") as (project, _), project.store.session() as s:
        token = annotators.rotate(s, name, datetime.now(UTC))
    _say_token(f"new token for {name!r}", token)


@annotator_app.command("role")
def annotator_role(
    folder: ProjectDir,
    name: AnnotatorName,
    role: Annotated[str, typer.Argument(help="annotator or admin.")],
) -> None:
    """Make someone an annotator or an admin."""
    from activelabel.store import annotators

    with _project(folder, "changing") as (project, _), project.store.session() as s:
        before = annotators.set_role(s, name, role)
    console.print(f"{name!r} was {before}, is now {role}", highlight=False)


def _check_address(host: str, port: int) -> None:
    """Fail in one line, before anything is taken or said, when ``host:port`` cannot be listened on."""
    import socket

    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError) as error:
        fail(f"cannot serve on {host}: {getattr(error, 'strerror', None) or error}")
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            fail(f"cannot serve on {host}:{port}: {error.strerror or error}")


@app.command()
def serve(
    folder: ProjectDir,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM): serve HTTPS.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    access_log: Annotated[bool, typer.Option(help="One line per request on stderr (no tokens or cookies).")] = True,
) -> None:
    """Run the labeling app (annotators label in the browser; the model retrains in the background)."""
    from activelabel.server.app import create_app, run

    if bool(ssl_certfile) != bool(ssl_keyfile):
        fail("--ssl-certfile and --ssl-keyfile go together: give both, or neither")
    for path in (ssl_certfile, ssl_keyfile):
        if path is not None and not path.is_file():
            fail(f"{path}: no such file")
    scheme = "https" if ssl_certfile else "http"
    _check_address(host, port)
    try:
        application = create_app(folder, address=f"{scheme}://{host}:{port}/")
    except ActiveLabelError as error:
        fail(str(error))
    console.print(f"activelabel: serving {folder} on {scheme}://{host}:{port}/ (log in with a token from "
                  f"'activelabel annotator add')", soft_wrap=True, highlight=False)
    run(application, host, port, ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None, access_log=access_log,
        say=lambda text: console.print(f"[yellow]{text}", highlight=False, soft_wrap=True))


@app.command()
def demo(
    folder: Annotated[Path, typer.Argument(help="Where to put the demo project.")] = Path("activelabel-demo"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=1, max=65535)] = 8000,
) -> None:
    """Build a demo project from real SMS messages (once) and start the labeling app on it."""
    from activelabel.demo import build_demo
    from activelabel.server.app import create_app, run

    _check_address(host, port)
    try:
        with console.status("building the demo project") as status:
            tokens = build_demo(folder, progress=lambda stage: status.update(f"demo: {stage}"))
        application = create_app(folder, address=f"http://{host}:{port}/")
    except ActiveLabelError as error:
        fail(str(error))
    console.print(f"activelabel demo: open http://{host}:{port}/ and log in with a token")
    console.print(f"  annotator token: {tokens['annotator']}")
    console.print(f"  admin token:     {tokens['admin']}")
    console.print("Press Ctrl+C to stop; the project stays in "
                  f"{folder} (run again to continue, or 'activelabel status {folder}').")
    run(application, host, port)


def entry(args: list[str] | None = None) -> None:
    """The console script: run the command line, with usage errors in one line.

    Typer draws a usage error (``--port -1``, ``-n nan``, an unknown option) as a
    boxed panel of five lines; teams grep logs and scripts read stderr, so it
    becomes one line naming the command and the problem, exit code 2 as before.
    """
    # Typer vendors Click privately; its public BadParameter leads to Click's base classes either way.
    usage_error, click_error = typer.BadParameter.__mro__[1:3]
    try:
        code = app(args=args, prog_name="activelabel", standalone_mode=False)
    except click_error as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare command group: its help, as Click prints it
            error.show()
            sys.exit(error.exit_code)
        where = getattr(error, "ctx", None)
        command = f"{where.command_path}: " if where is not None else ""
        hint = f" (see '{where.command_path} --help')" if isinstance(error, usage_error) and where else ""
        err.print(f"[bold red]error:[/] {command}{error.format_message()}{hint}", highlight=False,
                  soft_wrap=True, markup=True)
        sys.exit(error.exit_code)
    except typer.Abort:
        err.print("aborted", highlight=False)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    entry()
