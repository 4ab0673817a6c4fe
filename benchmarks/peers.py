"""Peer libraries' query strategies as activelabel callable strategies.

Each peer gets the same fitted model, pool, candidates (unlabeled, never
test items) and labeled set as activelabel's own strategies, and returns
``batch_size`` candidate indices. Peers are installed from
``benchmarks/requirements.txt``.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import clone


def _first(result):
    """modAL returns indices, or (indices, values) depending on the function."""
    return np.asarray(result[0] if isinstance(result, tuple) else result).ravel()


class Peer:
    """A named, picklable callable strategy wrapping one peer strategy."""

    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind

    def __call__(self, ctx) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            picks = np.asarray(getattr(self, f"_{self.kind}")(ctx)).astype(int)
        # Some peers return a duplicate now and then (scikit-activeml's TypiClust
        # on digits); keep the first of each and fill up at random so the batch
        # contract holds and every strategy labels the same number of items.
        _, first = np.unique(picks, return_index=True)
        picks = picks[np.sort(first)]
        if len(picks) < ctx.batch_size:
            rest = np.setdiff1d(ctx.candidates, picks)
            picks = np.concatenate([picks, ctx.rng.choice(rest, ctx.batch_size - len(picks), replace=False)])
        return picks

    # -- modAL ---------------------------------------------------------------

    def _modal_margin(self, ctx):
        from modAL.uncertainty import margin_sampling

        picked = _first(margin_sampling(ctx.model, ctx.X[ctx.candidates], n_instances=ctx.batch_size))
        return ctx.candidates[picked]

    def _modal_ranked_batch(self, ctx):
        from modAL.batch import uncertainty_batch_sampling
        from modAL.models import ActiveLearner

        learner = ActiveLearner(estimator=clone(ctx.model), X_training=ctx.X[ctx.labeled],
                                y_training=ctx.y_labeled)
        picked = _first(uncertainty_batch_sampling(learner, ctx.X[ctx.candidates], n_instances=ctx.batch_size))
        return ctx.candidates[picked]

    # -- scikit-activeml -----------------------------------------------------

    def _skactiveml(self, ctx, qs, needs_clf, clf_arg="clf"):
        from skactiveml.classifier import SklearnClassifier

        y = np.full(len(ctx.X), np.nan)
        y[ctx.labeled] = np.searchsorted(ctx.classes, ctx.y_labeled)
        kwargs = dict(candidates=ctx.candidates, batch_size=ctx.batch_size)
        if needs_clf:
            clf = SklearnClassifier(clone(ctx.model), classes=np.arange(len(ctx.classes)),
                                    random_state=int(ctx.rng.integers(2**31)))
            kwargs.update({clf_arg: clf, f"fit_{clf_arg}": True})
        return np.asarray(qs.query(ctx.X, y, **kwargs)).ravel()

    def _sk_margin(self, ctx):
        from skactiveml.pool import UncertaintySampling

        return self._skactiveml(ctx, UncertaintySampling(method="margin_sampling",
                                                          random_state=int(ctx.rng.integers(2**31))), True)

    def _sk_coreset(self, ctx):
        from skactiveml.pool import CoreSet

        return self._skactiveml(ctx, CoreSet(random_state=int(ctx.rng.integers(2**31))), False)

    def _sk_typiclust(self, ctx):
        from skactiveml.pool import TypiClust

        return self._skactiveml(ctx, TypiClust(random_state=int(ctx.rng.integers(2**31))), False)

    def _sk_probcover(self, ctx):
        from skactiveml.pool import ProbCover

        return self._skactiveml(ctx, ProbCover(n_classes=len(ctx.classes),
                                               random_state=int(ctx.rng.integers(2**31))), False)

    def _sk_clue(self, ctx):
        from skactiveml.pool import Clue

        return self._skactiveml(ctx, Clue(random_state=int(ctx.rng.integers(2**31))), True, clf_arg="estimator")

    def _sk_badge(self, ctx):
        from skactiveml.pool import Badge

        return self._skactiveml(ctx, Badge(random_state=int(ctx.rng.integers(2**31))), True)

    # -- small-text ----------------------------------------------------------

    def _small_text(self, ctx, qs):
        subset = np.concatenate([ctx.candidates, ctx.labeled])
        return np.asarray(qs.query(None, ctx.X, ctx.candidates, ctx.labeled,
                                   np.searchsorted(ctx.classes, ctx.y_labeled), n=ctx.batch_size,
                                   embeddings=ctx.X[subset], pbar=None)).ravel()

    def _st_kmeans(self, ctx):
        from small_text.query_strategies import EmbeddingKMeans

        return self._small_text(ctx, EmbeddingKMeans())

    def _st_coreset(self, ctx):
        from small_text.query_strategies import GreedyCoreset

        return self._small_text(ctx, GreedyCoreset())


PEERS = {
    "modal_margin": Peer("modal_margin", "modal_margin"),
    "modal_ranked_batch": Peer("modal_ranked_batch", "modal_ranked_batch"),
    "skal_margin": Peer("skal_margin", "sk_margin"),
    "skal_coreset": Peer("skal_coreset", "sk_coreset"),
    "skal_typiclust": Peer("skal_typiclust", "sk_typiclust"),
    "skal_probcover": Peer("skal_probcover", "sk_probcover"),
    "skal_clue": Peer("skal_clue", "sk_clue"),
    "skal_badge": Peer("skal_badge", "sk_badge"),
    "smalltext_kmeans": Peer("smalltext_kmeans", "st_kmeans"),
    "smalltext_coreset": Peer("smalltext_coreset", "st_coreset"),
}
