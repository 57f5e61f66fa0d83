"""Metrics in the shape of the paper's Tables I-II: per-class Acc/F1, WAA, WAF1."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score, precision_recall_fscore_support
from sklearn.utils.multiclass import unique_labels

__all__ = ["emotion_report", "format_report", "weighted_accuracy", "weighted_f1"]


def weighted_accuracy(y_true, y_pred, labels=None) -> float:
    """WAA: per-class accuracy (recall) averaged with weights = class support in ``y_true``.

    With support weights this equals plain accuracy over the labels considered; MERC
    papers report it under this name.
    """
    _, recall, _, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return float(np.average(recall, weights=support)) if support.sum() else 0.0


def weighted_f1(y_true, y_pred, labels=None) -> float:
    """WAF1: per-class F1 averaged with weights = class support in ``y_true``."""
    return float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0))


def emotion_report(y_true, y_pred, labels=None, *, percent: bool = True) -> pd.DataFrame:
    """Per-class accuracy and F1 plus WAA, WAF1 and macro-F1, as in the paper's Tables I-II.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        True and predicted emotion labels (strings or ints).
    labels : sequence, default=None
        Classes to report, in this column order; default all classes in either array,
        sorted.
    percent : bool, default=True
        Report values in percent (as the paper does) rather than fractions.

    Returns
    -------
    DataFrame
        One row per class (columns ``acc``, ``f1``, ``support``) followed by the rows
        ``WAA/WAF1`` (support-weighted) and ``macro`` (unweighted). Print it with
        :func:`format_report`, or ``df.T`` for the paper's wide layout.
    """
    if labels is None:
        labels = unique_labels(y_true, y_pred)
    labels = list(labels)
    _, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    scale = 100.0 if percent else 1.0
    table = pd.DataFrame(
        {"acc": recall * scale, "f1": f1 * scale, "support": support},
        index=pd.Index([str(c) for c in labels], name="emotion"),
    )
    weights = support if support.sum() else None
    table.loc["weighted"] = [
        np.average(recall, weights=weights) * scale,
        np.average(f1, weights=weights) * scale,
        support.sum(),
    ]
    table.loc["macro"] = [recall.mean() * scale, f1.mean() * scale, support.sum()]
    table["support"] = table["support"].astype(int)
    return table


def format_report(table: pd.DataFrame, digits: int = 2) -> str:
    """Plain-text rendering of :func:`emotion_report` with WAA / WAF1 spelled out."""
    body = table.to_string(float_format=lambda v: f"{v:.{digits}f}")
    weighted = table.loc["weighted"]
    macro = table.loc["macro"]
    summary = (
        f"WAA {weighted['acc']:.{digits}f}  WAF1 {weighted['f1']:.{digits}f}  "
        f"macro-F1 {macro['f1']:.{digits}f}  (n={int(weighted['support'])})"
    )
    return f"{body}\n{summary}"
