"""PyTorch models (issue 14): sample stacks, MC dropout, ensembles, temperature scaling, and the loop around them."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from activelabel.errors import InvalidParameterError, ShapeMismatchError
from activelabel.loop.evaluation import expected_calibration_error
from activelabel.loop.learner import ActiveLearner
from activelabel.models import committee_samples
from activelabel.models.deep import DeepClassifier
from activelabel.strategies.committee import bald


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32), y


def test_stacks_have_their_shape_and_are_seeded(digits):
    X, y = digits
    mc = DeepClassifier("mlp", epochs=5, mc_samples=7, calibrate=False).fit(X[:300], y[:300])
    stack = mc.sample_proba(X[300:350])
    assert stack.shape == (7, 50, 10) and np.allclose(stack.sum(axis=2), 1)
    assert np.array_equal(stack, mc.sample_proba(X[300:350]))  # the same masks for the same call
    assert mc.sample_proba(X[300:350], 3).shape == (3, 50, 10)
    other = DeepClassifier("mlp", epochs=5, mc_samples=7, calibrate=False, random_state=1).fit(X[:300], y[:300])
    assert not np.allclose(other.sample_proba(X[300:350]), stack)
    members = DeepClassifier("mlp", epochs=5, n_members=3, calibrate=False).fit(X[:300], y[:300])
    ensemble = members.sample_proba(X[300:350])
    assert ensemble.shape == (3, 50, 10) and not np.allclose(ensemble[0], ensemble[1])  # different seeds
    assert np.allclose(members.predict_proba(X[300:350]), ensemble.mean(axis=0), atol=1e-6)
    # committee_samples takes the model's own stack, in the loop's class order (a class it never saw: zeros)
    aligned = committee_samples(mc, X[300:350], np.arange(11))
    assert aligned.shape == (7, 50, 11) and (aligned[..., 10] == 0).all()


def test_dropout_on_varies_the_passes_dropout_off_does_not(digits):
    X, y = digits
    on = DeepClassifier("mlp", epochs=5, dropout=0.5, calibrate=False).fit(X[:300], y[:300]).sample_proba(X[:40])
    off = DeepClassifier("mlp", epochs=5, dropout=0.0, calibrate=False).fit(X[:300], y[:300]).sample_proba(X[:40])
    assert not np.allclose(on[0], on[1]) and all(np.allclose(off[0], off[k]) for k in range(1, len(off)))
    scores = bald(on)
    assert (scores >= -1e-12).all() and np.allclose(bald(off), 0, atol=1e-6)
    disagree = np.abs(on - on.mean(axis=0)).sum(axis=(0, 2))
    top, bottom = np.argsort(-disagree)[:10], np.argsort(disagree)[:10]
    assert scores[top].mean() > scores[bottom].mean()  # higher where the passes disagree


def test_temperature_scaling_lowers_the_calibration_error_on_a_held_out_split(digits):
    X, y = digits
    """A network trained long without dropout is overconfident; the temperature (fitted on a fifth of the
    training labels) softens it, and the error falls on items neither saw."""
    X_train, X_test, y_train, y_test = train_test_split(X, y, train_size=300, stratify=y, random_state=0)
    settings = dict(epochs=100, dropout=0.0, weight_decay=0.0)
    raw = DeepClassifier("mlp", calibrate=False, **settings).fit(X_train, y_train)
    scaled = DeepClassifier("mlp", calibrate=True, **settings).fit(X_train, y_train)
    assert scaled.temperature_ > 1
    ece_raw = expected_calibration_error(y_test, raw.predict_proba(X_test))
    ece_scaled = expected_calibration_error(y_test, scaled.predict_proba(X_test))
    assert ece_scaled < ece_raw, (ece_raw, ece_scaled, scaled.temperature_)


def test_a_cnn_takes_28_by_28_and_32_by_32_colour_images_and_refuses_other_shapes():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    grey = rng.random((40, 784), dtype=np.float32) + y[:, None] * 0.5
    assert DeepClassifier("cnn", epochs=2, min_updates=1, calibrate=False).fit(grey, y).sample_proba(grey[:5], 4).shape == (4, 5, 2)
    colour = rng.random((40, 3072), dtype=np.float32) + y[:, None] * 0.5
    assert DeepClassifier("cnn", epochs=2, min_updates=1, calibrate=False).fit(colour, y).predict_proba(colour).shape == (40, 2)
    with pytest.raises(ShapeMismatchError, match="got 64 features"):
        DeepClassifier("cnn").fit(rng.random((40, 64)), y)
    with pytest.raises(InvalidParameterError, match="architecture"):
        DeepClassifier("transformer").fit(grey, y)


def test_a_pytorch_model_runs_through_the_learner_with_bald_and_the_default(digits):
    X, y = digits
    for strategy in ("bald", "default"):
        learner = ActiveLearner(DeepClassifier("mlp", epochs=10, mc_samples=8), strategy=strategy, batch_size=40,
                                seed_size=60, test_size=300, random_state=0)
        learner.start(X, y)
        history = learner.run(lambda i: y[i], max_cycles=3)
        assert [r.labels_used for r in history] == [60, 100, 140]
        assert history[-1].accuracy > 0.7 and all(0 <= r.ece <= 1 for r in history)


def test_an_image_project_trains_the_cnn_in_the_background_and_is_labeled_in_the_browser(tmp_path, browser):
    """Handwritten zeros and ones (scikit-learn's digits, scaled up) as PNG files: imported, the CNN trained, a
    batch labeled with the keyboard in Chromium, the CNN retrained by the server's background retrainer, the next
    batch served without reload."""
    import joblib
    import pandas as pd
    from PIL import Image
    from playwright.sync_api import expect

    from activelabel.project import Project, init_project
    from helpers import Server, set_config
    from test_browser import log_in

    digits = load_digits()
    rows = np.concatenate([np.flatnonzero(digits.target == 0)[:30], np.flatnonzero(digits.target == 1)[:30]])
    (tmp_path / "imgs").mkdir()
    names = []
    for i in rows:
        pixels = (digits.images[i] * 255 / 16).astype(np.uint8)
        Image.fromarray(pixels).resize((28, 28), Image.NEAREST).save(tmp_path / "imgs" / f"{i}.png")
        names.append(f"imgs/{i}.png")
    truth = np.where(digits.target[rows] == 0, "zero", "one")
    seed = np.r_[0:8, 30:38]  # 8 of each labeled up front (too few for a temperature: the CNN trains once a cycle)
    pd.DataFrame({"f": names, "label": [truth[k] if k in seed else "" for k in range(60)]}).to_csv(
        tmp_path / "images.csv", index=False)
    folder = tmp_path / "proj"
    with init_project(folder, ["one", "zero"], batch_size=6) as p:
        p.import_items(tmp_path / "images.csv", image_column="f", label_column="label", test_size=8)
        token = p.add_annotator("ann")
    set_config(folder, model="cnn", test_share=0.0, reserve_batches=0)
    with Project.open(folder) as p:
        first = p.train(force=True)
    assert first["cycle"] == 1
    with Server(folder, log=tmp_path / "server.log") as server:
        page = log_in(browser.new_context(), server.url, token)
        card = page.locator("article.item")
        batch = []
        while page.locator("#nothing").count() == 0 and len(batch) < 6:
            item = card.get_attribute("data-item")
            batch.append(item)
            page.keyboard.press("1")
            expect(page.locator("#today")).to_have_text(str(len(batch)))
        assert len(batch) == 6
        expect(card).to_have_count(1, timeout=120_000)  # the retrained CNN's next batch, polled in
        assert card.get_attribute("data-item") not in batch
    with Project.open(folder) as p:
        cycles = [c for c in p.state().cycles if c.model_path]
        assert len(cycles) >= 2 and cycles[-1].labels_used >= first["labels_used"] + 6
        assert type(joblib.load(folder / cycles[-1].model_path)["model"]).__name__ == "DeepClassifier"
        assert cycles[-1].details["ece"] is not None


def test_simulate_takes_a_deep_model_by_name_and_reports_calibration(tmp_path):
    import json

    from helpers import run_cli

    out = run_cli("simulate", "digits", "--model", "mlp", "-s", "bald", "--seeds", "1", "--budget", "60",
                  "--batch-size", "20", "--seed-size", "20", "--jobs", "1", "--out", tmp_path)
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert "DeepClassifier" in results["settings"]["model"]
    ece = results["strategies"]["bald"]["curve"]["ece"]
    assert len(ece) == 3 and all(0 <= v <= 1 for v in ece)


def test_images_take_embeddings_from_a_torchscript_model_the_user_supplies(tmp_path):
    """A tiny TorchScript model (mean colour and brightness spread per image, input 16 x 16) makes the features
    of an image project; a new model file makes new features; a broken one is one line."""
    import pandas as pd
    import torch
    from PIL import Image

    from activelabel.project import Project, init_project
    from helpers import one_line_error, run_cli

    class Tiny(torch.nn.Module):
        input_size: int

        def __init__(self):
            super().__init__()
            self.input_size = 16

        def forward(self, x):
            assert x.shape[1:] == (3, 16, 16)
            return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)

    with pytest.warns(DeprecationWarning):  # TorchScript is deprecated in PyTorch 2.13, and still what users have
        torch.jit.script(Tiny()).save(str(tmp_path / "tiny.pt"))
    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(0)
    labels = []
    for i in range(30):
        dark = i % 2 == 0
        pixels = rng.integers(0, 100, (20, 20, 3)) + (0 if dark else 150)
        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
        labels.append("dark" if dark else "light")
    pd.DataFrame({"f": [f"imgs/{i}.png" for i in range(30)], "label": labels}).to_csv(tmp_path / "i.csv", index=False)
    folder = tmp_path / "proj"
    init_project(folder, ["dark", "light"]).close()
    out = run_cli("import", folder, tmp_path / "i.csv", "--image-column", "f", "--label-column", "label",
                  "--image-model", tmp_path / "tiny.pt", "--test-size", "6")
    assert out.returncode == 0, out.stderr
    with Project.open(folder) as p:
        assert p.config.featurizer == f"torchscript:{(tmp_path / 'tiny.pt').resolve()}"
        result = p.train()
        from activelabel.project.features import item_features

        X = item_features(p, p.state().items)
    assert X.shape == (30, 6) and result["accuracy"] == 1.0  # brightness separates them
    assert np.allclose(X[0, :3], np.asarray(Image.open(tmp_path / "imgs" / "0.png").convert("RGB").resize((16, 16)),
                                            dtype=np.float32).mean(axis=(0, 1)) / 255, atol=1e-5)
    (tmp_path / "tiny.pt").write_bytes(b"not a model")
    with Project.open(folder) as p:
        with pytest.raises(InvalidParameterError, match="cannot load the TorchScript image model"):
            item_features(p, p.state().items)
    one_line_error(run_cli("import", folder, tmp_path / "i.csv", "--image-column", "f", "--image-model",
                           tmp_path / "none.pt"), "--image-model", "no such file")


BROKEN_MODELS = {  # forward's body, the one line it must give
    "raises": ("raise RuntimeError('boom from model')", "failed on a batch of shape (4, 3, 16, 16): "),
    "one_row": ("return x.mean(dim=(2, 3))[:1]", "returned shape (1, 3) for 4 images"),
    "images": ("return x", "returned shape (4, 3, 16, 16) for 4 images"),
    "nan": ("return x.mean(dim=(2, 3)) * float('nan')", "non-finite values (NaN or inf) for "),
}


@pytest.mark.parametrize("kind", list(BROKEN_MODELS))
def test_a_broken_image_model_is_one_line_naming_it(tmp_path, kind):
    import textwrap

    import pandas as pd
    import torch
    from PIL import Image

    from activelabel.models.featurizers import compute_features

    body, message = BROKEN_MODELS[kind]
    source = textwrap.dedent(f"""
        import torch
        class Broken(torch.nn.Module):
            input_size: int
            def __init__(self):
                super().__init__()
                self.input_size = 16
            def forward(self, x):
                {body}
        """)
    (tmp_path / "broken.py").write_text(source)  # TorchScript reads the class's source from its file
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"broken_{kind}", tmp_path / "broken.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.warns(DeprecationWarning):
        torch.jit.script(module.Broken()).save(str(tmp_path / "broken.pt"))
    paths = []
    for i in range(4):
        Image.new("RGB", (20, 20), (40 * i, 0, 0)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    with pytest.raises((InvalidParameterError, ShapeMismatchError)) as caught:
        compute_features(f"torchscript:{tmp_path / 'broken.pt'}", pd.DataFrame({"image": paths}))
    text = str(caught.value)
    assert message in text and str(tmp_path / "broken.pt") in text and "\n" not in text, text


def test_a_model_name_with_a_typo_is_named_with_the_known_ones():
    from activelabel.errors import ModelImportError
    from activelabel.models.loading import load_model

    with pytest.raises(ModelImportError, match="unknown model 'mpl'; give one of mlp, cnn, mc-dropout, ensemble"):
        load_model("mpl")
