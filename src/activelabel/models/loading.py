"""Building a classifier from an import path given on the command line or in a project's config."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from activelabel.errors import ModelImportError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = ["load_model", "default_model"]


def load_model(path: str | None) -> Any:
    """A classifier from an import path (``package.module.Class`` or ``package.module:Class``); None: the default."""
    if not path:
        return default_model()
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    try:
        factory = getattr(import_module(module_name), attr)
        model = factory()
    except (ImportError, AttributeError, ValueError, TypeError) as error:
        raise ModelImportError(f"cannot build model {path!r}: {error}") from None
    if not hasattr(model, "fit"):
        raise ModelImportError(f"{path!r} is not a scikit-learn estimator (it has no fit)")
    return model


def default_model() -> Pipeline:
    """Standardized features into a multinomial logistic regression."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
