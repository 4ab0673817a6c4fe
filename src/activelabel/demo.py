"""The quick start's demo project: real SMS messages, a labeled seed and test set, a first model, two tokens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from activelabel.project import CONFIG_FILE, init_project

__all__ = ["build_demo", "DEMO_DATA"]

DEMO_DATA = Path(__file__).parent / "demo_data" / "sms_spam.parquet"
TOKENS = "demo-tokens.txt"


def build_demo(folder: str | Path, progress: Callable[[str], object] = lambda _: None) -> dict[str, str]:
    """Create the demo project in ``folder`` (once) and return the tokens of its admin and its annotator.

    The seed set (40 pool items) and 100 test items get their true labels,
    as if labeled already, so the first model exists and the app serves
    what it asks for from the start.
    """
    folder = Path(folder)
    tokens_file = folder / TOKENS
    if (folder / CONFIG_FILE).exists() and tokens_file.exists():
        return dict(line.split("=", 1) for line in tokens_file.read_text().split())
    progress("creating the project")
    project = init_project(folder, ["spam", "ham"], batch_size=50, price_per_label=0.05, budget=100.0)
    try:
        progress("importing 4,862 SMS messages")
        project.import_items(DEMO_DATA, text_column="text", test_size=300)
        truth = pd.read_parquet(DEMO_DATA).drop_duplicates("text").set_index("text")["label"]
        items = project.state().items
        rng = np.random.default_rng(0)
        seed = rng.choice(items.loc[items["split"] == "pool", "id"], 40, replace=False)
        test = rng.choice(items.loc[items["split"] == "test", "id"], 100, replace=False)
        with project.store.session(readonly=True) as s:
            from activelabel.store.repo import items_frame

            chosen = items_frame(s, ids=np.concatenate([seed, test]))
        labels = folder / "demo-seed-labels.csv"
        pd.DataFrame({"id": chosen["external_id"], "label": chosen["text"].map(truth)}).to_csv(labels, index=False)
        project.import_labels(labels)
        progress("training the first model")
        project.train()
        tokens = {"admin": project.add_annotator("admin", "admin"), "annotator": project.add_annotator("demo")}
    finally:
        project.close()
    tokens_file.write_text("".join(f"{k}={v}\n" for k, v in tokens.items()))
    tokens_file.chmod(0o600)
    return tokens
