"""The feature extractors' validation hold-out: whole dialogues when known, else rows.

The extractors read raw streams (texts, audio, clips), not conversation frames, so the
package's frame-level :func:`~sklearn_cberl.conversation.validation_split` does not apply;
their hold-out still goes through the one dialogue-level split,
:func:`~sklearn_cberl.conversation.split_dialogues`, on dialogue ids when the input carries
them and on row ids otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..conversation import DIALOGUE, METADATA_COLUMNS, split_dialogues

__all__ = ["held_out_rows", "media_and_dialogues"]


def media_and_dialogues(X):
    """Split a frame into its stream columns and its dialogue ids.

    Parameters
    ----------
    X : object
        An extractor's input. A :class:`~pandas.DataFrame` loses its metadata columns
        (``dialogue_id``, ``speaker``, ``turn``); any other input is returned as it is.

    Returns
    -------
    X : object
        The input without metadata columns.
    dialogues : ndarray or None
        The ``dialogue_id`` column, or None when the input has none.
    """
    if not isinstance(X, pd.DataFrame):
        return X, None
    dialogues = X[DIALOGUE].to_numpy() if DIALOGUE in X.columns else None
    metadata = [c for c in METADATA_COLUMNS if c in X.columns]
    return (X.drop(columns=metadata) if metadata else X), dialogues


def held_out_rows(n_rows, dialogues, fraction, random_state):
    """Rows ``(kept, held)`` with ``fraction`` of the dialogues held out for validation.

    Parameters
    ----------
    n_rows : int
    dialogues : array-like of shape (n_rows,) or None
        Each row's dialogue id; None makes every row its own dialogue.
    fraction : float in (0, 1)
    random_state : int, RandomState instance or None

    Returns
    -------
    (kept, held) or None
        Sorted row indices (a dialogue is always on one side); None when fewer than two
        dialogues exist (nothing can be held out: train without validation).
    """
    ids = np.arange(n_rows) if dialogues is None else np.asarray(dialogues)
    distinct = np.unique(ids)  # sorted: the split does not depend on the row order
    if len(distinct) < 2:
        return None
    _, held = split_dialogues(distinct, fraction, random_state)
    in_valid = np.isin(ids, np.asarray(held, dtype=ids.dtype))
    return np.flatnonzero(~in_valid), np.flatnonzero(in_valid)
