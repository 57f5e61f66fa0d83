"""What a text encoder reads for each utterance: its text, or its text after a dialogue window.

Torch-free data-model logic of :class:`~sklearn_cberl.features.TunedTextEncoder`. With a
context of ``k`` utterances, row ``i`` becomes the pair (the ``k`` utterances before it in
its own dialogue, ordered by ``turn``; the row itself), each written ``"Speaker: text"`` -
the input format of EmoBERTa (Kim & Vossen, 2021) and CoMPM (Lee & Lee, 2022). A window never
reaches into another dialogue, nor past the row itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..conversation import DIALOGUE, SPEAKER, TURN

__all__ = ["as_texts", "utterance_inputs"]


def as_texts(X, name: str = "X") -> list[str]:
    """Turn a 1-D array-like of strings (or a one-column frame/2-D array) into a list."""
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            raise ValueError(
                f"{name} is a DataFrame with {X.shape[1]} columns: expected one text column "
                "(select it, e.g. X['utterance'], or use sklearn_cberl.datasets.embed_text)."
            )
        X = X.iloc[:, 0]
    if isinstance(X, str):
        raise TypeError(f"{name} is a single string: expected a sequence of utterance texts.")
    values = np.asarray(X, dtype=object)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"{name} has shape {values.shape}: expected a 1-D sequence of texts.")
    if len(values) == 0:
        raise ValueError(f"{name} is empty: expected at least one utterance text.")
    texts = []
    for i, value in enumerate(values):
        if not isinstance(value, str):
            if value is None or (isinstance(value, float) and np.isnan(value)):
                raise ValueError(f"{name} has a missing text at position {i}.")
            raise TypeError(
                f"{name} has a {type(value).__name__} at position {i}: expected str texts."
            )
        texts.append(value)
    return texts


def utterance_inputs(X, *, text_column: str, context: int, name: str = "X"):
    """The encoder's input for every row of ``X``, in row order.

    Parameters
    ----------
    X : 1-D array-like of str, or DataFrame
        Utterance texts, or a frame holding ``text_column`` (plus ``dialogue_id``, ``turn``
        and optionally ``speaker`` when ``context > 0``). A one-column frame is read as the
        texts whatever its column's name.
    text_column : str
        The text column of a frame.
    context : int
        Number of preceding utterances of the same dialogue to put before each row.
    name : str, default="X"
        How error messages name the input.

    Returns
    -------
    targets : list of str
        The rows' own texts (``"Speaker: text"`` when ``context > 0`` and X has speakers).
    contexts : list of str or None
        The window before each row (``""`` for a dialogue's first turn); None when
        ``context == 0``.
    groups : ndarray or None
        The rows' dialogue ids when X has a ``dialogue_id`` column (cross-fitting folds and
        held-out validation keep dialogues whole), else None.
    """
    plain = not isinstance(X, pd.DataFrame) or (X.shape[1] == 1 and text_column not in X)
    if plain and context:
        raise ValueError(
            f"context={context} needs a DataFrame with the columns {DIALOGUE!r}, {TURN!r} "
            f"and {text_column!r} (and optionally {SPEAKER!r}); {name} is a plain sequence "
            "of texts."
        )
    if plain:  # texts, or a one-column frame of them whatever its column's name
        return as_texts(X, name), None, None
    if text_column not in X.columns:
        raise ValueError(
            f"{name} has no text column {text_column!r} (columns {list(X.columns)[:8]}): set "
            "text_column= to the column holding the utterance texts."
        )
    texts = as_texts(X[text_column], f"{name}[{text_column!r}]")
    groups = X[DIALOGUE].astype(str).to_numpy() if DIALOGUE in X.columns else None
    if not context:
        return texts, None, groups
    missing = [c for c in (DIALOGUE, TURN) if c not in X.columns]
    if missing:
        raise ValueError(
            f"context={context} needs the column(s) {missing} to find each utterance's "
            f"preceding turns; {name} has {list(X.columns)[:8]}."
        )
    if not pd.api.types.is_numeric_dtype(X[TURN]) or X[TURN].isna().any():
        raise ValueError(f"{name}[{TURN!r}] must hold numbers without gaps (the turn order).")
    if SPEAKER in X.columns:
        speakers = X[SPEAKER].astype(str).to_numpy()
        targets = [f"{s}: {t}" for s, t in zip(speakers, texts)]
    else:
        targets = texts
    order = pd.DataFrame({"d": groups, "t": X[TURN].to_numpy()}).sort_values(
        ["d", "t"], kind="stable"
    )
    contexts = [""] * len(texts)
    rows = order.index.to_numpy()
    starts = np.flatnonzero(np.r_[True, order["d"].to_numpy()[1:] != order["d"].to_numpy()[:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], len(rows)]):
        dialogue = rows[start:stop]  # this dialogue's rows in turn order
        for j, row in enumerate(dialogue):
            contexts[row] = " ".join(targets[r] for r in dialogue[max(0, j - context) : j])
    return targets, contexts, groups
