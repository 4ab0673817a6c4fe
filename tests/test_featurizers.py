"""Features of project items: each kind of item, the real embedding model, and the on-disk cache."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from activelabel.errors import MissingImageError
from activelabel.models.featurizers import FeatureCache, compute_features, featurizer_version, image_pixels
from activelabel.project import init_project


def test_embeddings_put_paraphrases_closer_than_unrelated_text():
    """The bundled all-MiniLM-L6-v2 runs offline and gives meaningful 384-dim unit vectors; the progress hears
    the chunks."""
    heard = []
    X = compute_features("embeddings", pd.DataFrame({"text": [
        "Win a free cruise, call now to claim your prize",
        "Claim your prize now: you have won a free holiday",
        "Are we still meeting for lunch tomorrow?"]}), progress=lambda done, total: heard.append((done, total)))
    assert heard == [(3, 3)]
    assert X.shape == (3, 384) and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)
    assert X[0] @ X[1] > X[0] @ X[2] + 0.2


def test_table_rows_scale_numbers_and_one_hot_categories():
    rows = [{"size": "1", "colour": "red"}, {"size": "3", "colour": "blue"}, {"size": "", "colour": "red"}]
    X = compute_features("table", pd.DataFrame({"data": rows}))
    assert X.shape == (3, 3)  # one scaled number, two one-hot columns
    assert np.allclose(X[:, 0].mean(), 0, atol=1e-6) and X[2, 0] == pytest.approx(0)  # median-imputed, centred
    assert sorted(map(tuple, X[:, 1:])) == [(0, 1), (0, 1), (1, 0)]


def test_image_pixels(tmp_path):
    Image.new("RGB", (50, 20), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("L", (10, 10), 128).save(tmp_path / "grey.jpg")
    X = image_pixels([str(tmp_path / "red.png"), str(tmp_path / "grey.jpg")])
    assert X.shape == (2, 32 * 32 * 3)
    assert np.allclose(X[0].reshape(32, 32, 3)[..., 0], 1) and np.allclose(X[0].reshape(32, 32, 3)[..., 1:], 0)
    assert np.allclose(X[1], 128 / 255, atol=0.01)
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(MissingImageError, match="bad.png"):
        image_pixels([str(tmp_path / "bad.png")])


def test_cache_computes_only_missing_items(tmp_path):
    cache = FeatureCache(tmp_path)
    calls = []

    def compute(ids):
        calls.append(list(ids))
        return np.c_[ids, ids * 2].astype(np.float32)

    X = cache.get("pixels-v1", np.array([3, 1, 2]), compute)
    assert calls == [[1, 2, 3]] and X.tolist() == [[3, 6], [1, 2], [2, 4]]
    X = cache.get("pixels-v1", np.array([4, 2]), compute)
    assert calls[-1] == [4] and X.tolist() == [[4, 8], [2, 4]]
    assert FeatureCache(tmp_path).get("pixels-v1", np.array([1, 4]), compute).tolist() == [[1, 2], [4, 8]]
    assert len(calls) == 2  # a new cache object reads the chunks from disk


def test_collection_featurizers_get_a_new_version_when_items_change():
    a = pd.DataFrame({"id": [1, 2], "content_hash": ["x", "y"]})
    b = pd.DataFrame({"id": [1, 2, 3], "content_hash": ["x", "y", "z"]})
    assert featurizer_version("tfidf", a) != featurizer_version("tfidf", b)
    assert featurizer_version("embeddings", a) == featurizer_version("embeddings", b)


def test_image_project_trains_on_pixels(tmp_path):
    """Images import with paths relative to their file, train on pixels, and old fingerprints are cleaned up."""
    rng = np.random.default_rng(0)
    rows = []
    (tmp_path / "imgs").mkdir()
    for i in range(60):
        bright = i % 2 == 0
        pixels = rng.integers(150, 255, (12, 12, 3)) if bright else rng.integers(0, 100, (12, 12, 3))
        Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
        rows.append({"file": f"imgs/{i}.png", "label": "light" if bright else "dark"})
    pd.DataFrame(rows).to_csv(tmp_path / "images.csv", index=False)
    p = init_project(tmp_path / "proj", ["light", "dark"], batch_size=5)
    counts = p.import_items(tmp_path / "images.csv", image_column="file", label_column="label", test_size=20)
    assert counts == {"new": 60, "existing": 0, "test": 20, "labels": 60}
    result = p.train()
    assert result["accuracy"] == 1.0 and result["test_labels"] == 20 and result["batch"] == 0
    assert p.config.featurizer == "pixels" and str(tmp_path) in p.config.image_dirs
    p.close()


def test_precomputed_embeddings_are_used_as_given(tmp_path):
    vectors = np.random.default_rng(1).normal(size=(40, 5))
    labels = np.where(vectors[:, 0] > 0, "pos", "neg")
    pd.DataFrame({"id": range(40), "text": [f"t{i}" for i in range(40)], "emb": list(vectors),
                  "label": labels}).to_parquet(tmp_path / "e.parquet")
    p = init_project(tmp_path / "proj", ["pos", "neg"])
    p.import_items(tmp_path / "e.parquet", text_column="text", id_column="id", embedding_column="emb",
                   label_column="label", test_size=10)
    st = p.state()
    X = p.item_features(st.items)
    assert np.allclose(X, vectors[st.items["external_id"].astype(int)], atol=1e-6)
    assert p.train()["accuracy"] >= 0.9
    p.close()
