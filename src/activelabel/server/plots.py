"""The admin's learning curve: test accuracy per cycle with its 95% interval, as inline SVG.

Each point says how many test labels it rests on; a point whose test set
differs from the previous point's (more test labels, or other labels on
them) is drawn apart, since its accuracy is not measured on the same items.
The axes never shrink to a point's width: accuracy runs from 0 (or a round
value below the lowest interval) to 1, training labels from 0.
"""

from __future__ import annotations

import io
import math
import threading

__all__ = ["accuracy_svg", "axis_limits"]

_DRAWING = threading.Lock()  # pyplot and rcParams are global: one drawing at a time (routes run in threads)


def axis_limits(curve: list[dict]) -> tuple[tuple[float, float], tuple[float, float]]:
    """``(x_low, x_high), (y_low, y_high)`` for the points of ``curve`` that have an accuracy.

    x runs from 0 to a tenth past the most training labels; y from a round
    tenth below the lowest interval (0 at most 0.5, so a model at chance
    shows as one) to 1.
    """
    points = [c for c in curve if c["accuracy"] is not None]
    most = max((c["labels_used"] for c in points), default=0)
    low = min((_low(c) for c in points), default=0.0)
    y_low = 0.0 if low <= 0.5 else math.floor((low - 0.02) * 10) / 10
    return (0.0, max(1.0, most * 1.1)), (max(0.0, y_low), 1.0)


def _low(c: dict) -> float:
    lo = c["accuracy_ci"][0]
    return c["accuracy"] if lo is None else min(lo, c["accuracy"])


def accuracy_svg(curve: list[dict]) -> str:
    """SVG text of accuracy against training labels; empty when there is nothing to plot.

    ``curve`` items have ``labels_used``, ``accuracy``, ``accuracy_ci`` and,
    optionally, ``test_labels`` and ``test_changed``.
    """
    points = [c for c in curve if c["accuracy"] is not None]
    if not points:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with _DRAWING, plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "activelabel", "font.size": 11}):
        # real text (not glyph paths) and stable ids
        return _draw(plt, points)


def _draw(plt, points: list[dict]) -> str:
    x = [c["labels_used"] for c in points]
    y = [c["accuracy"] for c in points]
    lo = [c["accuracy"] if c["accuracy_ci"][0] is None else c["accuracy_ci"][0] for c in points]
    hi = [c["accuracy"] if c["accuracy_ci"][1] is None else c["accuracy_ci"][1] for c in points]
    fig, ax = plt.subplots(figsize=(5, 3.4))  # small and large-lettered: still readable shrunk to a phone
    if len(points) > 1:
        ax.fill_between(x, lo, hi, alpha=0.2, color="C0", linewidth=0, label="95% interval")
    ax.errorbar(x, y, yerr=[[a - b for a, b in zip(y, lo)], [b - a for a, b in zip(y, hi)]], color="C0",
                marker="o", capsize=3, label="test accuracy" + (" (bar: 95% interval)" if len(points) == 1 else ""))
    changed = [c for c in points if c.get("test_changed")]
    if changed:
        ax.scatter([c["labels_used"] for c in changed], [c["accuracy"] for c in changed], s=110, marker="D",
                   facecolors="none", edgecolors="C1", linewidths=1.6, zorder=3,
                   label="test set changed since the previous point")
    for c, top in zip(points, hi):
        if c.get("test_labels") is not None:  # above the interval's bar, clear of the line
            ax.annotate(f"n={c['test_labels']}", (c["labels_used"], top), textcoords="offset points",
                        xytext=(0, 4), ha="center", va="bottom", fontsize=9, color="#57606a")
    (x_low, x_high), (y_low, y_high) = axis_limits(points)
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high + 0.06)  # room for the n= notes on top
    ax.set_xlabel("training labels")
    ax.set_ylabel("accuracy on the test items")
    ax.set_title("n = test labels each point rests on", fontsize=10, color="#57606a", loc="left")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg", metadata={"Date": None})  # no creation time: the same curve, the same text
    plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg"):]


def kappa_svg(report: dict) -> str:
    """SVG heatmap of Cohen's kappa between every two annotators (blank where they share too few items);
    empty with fewer than two people."""
    people = [a["name"] for a in report["annotators"]]
    if len(people) < 2:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    values = np.array([[1.0 if a["name"] == other else (np.nan if a["kappa"][other] is None else a["kappa"][other])
                        for other in people] for a in report["annotators"]])
    with _DRAWING, plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "activelabel", "font.size": 11}):
        size = min(2.2 + 0.55 * len(people), 7)
        fig, ax = plt.subplots(figsize=(size + 1.2, size))
        shown = ax.imshow(values, vmin=-0.2, vmax=1, cmap="RdYlGn")
        ax.set_xticks(range(len(people)), people, rotation=45, ha="right")
        ax.set_yticks(range(len(people)), people)
        for i in range(len(people)):
            for j in range(len(people)):
                if np.isfinite(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=9)
        fig.colorbar(shown, ax=ax, shrink=0.8, label="Cohen's kappa")
        ax.set_title("agreement between two people (blank: too few shared items)", fontsize=10, color="#57606a",
                     loc="left")
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
        plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg"):]
