"""Building a classifier from an import path given on the command line or in a project's config."""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import TYPE_CHECKING, Any

from activelabel.errors import ModelImportError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = ["load_model", "default_model", "DEEP_NAMES"]

DEEP_NAMES = ("mlp", "cnn", "mc-dropout", "ensemble")


def load_model(path: str | None) -> Any:
    """A classifier from an import path (``package.module.Class`` or ``package.module:Class``), or one of
    :data:`DEEP_NAMES` (``mlp``, ``cnn``, ``mc-dropout``, ``ensemble``: PyTorch models); None: the default."""
    if not path:
        return default_model()
    if path in DEEP_NAMES:  # the PyTorch models by their short names (activelabel.models.deep, extra [torch])
        from activelabel.models.deep import DEEP_MODELS

        return DEEP_MODELS[path]()
    if "." not in path and ":" not in path:  # a name, not an import path: a typo of one of ours, most likely
        raise ModelImportError(f"unknown model {path!r}; give one of {', '.join(DEEP_NAMES)} or an import path "
                               "such as sklearn.linear_model.LogisticRegression")
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    try:
        factory = getattr(import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError, TypeError) as error:
        raise ModelImportError(f"cannot build model {path!r}: {error}") from None
    if not (isinstance(factory, type) or inspect.isfunction(factory)):  # builtins such as os.abort end the process
        raise ModelImportError(f"{path!r} is not a class or a Python function that builds a classifier")
    try:
        model = factory()
    except SystemExit:  # builtins.exit and the like would end the command without a word
        raise ModelImportError(f"cannot build model {path!r}: calling it ends the program") from None
    except Exception as error:  # needs arguments, or fails
        raise ModelImportError(f"cannot build model {path!r}: {error}") from None
    if not hasattr(model, "fit"):
        raise ModelImportError(f"{path!r} is not a scikit-learn estimator (it has no fit)")
    if not hasattr(model, "predict_proba"):
        raise ModelImportError(f"{path!r} has no predict_proba: the strategies score class probabilities, which a "
                               "regressor, or sklearn.svm.SVC without probability=True, does not give")
    return model


def default_model() -> Pipeline:
    """Standardized features into a multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
