"""The simulation report: ``results.json``, PNG plots and one self-contained HTML page.

The HTML embeds its plots as base64 PNG and loads nothing from the
network, so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

__all__ = ["write_report"]


def _fmt(value, spec: str = ".3f", none: str = "not reached") -> str:
    if value is None:
        return none
    return format(value, spec)


def _save(fig, paths: dict[str, Path], out: Path, name: str) -> None:
    """Lay out, write ``out/<name>.png`` into ``paths`` and free the figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    paths[name] = out / f"{name}.png"
    fig.savefig(paths[name], dpi=110)
    plt.close(fig)


def _plots(summary: dict, out: Path, title: str) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies = summary["strategies"]
    paths = {}

    fig, ax = plt.subplots(figsize=(8, 5))
    palette = plt.get_cmap("tab20").colors  # 20 distinct colours: peers and ours never share one
    for i, (name, s) in enumerate(strategies.items()):
        c = s["curve"]
        color = "black" if name == "random" else palette[i % len(palette)]
        ax.plot(c["labels"], c["accuracy"], label=name, linestyle="--" if name == "random" else "-",
                color=color, linewidth=2.4 if name in ("default", "random") else 1.2)
        ax.fill_between(c["labels"], c["low"], c["high"], alpha=0.12, color=color)
    ceiling = summary["ceiling_accuracy"]
    ax.axhline(ceiling, color="grey", linewidth=0.8)
    ax.axhline(0.99 * ceiling, color="grey", linewidth=0.8, linestyle=":")
    ax.text(ax.get_xlim()[0], ceiling, " full pool", va="bottom", fontsize=8, color="grey")
    ax.text(ax.get_xlim()[0], 0.99 * ceiling, " 99% of full pool", va="top", fontsize=8, color="grey")
    ax.set(xlabel="training labels", ylabel="test accuracy", title=f"{title}: learning curves (95% band)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, paths, out, "learning_curves")

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(strategies) + 1.5))
    names = list(strategies)
    for i, name in enumerate(names):
        vals = strategies[name]["aulc_per_seed"]
        ax.scatter(vals, np.full(len(vals), i), alpha=0.6, s=18)
        ax.plot([np.mean(vals)], [i], marker="|", markersize=18, color="black")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="normalized AULC (per seed; bar = mean)", title=f"{title}: area under the learning curve")
    ax.grid(alpha=0.3, axis="x")
    _save(fig, paths, out, "aulc")

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(strategies) + 1.5))
    budget = summary["settings"]["max_labels"]
    vals = [strategies[n]["labels_to_99"] for n in names]
    bars = ax.barh(range(len(names)), [budget if v is None else v for v in vals],
                   color=["lightgrey" if v is None else ("black" if n == "random" else "C0")
                          for n, v in zip(names, vals)])
    for bar, v in zip(bars, vals):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                " not reached" if v is None else f" {v:.0f}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="training labels (median over seeds)", title=f"{title}: labels to reach 99% of full-pool accuracy")
    _save(fig, paths, out, "labels_to_99")

    if summary.get("annotators"):
        fig, ax = plt.subplots(figsize=(8, 5))
        for i, (plan, r) in enumerate(summary["annotators"].items()):
            c = r["curve"]
            if not c["money"]:  # failed on every seed
                continue
            ax.plot(c["money"], c["accuracy"], label=plan, color=palette[i % len(palette)],
                    linewidth=2.4 if plan.startswith("routing") or plan == "1x_majority" else 1.2,
                    linestyle="--" if plan == "1x_majority" else "-")
        ceiling = summary["annotator_settings"]["ceiling"]
        ax.axhline(0.99 * ceiling, color="grey", linewidth=0.8, linestyle=":")
        ax.text(ax.get_xlim()[0], 0.99 * ceiling, " 99% of the true-label ceiling", va="top", fontsize=8,
                color="grey")
        ax.set(xlabel="money spent on opinions", ylabel="test accuracy (gold labels)",
               title=f"{title}: noisy annotators, at equal money (mean over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        _save(fig, paths, out, "annotators")
    return paths


ANNOTATOR_COLUMNS = ("plan", "training-label accuracy", "AULC (money)", "money to 99%", "items labeled",
                     "final acc.", "p AULC vs 1x", "p label acc. vs 1x")


def annotator_rows(summary: dict) -> list[list[str]]:
    """One row per annotator plan (columns :data:`ANNOTATOR_COLUMNS`), for the command line and the report."""
    return [[plan + (f" (failed on {len(r['failed_seeds'])} seeds)" if r.get("failed_seeds") else ""),
             _fmt(r["label_accuracy"], ".4f", "-"), _fmt(r["aulc_mean"], ".4f", "-"),
             _fmt(r["money_to_99"], ",.0f", "-"), _fmt(r["items_labeled"], ",.0f", "-"),
             _fmt(r["final_accuracy"], ".3f", "-"), _fmt(r["p_aulc_vs_1x"], ".3g", "-"),
             _fmt(r["p_label_accuracy_vs_1x"], ".3g", "-")]
            for plan, r in summary.get("annotators", {}).items()]


SUMMARY_COLUMNS = ("strategy", "AULC", "final acc.", "labels to 95%", "labels to 99%", "saved vs random (99%)",
                   "money saved (99%)", "p vs random", "plateau stop at", "stabilizing stop at")


def summary_rows(summary: dict) -> list[list[str]]:
    """The summary's table, one row of text cells per strategy (columns :data:`SUMMARY_COLUMNS`): what the
    command line, the HTML report and the benchmarks all show."""
    rows = []
    for name, s in summary["strategies"].items():
        stop = s["stopping"]
        rows.append([
            name, f"{s['aulc_mean']:.4f}", f"{s['final_accuracy']:.3f}", _fmt(s["labels_to_95"], ".0f", "-"),
            _fmt(s["labels_to_99"], ".0f", "-"),
            "baseline" if name == "random" else _fmt(s["savings_vs_random_99"], ".0%", "-"),
            "-" if name == "random" else _fmt(s["money_saved_vs_random_99"], ",.2f", "-"),
            _fmt(s["p_value_vs_random"], ".3g", "-"),
            _fmt(stop["plateau"]["labels"], ".0f", "-"), _fmt(stop["stabilizing_predictions"]["labels"], ".0f", "-"),
        ])
    return rows


def _table(columns, rows: list[list[str]]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return ("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in columns)
            + "</tr></thead><tbody>" + cells + "</tbody></table>")


def _annotator_section(summary: dict) -> str:
    if not summary.get("annotators"):
        return ""
    st = summary["annotator_settings"]
    return f"""<h2>Noisy annotators, at equal money</h2>
<p>Simulated annotators of accuracy {html.escape(", ".join(f"{a:g}" for a in st["accuracies"]))}, each with a
per-class confusion matrix around it; {st["batch_size"]} opinions bought per cycle whatever the plan, strategy
{html.escape(st["strategy"])}. Routing sends up to {st["relabel_fraction"]:.0%} of each cycle's opinions to labeled
items whose label is least trusted, up to {st["max_opinions"]} opinions each. Training-label accuracy is the
aggregated labels against the truth at the end; money to 99% is the median over seeds of the money spent when the
test accuracy first reached 99% of the ceiling trained on the true labels ({st["ceiling"]:.4f}).
P-values are Wilcoxon signed-rank tests over seeds against one opinion per item.</p>
{_table(ANNOTATOR_COLUMNS, annotator_rows(summary))}"""


def write_report(summary: dict, out: Path, title: str, description: str = "") -> dict[str, Path]:
    """Write ``results.json``, the PNG plots and ``report.html`` into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = _plots(summary, out, title)
    paths["json"] = out / "results.json"
    paths["json"].write_text(json.dumps(summary, indent=2, allow_nan=False))
    images = "".join(
        f'<figure><img alt="{html.escape(k)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"></figure>'
        for k, p in paths.items() if p.suffix == ".png")
    st = summary["settings"]
    settings = (f"{len(summary['seeds'])} seeds; batch {st['batch_size']}; seed set {st['seed_size']}; "
                f"test set {st['test_size']}; budget {st['max_labels']} labels; random share "
                f"{st['random_fraction']:.0%}; {summary['price_per_label']:,.2f} per label; model {st['model']}")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}: activelabel simulation</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;font-size:0.9em}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}} img{{max-width:100%}} .muted{{color:#666}}
</style></head><body>
<h1>{html.escape(title)}: active learning against random sampling</h1>
<p class="muted">{html.escape(description)}</p>
<p>{html.escape(settings)}</p>
<p>Full-pool accuracy (the ceiling, the same model trained on every pool item): <b>{summary['ceiling_accuracy']:.4f}</b>.
Labels to 95% / 99% are medians over seeds of the first labeled-set size whose test accuracy reaches that share of
the seed's ceiling. The p-value is a two-sided Wilcoxon signed-rank test on per-seed AULC against random.
Stopping columns show where each rule would have stopped (median labels; mean accuracy and money there).</p>
{_table(SUMMARY_COLUMNS, summary_rows(summary))}
{_annotator_section(summary)}
{images}
<p class="muted">All numbers are in results.json beside this file.</p>
</body></html>
"""
    paths["html"] = out / "report.html"
    paths["html"].write_text(page, encoding="utf-8")
    return paths
