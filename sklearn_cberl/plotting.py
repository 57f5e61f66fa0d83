"""Figures of the paper, as matplotlib PNGs: confusion matrix, F1 bars, t-SNE, training curves.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so plotting
never changes the user's global backend or opens windows on a headless machine; every function
returns the figure and saves it when ``path`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from sklearn.manifold import TSNE
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import unique_labels

__all__ = [
    "plot_confusion_matrix",
    "plot_f1_bars",
    "plot_tsne",
    "plot_history",
    "tsne_embedding",
]


def _save(fig: Figure, path) -> Figure:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def plot_confusion_matrix(
    y_true, y_pred, labels=None, *, normalize="true", title=None, path=None
) -> Figure:
    """Confusion matrix (paper Fig. 6): rows = true emotion, columns = predicted.

    By default each row is normalised to the share of that emotion's utterances predicted as
    each class (its diagonal is the class's recall), with a colour bar: raw counts colour a
    rare class's row uniformly dark, whatever its errors.

    Parameters
    ----------
    y_true, y_pred : array-like
        True and predicted labels.
    labels : sequence, default=None
        Class order; default all labels, sorted.
    normalize : {"true", "pred", "all"} or None, default="true"
        As in :func:`sklearn.metrics.confusion_matrix`; None shows counts.
    title : str, default=None
    path : path-like, default=None
        Where to save the PNG.
    """
    labels = list(unique_labels(y_true, y_pred) if labels is None else labels)
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize)
    # Cell values stay readable up to ~25 classes; beyond that the colours carry the matrix
    # and the figure stops growing (a text per cell made 150 labels take ~40 s to draw).
    n = min(len(labels), 40)
    fig = Figure(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n))
    ax = fig.add_subplot()
    display = ConfusionMatrixDisplay(matrix, display_labels=[str(c) for c in labels]).plot(
        ax=ax,
        colorbar=True,
        include_values=len(labels) <= 25,
        values_format=".0%" if normalize else "d",
        xticks_rotation=45,
    )
    if normalize:
        display.im_.set_clim(0, 1)  # the same colour means the same share in every figure
        display.figure_.axes[-1].yaxis.set_major_formatter(PercentFormatter(1.0))
    display.figure_.axes[-1].set_ylabel(
        {"true": "share of the true class", "pred": "share of the predicted class",
         "all": "share of all utterances"}.get(normalize, "utterances")
    )  # fmt: skip
    ax.set_title(
        title or ("Confusion matrix (rows normalised)" if normalize else "Confusion matrix")
    )
    return _save(fig, path)


def plot_f1_bars(reports: Mapping[str, pd.DataFrame], *, title=None, path=None) -> Figure:
    """Per-class F1 of several models side by side (one bar group per emotion).

    Parameters
    ----------
    reports : dict of str -> DataFrame
        Model name -> :func:`sklearn_cberl.metrics.emotion_report` table.
    """
    names = list(reports)
    classes = [c for c in reports[names[0]].index if c not in ("weighted", "macro")]
    width = 0.8 / len(names)
    fig = Figure(figsize=(1.5 + 1.1 * len(classes), 4))
    ax = fig.add_subplot()
    x = np.arange(len(classes))
    for i, name in enumerate(names):
        f1 = reports[name].reindex(classes)["f1"].to_numpy()
        ax.bar(x + (i - (len(names) - 1) / 2) * width, f1, width, label=name)
    ax.set_xticks(x, classes, rotation=30)
    ax.set_ylabel("F1 (%)")
    ax.set_title(title or "Per-class F1")
    ax.legend(fontsize="small")
    return _save(fig, path)


def tsne_embedding(embeddings, *, max_points: int = 2000, random_state=0, labels=None):
    """2-D t-SNE of at most ``max_points`` rows (a stratified-free uniform subsample).

    Returns ``(points, index)``: the 2-D coordinates and the row indices used, so callers can
    colour them; subsampling keeps t-SNE to seconds on CPU.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    rng = check_random_state(random_state)
    n = embeddings.shape[0]
    index = np.sort(rng.choice(n, size=min(n, max_points), replace=False))
    perplexity = float(min(30.0, max(2.0, (len(index) - 1) / 3)))
    points = TSNE(
        n_components=2, perplexity=perplexity, init="pca", random_state=rng.randint(2**31 - 1)
    ).fit_transform(embeddings[index])
    return points, index


def plot_tsne(
    panels: Mapping[str, tuple],
    *,
    max_points: int = 2000,
    random_state=0,
    title=None,
    path=None,
) -> Figure:
    """t-SNE panels coloured by emotion (paper Figs. 7 and 9).

    Parameters
    ----------
    panels : dict of str -> (embeddings, labels)
        Panel title -> an (n, d) array and the n labels to colour by. Each panel is
        subsampled to ``max_points``.
    """
    fig = Figure(figsize=(4.2 * len(panels), 4.2))
    all_labels = sorted({str(v) for _, labels in panels.values() for v in np.asarray(labels)})
    colours = {c: f"C{i % 10}" for i, c in enumerate(all_labels)}
    for i, (name, (embeddings, labels)) in enumerate(panels.items()):
        ax = fig.add_subplot(1, len(panels), i + 1)
        points, index = tsne_embedding(embeddings, max_points=max_points, random_state=random_state)
        labels = np.asarray(labels).astype(str)[index]
        for c in all_labels:
            sel = labels == c
            if sel.any():
                ax.scatter(*points[sel].T, s=4, c=colours[c], label=c, alpha=0.7)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.axes[-1].legend(markerscale=3, fontsize="small", loc="center left", bbox_to_anchor=(1, 0.5))
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_history(history: Sequence[Mapping], *, keys=None, title=None, path=None) -> Figure:
    """Training curves from an estimator's ``history_`` (a list of per-epoch dicts).

    Every numeric key (or those in ``keys``) gets its own line; an ``epoch`` key, when
    present, is the x axis.
    """
    frame = pd.DataFrame(list(history))
    x = frame.pop("epoch") if "epoch" in frame else pd.Series(np.arange(1, len(frame) + 1))
    numeric = [k for k in frame if pd.api.types.is_numeric_dtype(frame[k])]
    keys = [k for k in (keys or numeric) if k in frame]
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    for key in keys:
        ax.plot(x, frame[key], label=key)
    ax.set_xlabel("epoch")
    ax.set_title(title or "Training history")
    if keys:
        ax.legend(fontsize="small")
    return _save(fig, path)
