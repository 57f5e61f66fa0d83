"""How new are an over-sampler's synthetic rows? Distances and an independent judge.

An over-sampler that nudges copies of real rows adds little a classifier has not seen; one
whose rows leave their class adds label noise. :func:`synthetic_diagnostics` measures both,
per target class, for any sampler that reports ``sample_indices_`` (``EmoGANSampler``,
``ConversationSampler`` around imbalanced-learn's samplers):

* the median distance of a synthetic row to its *source* (the real row it was made from) and
  to the nearest real row of its target class, each relative to the median nearest-neighbour
  distance among the real rows of that class (a near-copy scores ~0, a row as far from its
  source as real rows of the class are from each other scores ~1), in the per-feature
  standardised space of the real rows;
* the accuracy of an independent judge - a classifier fitted on real rows the sampler never
  saw - on the synthetic rows (does a synthetic "fear" row look like fear?).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from .conversation import check_conversations

__all__ = ["synthetic_diagnostics"]


def _features(X) -> np.ndarray:
    return np.asarray(check_conversations(X).X, dtype=np.float64)


def synthetic_diagnostics(X, y, X_resampled, y_resampled, sample_indices, *, judge=None):
    """Per target class: how far synthetic rows are from their sources and from real rows,
    and how an independent judge labels them.

    Parameters
    ----------
    X, y : the real rows and labels the sampler was fitted on
    X_resampled, y_resampled : its output (real rows first, synthetic rows appended)
    sample_indices : array of int
        The sampler's ``sample_indices_``: the source row (index into ``X``) of every output
        row.
    judge : fitted classifier, default=None
        Independent of the sampler (fitted on other real rows); it must accept the feature
        matrix of ``X`` (no metadata columns). None leaves the judge column out.

    Returns
    -------
    DataFrame
        One row per class that received synthetic rows (and ``"all"``): ``n_synthetic``,
        ``to_source`` and ``to_nearest_real`` (medians, relative to ``real_nn``),
        ``real_nn`` (median nearest-neighbour distance among real rows of the class,
        standardised units) and ``judge_accuracy`` (%).
    """
    real = _features(X)
    out = _features(X_resampled)
    y, y_out = np.asarray(y), np.asarray(y_resampled)
    n = len(real)
    sources = np.asarray(sample_indices)[n:]
    scaler = StandardScaler().fit(real)
    real_s, new_s = scaler.transform(real), scaler.transform(out[n:])
    new_y = y_out[n:]
    rows = {}
    totals = {"to_source": [], "to_nearest_real": []}
    for label in pd.unique(new_y):
        new = new_s[new_y == label]
        own = real_s[y == label]
        if len(own) >= 2:
            distances, _ = NearestNeighbors(n_neighbors=2).fit(own).kneighbors(own)
            real_nn = float(np.median(distances[:, 1]))
        else:
            real_nn = float("nan")
        to_source = np.linalg.norm(new - real_s[sources[new_y == label]], axis=1)
        to_real = NearestNeighbors(n_neighbors=1).fit(own).kneighbors(new)[0][:, 0]
        rows[label] = {
            "n_synthetic": len(new),
            "to_source": float(np.median(to_source)) / real_nn,
            "to_nearest_real": float(np.median(to_real)) / real_nn,
            "real_nn": real_nn,
        }
        totals["to_source"].extend(to_source / real_nn)
        totals["to_nearest_real"].extend(to_real / real_nn)
        if judge is not None:
            pred = judge.predict(out[n:][new_y == label])
            rows[label]["judge_accuracy"] = 100 * float(np.mean(pred == label))
    if rows:
        summary = {
            "n_synthetic": int(len(new_y)),
            "to_source": float(np.median(totals["to_source"])),
            "to_nearest_real": float(np.median(totals["to_nearest_real"])),
            "real_nn": float("nan"),
        }
        if judge is not None:
            summary["judge_accuracy"] = 100 * float(np.mean(judge.predict(out[n:]) == new_y))
        rows["all"] = summary
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("class")
