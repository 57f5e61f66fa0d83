"""The feature extractors' inputs: raw streams, possibly in a frame with dialogue ids.

The extractors read raw streams (texts, audio, clips), not conversation frames; a frame's
``dialogue_id`` column still lets their validation hold-out keep dialogues whole
(:func:`~sklearn_cberl.conversation.validation_split`).
"""

from __future__ import annotations

import pandas as pd

from ..conversation import DIALOGUE, METADATA_COLUMNS

__all__ = ["media_and_dialogues"]


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
