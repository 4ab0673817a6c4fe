"""The admin's learning curve: test accuracy per cycle with its 95% band, as inline SVG."""

from __future__ import annotations

import io

__all__ = ["accuracy_svg"]


def accuracy_svg(curve: list[dict]) -> str:
    """SVG text of accuracy against training labels; empty when there is nothing to plot."""
    points = [c for c in curve if c["accuracy"] is not None]
    if not points:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [c["labels_used"] for c in points]
    y = [c["accuracy"] for c in points]
    lo = [c["accuracy_ci"][0] for c in points]
    hi = [c["accuracy_ci"][1] for c in points]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.fill_between(x, lo, hi, alpha=0.25, label="95% interval")
    ax.plot(x, y, marker="o", label="test accuracy")
    ax.set_xlabel("training labels")
    ax.set_ylabel("accuracy on the test items")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = io.StringIO()
    fig.savefig(out, format="svg")
    plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg"):]
