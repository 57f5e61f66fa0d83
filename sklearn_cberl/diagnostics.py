"""Diagnostics of the stages: what a fusion keeps, how new an over-sampler's rows are.

:func:`fusion_report` measures what a fitted :class:`~sklearn_cberl.DJVAE` keeps of each
modality: linear probes of the labels from each modality's input, from the fused latent and
from both (cross-validated by dialogue), the reconstruction error per modality, and how much
of the latent each modality drives.

:func:`synthetic_diagnostics` asks how new an over-sampler's synthetic rows are: distances
and an independent judge.

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

__all__ = ["fusion_report", "synthetic_diagnostics"]


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


def _probe(features, y, groups, cv, random_state) -> float:
    """Cross-validated weighted F1 (%) of a logistic regression on ``features``, the folds
    keeping dialogues whole."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    n_groups = len(np.unique(groups))
    splitter = GroupKFold(n_splits=min(cv, n_groups))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    # Shuffle the dialogues into folds with a fixed seed (GroupKFold keeps their order).
    order = np.random.RandomState(random_state).permutation(len(y))
    pred = np.empty(len(y), dtype=object)
    pred[order] = cross_val_predict(model, features[order], y[order], groups=groups[order],
                                    cv=splitter)  # fmt: skip
    return 100 * f1_score(y.astype(str), pred.astype(str), average="weighted")


def fusion_report(djvae, X, y, *, cv: int = 5, random_state: int = 0) -> pd.DataFrame:
    """What a fitted DJVAE keeps of each modality, and what it adds.

    For each modality block (and for all of them together):

    * ``probe_input`` - cross-validated WAF1 (%) of a linear probe (standardised logistic
      regression) of ``y`` from the modality's own input columns;
    * ``probe_latent`` - the same probe from the fused latent (``fused_*``; the same value on
      every row);
    * ``probe_latent_and_input`` - from the latent next to the modality's input: what the
      latent adds to the modality (compare with ``probe_input``);
    * ``reconstruction_mse`` - mean squared error of the modality decoded from the posterior
      mean, in the standardised units DJVAE trains in (1.0 = no better than the mean);
    * ``latent_share`` - how much of the latent the modality drives: the squared change of the
      posterior mean when the modality alone is marked missing, as a share of the sum over
      modalities (it adds up to 1 over the modality rows);
    * ``n_features`` - the block's width.

    A fusion that keeps what a modality knows has ``probe_latent_and_input`` at least
    ``probe_input`` and, on the ``"all"`` row, ``probe_latent`` close to ``probe_input``; a
    modality whose ``latent_share`` is near 0 is ignored by the latent.

    Parameters
    ----------
    djvae : DJVAE
        Fitted.
    X : DataFrame or array-like
        Rows of the kind ``djvae`` was fitted on (e.g. validation rows).
    y : array-like of shape (n_samples,)
        Their labels.
    cv : int, default=5
        Folds of the probes (by dialogue; by row for a plain table).
    random_state : int, default=0
        Seeds the assignment of dialogues to folds.

    Returns
    -------
    DataFrame
        One row per modality of ``djvae.modalities_`` and ``"all"``.
    """
    import torch
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(djvae, "module_")
    y = np.asarray(y)
    conv, columns = djvae._validate(X, reset=False)
    groups = np.arange(conv.n_samples) if conv.is_plain else conv.dialogue
    latent = djvae.transform(X)
    latent = latent.filter(like="fused_").to_numpy() if hasattr(latent, "filter") else latent
    latent = np.asarray(latent, dtype=np.float64)[:, : djvae.n_components]
    values, present = djvae._standardise(conv, columns, fit=False)
    module = djvae.module_
    device = next(module.parameters()).device

    def encode(mask):
        with torch.no_grad():
            x = torch.as_tensor(values, device=device)
            mu, _ = module.encode(x, torch.as_tensor(mask, device=device))
            return mu, module.decode(mu)

    mu, decoded = encode(present)
    decoded = decoded.cpu().numpy()
    shifts = []
    for m in range(len(columns)):
        mask = present.copy()
        mask[m] = 0.0
        shifts.append(float(((encode(mask)[0] - mu) ** 2).sum()))
    total_shift = sum(shifts) or 1.0
    rows = {}
    offsets = np.cumsum([0] + [len(idx) for idx in columns.values()])
    for m, (name, idx) in enumerate(columns.items()):
        block = conv.X[:, idx].astype(np.float64)
        here = present[m].astype(bool)
        part = slice(offsets[m], offsets[m + 1])
        error = (decoded[here, part] - values[here, part]) ** 2
        rows[name] = {
            "n_features": len(idx),
            "probe_input": _probe(block, y, groups, cv, random_state),
            "probe_latent": np.nan,
            "probe_latent_and_input": _probe(np.hstack([latent, block]), y, groups, cv,
                                             random_state),  # fmt: skip
            "reconstruction_mse": float(error.mean()) if here.any() else np.nan,
            "latent_share": shifts[m] / total_shift,
        }
    inputs = conv.X[:, np.concatenate(list(columns.values()))].astype(np.float64)
    probe_latent = _probe(latent, y, groups, cv, random_state)
    for row in rows.values():
        row["probe_latent"] = probe_latent
    rows["all"] = {
        "n_features": inputs.shape[1],
        "probe_input": _probe(inputs, y, groups, cv, random_state),
        "probe_latent": probe_latent,
        "probe_latent_and_input": _probe(np.hstack([latent, inputs]), y, groups, cv,
                                         random_state),  # fmt: skip
        "reconstruction_mse": float(((decoded - values) ** 2)[:, :].mean()),
        "latent_share": 1.0,
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("modality")
