"""``ConversationSampler``: any imbalanced-learn over-sampler on a conversation frame."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pandas as pd
from imblearn.base import BaseSampler
from imblearn.utils import check_sampling_strategy
from sklearn.base import _fit_context, clone
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, StrOptions

from ..conversation import (
    PLACEMENTS,
    assemble_resampled,
    check_conversations,
    check_labels,
    densify_sparse_frame,
    wrap_like,
)

__all__ = ["ConversationSampler"]


def _check_neighbours(sampler, y) -> None:
    """Clear error when a SMOTE-style sampler has too few samples of a class to interpolate.

    imbalanced-learn leaves this case to ``NearestNeighbors.kneighbors``, whose message
    names neither the class nor ``k_neighbors``.
    """
    k = getattr(sampler, "k_neighbors", None)
    if not isinstance(k, Integral) or isinstance(k, bool):
        return  # a NearestNeighbors instance, or no such parameter: left to the sampler
    y = np.asarray(y)
    strategy = check_sampling_strategy(sampler.sampling_strategy, y, "over-sampling")
    labels, counts = np.unique(y, return_counts=True)
    count = dict(zip(labels.tolist(), counts.tolist()))
    small = {c: count[c] for c, n in strategy.items() if n > 0 and count[c] <= k}
    if not small:
        return
    label, n = min(small.items(), key=lambda item: item[1])
    lower = f"lower `k_neighbors` to at most {n - 1}, " if n > 1 else ""
    raise ValueError(
        f"{type(sampler).__name__}(k_neighbors={k}) needs more than k_neighbors samples of "
        f"every class it over-samples, but class {label!r} has {n}: {lower}leave the class "
        "out of `sampling_strategy`, or use EmoGANSampler or RandomOverSampler, which handle "
        "classes of any size."
    )


class ConversationSampler(BaseSampler):
    """Run any imbalanced-learn over-sampler on the features of a conversation frame.

    ``SMOTE`` and friends validate X as one numeric matrix, so on a conversation frame they
    either fail (string dialogue ids) or interpolate the metadata into nonsense (a dialogue
    id of 3.7). This wrapper hands the sampler the feature columns only and gives every
    synthetic row valid metadata, exactly like :class:`EmoGANSampler`:

    * the *source* of a synthetic row is the real row it was copied from when the sampler
      reports ``sample_indices_`` (``RandomOverSampler``), otherwise the nearest real row of
      the same class in the standardised feature space (for SMOTE-style samplers one end of
      the interpolation segment, or its closest neighbour);
    * ``placement="after_source"`` puts it in the source's dialogue right after it, with the
      source's speaker; ``"standalone"`` makes it a one-utterance dialogue.

    Plain arrays and frames without metadata pass straight to the wrapped sampler.

    Parameters
    ----------
    sampler : imbalanced-learn over-sampler
        Cloned in ``fit_resample``; its ``sampling_strategy`` decides how many rows to add.
    placement : {"after_source", "standalone"}, default="after_source"

    Attributes
    ----------
    sampler_ : estimator
        The fitted clone.
    sample_indices_ : ndarray of shape (n_resampled,) or None
        Source row of every output row (real rows map to themselves); None for a plain
        table when the wrapped sampler does not report its sources.
    synthetic_mask_ : ndarray of bool, shape (n_resampled,)
    sampling_strategy_ : dict
        Class label -> number of rows the wrapped sampler was asked to add.
    n_features_in_ : int
        Number of columns of ``X`` (metadata columns included).
    feature_names_in_ : ndarray of str
        Their names, for DataFrame input.
    """

    # The wrapped sampler decides the counts; this wrapper only routes columns and metadata
    # (as imbalanced-learn's FunctionSampler, which also bypasses sampling_strategy).
    _sampling_type = "bypass"
    _parameter_constraints: dict = {
        "sampler": [HasMethods(["fit_resample"])],
        "placement": [StrOptions(set(PLACEMENTS))],
    }

    def __init__(self, sampler=None, placement="after_source"):
        self.sampler = sampler
        self.placement = placement

    @_fit_context(prefer_skip_nested_validation=False)  # the wrapped sampler validates itself
    def fit_resample(self, X, y):
        """Resample the feature columns with the wrapped sampler; carry the metadata.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            A conversation frame, a frame without metadata columns, or a numeric array.
        y : array-like of shape (n_samples,)
            Emotion labels.

        Returns
        -------
        X_resampled, y_resampled
            Real rows first and unchanged, then the synthetic rows (same containers).
        """
        check_labels(y)
        conv = check_conversations(densify_sparse_frame(X), estimator=self, reset=True)
        y_array = np.asarray(y)
        if conv.is_plain:  # no metadata to carry: the wrapped sampler's own output
            self.sampler_ = clone(self.sampler)
            _check_neighbours(self.sampler_, y_array)
            X_res, y_res = self.sampler_.fit_resample(X, y)
            self.sampling_strategy_ = getattr(self.sampler_, "sampling_strategy_", {})
            self.sample_indices_ = getattr(self.sampler_, "sample_indices_", None)
            self.synthetic_mask_ = np.arange(len(X_res)) >= conv.n_samples
            return X_res, y_res
        features, y_res = self._fit_resample(conv.X, y_array)
        X_out = assemble_resampled(
            X, conv, features.astype(conv.X.dtype, copy=False), self.sample_indices_, self.placement
        )
        index = X_out.index if isinstance(X_out, pd.DataFrame) else None
        return X_out, wrap_like(y_res, y, index=index)

    def _fit_resample(self, X, y):
        """Resample the numeric feature matrix; record each synthetic row's source row."""
        self.sampler_ = clone(self.sampler)
        _check_neighbours(self.sampler_, y)
        features, y_res = self.sampler_.fit_resample(X, y)
        features, y_res = np.asarray(features), np.asarray(y_res)
        self.sampling_strategy_ = getattr(self.sampler_, "sampling_strategy_", {})
        n = len(X)
        if not np.array_equal(features[:n], X):
            raise ValueError(  # every imblearn over-sampler keeps the real rows first
                f"{type(self.sampler).__name__} did not return the original rows first; "
                "ConversationSampler supports over-samplers only."
            )
        if hasattr(self.sampler_, "sample_indices_"):
            sources = np.asarray(self.sampler_.sample_indices_)[n:]
        elif len(features) == n:  # nothing to add (already balanced)
            sources = np.zeros(0, dtype=np.int64)
        else:  # SMOTE-style: the nearest real row of the same class is the source
            scaler = StandardScaler().fit(X)
            real, new = scaler.transform(X), scaler.transform(features[n:])
            sources = np.empty(len(new), dtype=np.int64)
            for label in np.unique(y_res[n:]):
                rows = np.flatnonzero(y == label)
                todo = np.flatnonzero(y_res[n:] == label)
                nearest = NearestNeighbors(n_neighbors=1).fit(real[rows])
                sources[todo] = rows[nearest.kneighbors(new[todo], return_distance=False)[:, 0]]
        self.sample_indices_ = np.concatenate([np.arange(n), sources])
        self.synthetic_mask_ = np.arange(len(y_res)) >= n
        return features, y_res

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.string = True  # dialogue ids and speakers may be strings
        return tags
