"""The README's benchmark tables, generated from the results files under ``benchmarks/results/``.

``python benchmarks/readme_tables.py`` rewrites every table between its markers
(``<!-- table:NAME -->`` ... ``<!-- /table:NAME -->``) from the saved results,
each followed by the stamp of the run that produced it; ``--check`` only says
whether the README matches (exit 1 if not), which ``tests/test_readme_tables.py``
runs. Nothing here imports a peer library, so it runs wherever activelabel does.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from stamp import RESULTS, describe, load  # noqa: E402

README = Path(__file__).resolve().parents[1] / "README.md"
LABEL_EFFICIENCY = ("digits", "satimage", "sms_spam", "pendigits", "fashion_mnist")


def _f(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _rows(header: list[str], align: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def query_speed() -> str:
    st, results = load("query_speed")
    def ratio(v: float) -> str:
        return f"{v:.2f}" if v < 10 else f"{v:.3g}"

    rows = [[f"{r['pool']:,}", r["method"], f"{r['seconds']:.3f}", ratio(r["x_floor"]), f"{r['peak_mb']:.0f}",
             ratio(r["peak_over_x"])] for r in results]
    return "\n".join([*_rows(["pool", "method", "seconds", "x floor", "peak MB", "peak / X"],
                             list("rlrrrr"), rows), "", describe(st)])


def query_speed_peers() -> str:
    st, results = load("query_speed_peers")
    sizes = list(next(iter(results.values())))
    ours = results["activelabel default"]
    rows = []
    for method, by_size in results.items():
        cells = [method]
        for n in sizes:
            r = by_size[n]
            if r["status"] != "ok":
                cells.append(r["status"])
                continue
            ratio = r["seconds"] / ours[n]["seconds"] if ours[n]["status"] == "ok" else float("nan")
            cells.append(f"{r['seconds']:.2f} s ({r['peak_rss'] / 2**30:.1f} GB), x{ratio:.2f}")
        rows.append(cells)
    return "\n".join([*_rows(["method", *(f"{int(n):,}" for n in sizes)], ["l", *"r" * len(sizes)], rows),
                      "", describe(st)])


def import_speed() -> str:
    st, r = load("import_speed")
    floor = r["floor"]
    rows = [["floor (pandas + sqlite3)", f"{floor['seconds']:.1f}", f"{floor['peak_mb']:,.0f}", "1.00x", "-", "-", "-"]]
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    for backend, b in r["results"].items():
        rows.append([names.get(backend, backend), f"{b['items']['seconds']:.1f}", f"{b['items']['peak_mb']:,.0f}",
                     f"{b['items']['seconds'] / floor['seconds']:.2f}x", f"{b['reimport']['seconds']:.1f}",
                     f"{b['labels']['seconds']:.1f}", f"{b['labels']['peak_mb']:,.0f}"])
    header = ["backend", f"{r['items'] / 1e6:g}M items: s", "peak MB", "vs floor", "same file again: s",
              f"{r['labels'] / 1e3:g}k labels: s", "peak MB"]
    return "\n".join([*_rows(header, list("lrrrrrr"), rows), "", describe(st)])


def serve_load() -> str:
    _, records = load("serve_load")
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    order = sorted(records, key=lambda r: (r["backend"] != "sqlite", r["scenario"] != "plain"))
    rows = [[names[r["backend"]], r["scenario"], *(" / ".join(f"{v:.1f}" for v in r["ms"][op])
                                                   for op in ("next", "submit", "healthz")),
             f"{r['submissions'] / r['seconds']:.0f}", str(r["lost"]), str(r["duplicated"]),
             str(r["late_duplicates"]), str(r["cycles_during_load"])] for r in order]
    header = ["backend", "scenario", "next item p50 / p95 / p99 ms", "submit p50 / p95 / p99 ms",
              "/healthz p50 / p95 / p99 ms", "answers/s", "lost", "duplicated", "late duplicates",
              "cycles during the load"]
    stamps = [f"{names[r['backend']]} {r['scenario']}: {describe(r.get('stamp'))}" for r in order]
    return "\n".join([*_rows(header, list("llrrrrrrrr"), rows), "", *(f"- {line}" for line in stamps)])


def label_efficiency() -> str:
    parts = []
    for name in LABEL_EFFICIENCY:
        path = RESULTS / name / "results.json"
        if path.exists():
            parts.append(label_efficiency_table(json.loads(path.read_text())))
    return "\n\n".join(parts)


def label_efficiency_table(summary: dict) -> str:
    """One data set's table of ``benchmarks/label_efficiency.py``, with the default's targets in words."""
    st, t = summary["settings"], summary["targets"]
    lines = [f"**{summary['data']['name']}** ({summary['data']['items']:,} items, {summary['data']['features']}; "
             f"batch {st['batch_size']}, budget {st['max_labels']}, {len(summary['seeds'])} seeds; full-pool "
             f"accuracy {summary['ceiling_accuracy']:.4f}; {summary['seconds']:.0f} s)", ""]
    rows = []
    for name, v in sorted(summary["strategies"].items(), key=lambda kv: -kv[1]["aulc_mean"]):
        saved = "baseline" if name == "random" else _f(v["savings_vs_random_99"], ".0%")
        rows.append(["**default**" if name == "default" else name, f"{v['aulc_mean']:.4f}",
                     _f(v["labels_to_95"], ".0f"), _f(v["labels_to_99"], ".0f"), saved,
                     _f(v["p_value_vs_random"], ".3g")])
    lines += _rows(["strategy", "AULC", "labels to 95%", "labels to 99%", "saved vs random (99%)", "p vs random"],
                   list("lrrrrr"), rows)
    lines += ["", f"Default: saves {_f(t['savings_vs_random_99'], '.0%')} of random's labels to 99% "
                  f"(target >= 50%: {'met' if t['half_of_random_labels'] else 'not met'}); significantly worse "
                  f"than random: {'yes' if t['significantly_worse_than_random'] else 'no'}"
                  + (f"; best peer {t['best_peer']} AULC {t['best_peer_aulc']:.4f} vs default "
                     f"{t['default_aulc']:.4f}, Wilcoxon p = {t['p_vs_best_peer']:.3g}: "
                     f"{'ties or beats' if t['ties_or_beats_best_peer'] else 'below'}." if "best_peer" in t else "."),
              "", describe(summary.get("stamp"))]
    return "\n".join(lines)


def all_strategies() -> str:
    st, summary = load("all_strategies")
    rows = []
    for name, v in sorted(summary["strategies"].items(), key=lambda kv: -kv[1]["aulc_mean"]):
        rows.append([name, f"{v['aulc_mean']:.4f}", f"{v['final_accuracy']:.3f}", _f(v["labels_to_95"], ".0f"),
                     _f(v["labels_to_99"], ".0f"), _f(v["p_value_vs_random"], ".3g"),
                     _f(v["stopping"]["plateau"]["labels"], ".0f")])
    header = ["strategy", "AULC", "final acc.", "labels to 95%", "labels to 99%", "p vs random", "plateau stop at"]
    return "\n".join([*_rows(header, list("lrrrrrr"), rows), "", describe(st)])


def annotators() -> str:
    st, results = load("annotators")
    rows = []
    for name, r in results.items():
        cells = [name, f"{r['items']:,}"]
        for method in ("majority", "dawid_skene", "crowdlab"):
            m = r["methods"][method]
            p = "" if m["p_vs_majority"] is None else f", p = {m['p_vs_majority']:.3g}"
            cells.append(f"{m['label_accuracy_mean']:.4f}" + ("" if method == "majority" else
                                                              f" (x{m['vs_majority']:.4f}{p})"))
        rows.append(cells)
    header = ["data set", "items", "majority vote", "Dawid-Skene (vs majority)", "CROWDLAB (vs majority)"]
    return "\n".join([*_rows(header, list("lrrrr"), rows), "", describe(st)])


def annotator_loop() -> str:
    st, results = load("annotators")
    plans = list(next(iter(results.values()))["loop"]["plans"])
    rows = []
    for name, r in results.items():
        loop = r["loop"]
        cells = [name, f"{loop['settings']['max_money']:,}", f"{0.99 * loop['ceiling']:.4f}"]
        for plan in plans:
            m = loop["plans"][plan]
            cells.append(f"{_f(m['money_to_99'], ',.0f')} ({m['label_accuracy']:.3f})")
        rows.append(cells)
    header = ["data set", "budget", "99% of ceiling", *plans]
    return "\n".join([*_rows(header, list("lrr") + ["r"] * len(plans), rows), "", describe(st)])


def deep_text() -> str:
    st, r = load("deep_text")
    rows = [[name, f"{m['final_accuracy']:.4f}", f"{m['ceiling']:.4f}", _f(m["labels_to_99"], ",.0f"),
             f"{m['aulc_mean']:.4f}", f"{m['seconds']:.0f}"] for name, m in r["methods"].items()]
    header = ["features + model", "final accuracy", "full-pool ceiling", "labels to 99% of own ceiling", "AULC",
              "seconds (all seeds)"]
    note = f"MiniLM embeddings of the {r['items']:,} messages took {r['embedding_seconds']:.0f} s (one core)."
    return "\n".join([*_rows(header, list("lrrrrr"), rows), "", note, "", describe(st)])


def deep_images() -> str:
    st, r = load("deep_images")
    names = {"cnn random": "random (CNN)", "cnn default": "default (CNN, mean of 20 MC-dropout passes)",
             "cnn bald": "BALD (CNN, 20 MC-dropout passes)", "ensemble bald": "BALD (ensemble of 5 CNNs)"}
    rows = [[names.get(name, name), _f(m["labels_to_99"], ",.0f"),
             _f(m["share_of_random_labels"], ".0%"), f"{m['aulc_mean']:.4f}", f"{m['final_accuracy']:.4f}",
             _f(m["p_value_vs_random"], ".3f")] for name, m in r["methods"].items()]
    header = ["method", "labels to 99% of the ceiling", "share of random's labels", "AULC", "final accuracy",
              "AULC p vs random"]
    s = r["settings"]
    note = (f"Ceiling (the CNN on the whole {r['pool']:,}-image pool): {r['ceiling']:.4f}; budget "
            f"{s['max_labels']:,} labels, batch {s['batch_size']}, {s['seeds']} seeds; "
            f"{r['seconds'] / 3600:.1f} hours on 2 cores. \"-\": not reached within the budget (median over seeds).")
    return "\n".join([*_rows(header, list("lrrrrr"), rows), "", note, "", describe(st)])


def scale() -> str:
    _, r = load("scale")
    out = []
    if r.get("pools"):
        names = {"memory": "the whole pool in memory (baseline)", "disk": "on disk, one process",
                 "cluster": "on disk, 2-worker LocalCluster"}
        rows = [[f"{p['pool']:,}", names[p["mode"]], f"{p['seconds']:.1f}", f"{p['peak_mb']:,.0f}",
                 _f(p.get("worker_peak_mb"), ",.0f")] for p in r["pools"]]
        out += _rows(["pool (x 64 float32)", "how", "seconds", "peak MB (client)", "peak MB (largest worker)"],
                     list("llrrr"), rows)
        flat = [f"{m} {r[f'{m}_peak_ratio_10x_items']:.2f}x" for m in ("disk", "cluster")
                if f"{m}_peak_ratio_10x_items" in r]
        out += ["", f"Peak memory for 10x the items: {', '.join(flat)} (on the cluster, the largest worker's). The "
                    f"same batch in memory, on disk and on the cluster: {'yes' if r.get('same_batch_as_memory') else 'NO'}. "
                    + describe(r.get("pools_stamp"))]
    if r.get("imports"):
        rows = [[f"{i['rows']:,}", i["backend"], f"{i['csv_mb']:,.0f}", f"{i['seconds']:,.0f}", f"{i['peak_mb']:,.0f}"]
                for i in r["imports"]]
        out += ["", *_rows(["short texts imported", "backend", "CSV MB", "seconds", "peak MB"], list("rlrrr"), rows),
                "", describe(r.get("imports_stamp"))]
    if r.get("simulate"):
        m = r["simulate"]
        out += ["", f"`simulate` of the default against random on a {m['rows']:,}-row table, {m['seeds']} seeds: "
                    f"{m['seconds']:.0f} s on 2 cores (target {m['target_seconds']} s); one seed in one process "
                    f"{m['one_seed_seconds']:.1f} s, against {m['one_seed_item_bootstrap_seconds']:.1f} s with the "
                    f"item bootstrap ({m['one_seed_speedup']:.1f}x). " + describe(m.get("stamp"))]
    if r.get("intervals"):
        i = r["intervals"]
        out += ["", f"Intervals on {i['test_items']:,} test items: {i['seconds']:.4f} s, against "
                    f"{i['item_bootstrap_seconds']:.2f} s for scipy's item bootstrap ({i['speedup']:.0f}x). "
                    + describe(i.get("stamp"))]
    return "\n".join(out)


TABLES: dict[str, Callable[[], str]] = {
    "deep_text": deep_text, "deep_images": deep_images, "scale": scale,
    "annotators": annotators, "annotator_loop": annotator_loop,
    "query_speed": query_speed, "query_speed_peers": query_speed_peers, "import_speed": import_speed,
    "serve_load": serve_load, "label_efficiency": label_efficiency, "all_strategies": all_strategies,
}
_BLOCK = re.compile(r"(<!-- table:(\w+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)


def render(text: str) -> str:
    """``text`` with every marked table regenerated from its results file."""
    def table(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise SystemExit(f"README.md: unknown table {name!r}; known: {', '.join(TABLES)}")
        return f"{match.group(1)}{TABLES[name]()}\n{match.group(4)}"

    return _BLOCK.sub(table, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README's tables differ from the results")
    args = parser.parse_args()
    text = README.read_text()
    new = render(text)
    if args.check:
        if new != text:
            print("README.md: the benchmark tables differ from benchmarks/results; run python benchmarks/readme_tables.py")
            sys.exit(1)
        print("README.md: the benchmark tables match benchmarks/results")
        return
    README.write_text(new)
    print(f"README.md: {len(_BLOCK.findall(new))} tables written from benchmarks/results")


if __name__ == "__main__":
    main()
