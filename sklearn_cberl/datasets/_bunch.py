"""What every dataset loader shares: the seeded dialogue hold-out and the returned Bunch.

The pickle, MELD-CSV and CMU-MOSI loaders all return the same
``X_/y_/sentences_{train,valid,test}`` :class:`~sklearn.utils.Bunch` and carve validation
dialogues out of the training ones the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from sklearn.utils import Bunch

from ..conversation import split_dialogues

__all__ = ["data_dir", "holdout_dialogues", "make_bunch"]


def data_dir(path, env: str, what: str) -> Path:
    """``path``, or the directory named by the environment variable ``env`` when None."""
    if path is None:
        path = os.environ.get(env)
        if not path:
            raise ValueError(
                f"path=None and the {env} environment variable is not set: pass the "
                f"directory holding {what}."
            )
    return Path(path)


def holdout_dialogues(dialogue_ids, valid_size, random_state):
    """Split dialogue ids into (train, valid): ``valid_size`` of the *dialogues*, seeded.

    IEMOCAP has no official validation split; the paper (like DialogueGCN) holds out 10 %
    of the training dialogues. Splitting dialogues, not utterances, keeps every
    conversation on one side; the split is the package's one dialogue hold-out
    (:func:`sklearn_cberl.conversation.split_dialogues`), checked for a loader's arguments.
    """
    dialogue_ids = list(dialogue_ids)
    if isinstance(valid_size, bool) or not isinstance(valid_size, (int, float, np.number)):
        raise ValueError(f"valid_size={valid_size!r}: expected a float in [0, 1) or an int.")
    if valid_size == 0:
        return dialogue_ids, []
    if isinstance(valid_size, float) and not 0 < valid_size < 1:
        raise ValueError(f"valid_size={valid_size!r}: expected a float in [0, 1) or an int.")
    if len(dialogue_ids) < 2:
        raise ValueError(
            f"Cannot hold out validation dialogues from {len(dialogue_ids)} training "
            "dialogue(s); use valid_size=0."
        )
    return split_dialogues(dialogue_ids, valid_size, random_state)


def make_bunch(splits: dict, class_names, descr: str, **extra) -> Bunch:
    """The Bunch every loader returns.

    ``splits`` maps "train"/"valid"/"test" to ``(X, y, sentences)``.
    """
    bunch = Bunch(class_names=list(class_names), DESCR=descr, **extra)
    for name in ("train", "valid", "test"):
        X, y, sentences = splits[name]
        bunch[f"X_{name}"] = X
        bunch[f"y_{name}"] = y
        bunch[f"sentences_{name}"] = sentences
    return bunch
