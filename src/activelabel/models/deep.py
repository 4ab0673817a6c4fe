"""PyTorch classifiers with the scikit-learn interface and honest uncertainty: MC dropout and deep ensembles.

:class:`DeepClassifier` fits like any scikit-learn classifier (``fit``,
``predict_proba``, ``classes_``), so the loop, the simulator and projects use
it where they use logistic regression, and adds ``sample_proba(X, n)``: an
(m, n_items, n_classes) stack of probabilities, from ``m`` members of a deep
ensemble or ``m`` passes with dropout left on (Monte Carlo dropout, Gal and
Ghahramani 2016), which the committee strategies (BALD, vote entropy, ...)
score. Training runs through skorch (a well-kept scikit-learn wrapper of
PyTorch); the networks are small: an MLP head over features or embeddings,
and a CNN for small images (28 x 28 grey, 32 x 32 colour). A temperature
fitted on held-out labels (Guo et al. 2017) calibrates the probabilities.

Needs the ``[torch]`` extra (``pip install activelabel[torch]``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin

from activelabel.errors import InvalidParameterError, ModelImportError, ShapeMismatchError

__all__ = ["DeepClassifier", "mlp", "cnn", "mc_dropout", "ensemble", "DEEP_MODELS"]

_IMAGE_SHAPES = {784: (1, 28, 28), 1024: (1, 32, 32), 3072: (3, 32, 32)}

try:  # the layer that turns rows into images must live at module level: saved models are pickled
    from torch import nn as _nn

    class Images(_nn.Module):
        """Flat rows to (n, channels, height, width); ``colour_last`` rows are raveled (height, width, colour),
        as the pixels featurizer (and PIL) give them."""

        def __init__(self, shape: tuple[int, int, int], colour_last: bool) -> None:
            super().__init__()
            self.shape, self.colour_last = tuple(shape), colour_last

        def forward(self, x):
            c, h, w = self.shape
            return x.view(-1, h, w, c).permute(0, 3, 1, 2) if self.colour_last else x.view(-1, c, h, w)
except ImportError:  # without the [torch] extra: _torch() says how to install it when a deep model is asked for
    pass


def _torch():
    try:
        import skorch  # noqa: F401
        import torch
    except ImportError as error:
        raise ModelImportError(f"deep models need PyTorch and skorch: pip install 'activelabel[torch]' ({error})") \
            from None
    return torch


def _module(architecture: str, n_features: int, n_classes: int, hidden: int, dropout: float,
            image_shape: tuple[int, int, int] | None, channels: tuple[int, int] = (16, 32)):
    """The network: logits from flat float32 rows (images are reshaped inside, so every layer above sees rows)."""
    torch = _torch()
    nn = torch.nn

    if architecture == "mlp":
        return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Dropout(dropout),
                             nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))
    shape = image_shape or _IMAGE_SHAPES.get(n_features)
    if shape is None or math.prod(shape) != n_features:
        raise ShapeMismatchError(f"the CNN takes images: 28 x 28 grey (784 features) or 32 x 32 (1,024 grey, 3,072 "
                                 f"colour, the pixels of an image project); got {n_features} features: use mlp "
                                 "for other features")
    first, second = channels
    colours, height, width = shape
    flat = second * (height // 4) * (width // 4)
    return nn.Sequential(
        Images(shape, colour_last=colours == 3),
        nn.Conv2d(colours, first, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(first, second, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(hidden, n_classes))


class DeepClassifier(ClassifierMixin, BaseEstimator):
    """A small neural network (``architecture`` ``"mlp"`` or ``"cnn"``) with MC dropout or a deep ensemble.

    Parameters
    ----------
    architecture : {"mlp", "cnn"}
    n_members : int, default 1
        Networks trained from different seeds; with 2 or more, ``sample_proba`` gives one row of the stack per
        member (a deep ensemble), otherwise ``mc_samples`` dropout passes of the one network.
    mc_samples : int, default 20
    hidden, dropout, epochs, batch_size, lr, weight_decay
        The network and its training (AdamW, cross-entropy).
    min_updates : int, default 200
        At least this many optimizer steps, however few the labels (more epochs on a small labeled set: 30
        epochs of 100 labels would be 60 steps, too few to learn anything; the CNNs below take 150).
    calibrate : bool, default True
        Fit a temperature on a held-out fifth of the labels (stratified), then train on them all.
    image_shape : (channels, height, width), optional
        For the CNN; by default read from the feature count (784, 1,024 or 3,072).
    channels : (int, int), default (16, 32)
        The CNN's two convolution widths (16 and 32 train 2.8x faster on a CPU than 32 and 64, for about one
        point of accuracy on 2,000 Fashion-MNIST images: 0.840 against 0.852).
    random_state : int
        Seeds the weights, the batches and the dropout masks of ``sample_proba``.
    """

    def __init__(self, architecture: str = "mlp", *, n_members: int = 1, mc_samples: int = 20, hidden: int = 128,
                 dropout: float = 0.3, epochs: int = 30, batch_size: int = 64, lr: float = 1e-3,
                 weight_decay: float = 1e-4, min_updates: int = 200, calibrate: bool = True,
                 image_shape: tuple[int, int, int] | None = None, channels: tuple[int, int] = (16, 32),
                 random_state: int = 0) -> None:
        self.architecture = architecture
        self.n_members = n_members
        self.mc_samples = mc_samples
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.min_updates = min_updates
        self.calibrate = calibrate
        self.image_shape = image_shape
        self.channels = channels
        self.random_state = random_state

    # -- fitting --------------------------------------------------------------

    def _check(self) -> None:
        if self.architecture not in ("mlp", "cnn"):
            raise InvalidParameterError(f"architecture must be 'mlp' or 'cnn', got {self.architecture!r}")
        for name in ("n_members", "mc_samples", "hidden", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidParameterError(f"{name} must be a positive integer, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise InvalidParameterError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def _train(self, X: np.ndarray, codes: np.ndarray, seed: int):
        """One network trained on (X, codes) from ``seed``: a fitted skorch NeuralNetClassifier."""
        torch = _torch()
        from skorch import NeuralNetClassifier

        torch.manual_seed(seed)
        batch = min(self.batch_size, len(X))
        epochs = max(self.epochs, math.ceil(self.min_updates / math.ceil(len(X) / batch)))
        net = NeuralNetClassifier(
            _module(self.architecture, X.shape[1], len(self.classes_), self.hidden, self.dropout, self.image_shape,
                    tuple(self.channels)),
            criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.AdamW, lr=self.lr,
            optimizer__weight_decay=self.weight_decay, max_epochs=epochs,
            batch_size=batch, train_split=None, iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(seed), device="cpu", verbose=0)
        return net.fit(X, codes)

    def fit(self, X: ArrayLike, y: ArrayLike) -> DeepClassifier:
        """Train ``n_members`` networks on all of (X, y); with ``calibrate``, first fit the temperature on a
        held-out fifth (networks trained on the rest, then discarded)."""
        self._check()
        X = np.require(X, np.float32, ["C", "W"])  # skorch hands it to PyTorch, which wants writable memory
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        codes = codes.astype(np.int64)
        self.temperature_ = 1.0
        if self.calibrate and len(self.classes_) > 1:
            held = _held_out(codes, self.random_state)
            if held is not None:
                nets = [self._train(X[~held], codes[~held], self.random_state + m) for m in range(self.n_members)]
                logits = np.stack([_logits(n, X[held]) for n in nets])
                self.temperature_ = _fit_temperature(logits, codes[held])
        self.members_ = [self._train(X, codes, self.random_state + m) for m in range(self.n_members)]
        return self

    # -- prediction -----------------------------------------------------------

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """The members' mean probability with dropout off, at the fitted temperature."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        return np.mean([_softmax(_logits(n, X) / self.temperature_) for n in self.members_], axis=0)

    def predict(self, X: ArrayLike) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def sample_proba(self, X: ArrayLike, n_samples: int | None = None) -> np.ndarray:
        """An (m, n_items, n_classes) stack: one row per ensemble member, or (one network) ``n_samples``
        (default ``mc_samples``) passes with dropout on, seeded by ``random_state`` (the same call gives the same
        stack; the global PyTorch random state is left as it was)."""
        torch = _torch()
        X = np.ascontiguousarray(X, dtype=np.float32)
        if len(self.members_) > 1:
            return np.stack([_softmax(_logits(n, X) / self.temperature_) for n in self.members_])
        n_samples = self.mc_samples if n_samples is None else n_samples
        net = self.members_[0]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            return _softmax(_passes(net, X, n_samples, dropout=True) / self.temperature_)


def _logits(net: Any, X: np.ndarray, dropout: bool = False, chunk: int = 4096) -> np.ndarray:
    """The network's logits in chunks, dropout layers on (one MC dropout pass) or off, gradients off."""
    return _passes(net, X, 1, dropout)[0]


def _passes(net: Any, X: np.ndarray, n: int, dropout: bool, chunk: int = 4096) -> np.ndarray:
    """``n`` passes' logits, shape (n, n_items, n_classes). The layers before the first dropout are the same in
    every pass (the CNN's convolutions), so they run once and only the rest runs ``n`` times."""
    torch = _torch()
    layers = list(net.module_)
    first = next((i for i, layer in enumerate(layers) if isinstance(layer, torch.nn.Dropout)), len(layers))
    trunk, head = torch.nn.Sequential(*layers[:first]), torch.nn.Sequential(*layers[first:])
    net.module_.eval()
    if dropout:
        for layer in head.modules():
            if isinstance(layer, torch.nn.Dropout):
                layer.train()
    out = np.empty((n, len(X), len(net.classes_)), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(X), chunk):
            # a read-only array (joblib's memory-mapped inputs) is copied: PyTorch wants writable memory
            features = trunk(torch.from_numpy(np.require(X[i:i + chunk], requirements="W")))
            for k in range(n):
                out[k, i:i + chunk] = head(features).numpy()
    net.module_.eval()
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _held_out(codes: np.ndarray, seed: int) -> np.ndarray | None:
    """A stratified fifth of the labels for the temperature, or None when there are too few (fewer than 25
    labels, a class with fewer than 2, or fewer than one per class in a fifth)."""
    counts = np.bincount(codes)
    present = int((counts > 0).sum())
    if len(codes) < 25 or counts[counts > 0].min() < 2 or math.ceil(0.2 * len(codes)) < present:
        return None  # a stratified fifth needs an item of every class
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(codes))
    _, test = train_test_split(rows, test_size=0.2, stratify=codes, random_state=seed)
    mask = np.zeros(len(codes), dtype=bool)
    mask[test] = True
    return mask


def _fit_temperature(logits: np.ndarray, codes: np.ndarray) -> float:
    """The temperature minimizing the held-out negative log-likelihood of the members' mean probability
    (a bounded 1-d search; SciPy's)."""
    from scipy.optimize import minimize_scalar

    def nll(log_t: float) -> float:
        p = np.mean([_softmax(z / np.exp(log_t)) for z in logits], axis=0)
        return float(-np.log(np.clip(p[np.arange(len(codes)), codes], 1e-12, None)).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded").x))


def mlp() -> DeepClassifier:
    """An MLP head over features or embeddings (MC dropout for the committee strategies)."""
    return DeepClassifier("mlp")


def cnn() -> DeepClassifier:
    """A small CNN for 28 x 28 grey or 32 x 32 images (MC dropout for the committee strategies)."""
    return DeepClassifier("cnn", epochs=15, min_updates=150)


def mc_dropout() -> DeepClassifier:
    """The CNN for images, scored by 20 passes with dropout on (BALD and the other committee strategies)."""
    return DeepClassifier("cnn", epochs=15, mc_samples=20, min_updates=150)


def ensemble() -> DeepClassifier:
    """A deep ensemble of 5 CNNs trained from different seeds."""
    return DeepClassifier("cnn", epochs=15, n_members=5, min_updates=150)


DEEP_MODELS = {"mlp": mlp, "cnn": cnn, "mc-dropout": mc_dropout, "ensemble": ensemble}
