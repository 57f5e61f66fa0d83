"""Field layouts of the pre-extracted MERC feature pickles, and reading them into named fields.

MERC papers share their features as one pickled tuple of per-dialogue dicts. Two layouts are
in use; the field orders below are those of the public dataloaders that read them:

* ``"dialoguegcn"`` - DialogueGCN (``declare-lab/conv-emotion``, ``DialogueGCN/dataloader.py``,
  ``IEMOCAPDataset``) and MMGCN (``hujingwen6666/MMGCN``, ``dataloader.py``)::

      videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual,
      videoSentence, trainVid, testVid

  IEMOCAP text/audio/visual are 100/100/512-d. MMGCN's MELD pickle
  (``MELD_features_raw1.pkl``, ``MELDDataset``) has one more trailing field.
* ``"dialoguegcn-novisual"`` - DialogueRNN/DialogueGCN's MELD pickle (``MELDDataset`` in
  ``DialogueGCN/dataloader.py``): no visual stream, sentiment labels trailing::

      videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoSentence,
      trainVid, testVid, videoLabelsSentiment

* ``"sdt"`` - SDT (``butterfliesss/SDT``, ``dataloader.py``) and CBERL::

      videoIDs, videoSpeakers, videoLabels, videoText, roberta2, roberta3, roberta4,
      videoAudio, videoVisual, videoSentence, trainVid, testVid

  MELD with one extra trailing field.

Each ``video*`` field is a dict ``dialogue id -> per-utterance list``.

This module knows the tuples (which field is where, how splits and speakers are stored);
:mod:`._pickles` turns the named fields into data-model frames.

.. warning::
   Unpickling executes code chosen by whoever wrote the file. Only load pickles from a
   source you trust.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd

__all__ = ["LAYOUTS", "BLOCK_FIELDS", "read_pickle", "detect_layout", "split_ids", "speaker_values"]

#: Field names of each layout (without the optional trailing field of MELD pickles).
LAYOUTS = {
    "dialoguegcn": (
        "videoIDs",
        "videoSpeakers",
        "videoLabels",
        "videoText",
        "videoAudio",
        "videoVisual",
        "videoSentence",
        "trainVid",
        "testVid",
    ),
    "dialoguegcn-novisual": (
        "videoIDs",
        "videoSpeakers",
        "videoLabels",
        "videoText",
        "videoAudio",
        "videoSentence",
        "trainVid",
        "testVid",
    ),
    "sdt": (
        "videoIDs",
        "videoSpeakers",
        "videoLabels",
        "videoText",
        "roberta2",
        "roberta3",
        "roberta4",
        "videoAudio",
        "videoVisual",
        "videoSentence",
        "trainVid",
        "testVid",
    ),
}
#: Feature field of each block name (columns ``<block>_<i>``).
BLOCK_FIELDS = {
    "text": "videoText",
    "audio": "videoAudio",
    "visual": "videoVisual",
    "roberta2": "roberta2",
    "roberta3": "roberta3",
    "roberta4": "roberta4",
}


def read_pickle(path):
    """The tuple of fields stored in a feature pickle (refuses anything else)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No feature pickle at {path!r}.")
    with open(path, "rb") as handle:
        # latin1: the DialogueRNN/DialogueGCN pickles were written by Python 2 and hold numpy
        # arrays, whose byte strings only decode losslessly this way.
        data = pickle.load(handle, encoding="latin1")
    if not isinstance(data, (tuple, list)):
        raise TypeError(
            f"{path!r} holds a {type(data).__name__}: expected the tuple of per-dialogue dicts "
            f"of a MERC feature pickle (layouts {sorted(LAYOUTS)})."
        )
    return tuple(data)


def _looks_like_sentences(field) -> bool:
    """True for a dict whose values are lists of strings (a ``videoSentence`` field)."""
    if not isinstance(field, dict) or not field:
        return False
    first = next(iter(field.values()))
    return isinstance(first, (list, tuple)) and len(first) > 0 and isinstance(first[0], str)


def detect_layout(data, layout, path) -> dict:
    """Name the fields of ``data`` by its layout (``layout=None``: detect it); the layout
    name is under the key ``"_layout"``."""
    n = len(data)
    if layout is None:
        if n in (9, 10):
            # DialogueRNN's MELD pickle is also 9 fields long, but field 5 holds sentences
            # where the DialogueGCN layout holds visual features.
            layout = (
                "dialoguegcn-novisual"
                if n == 9 and _looks_like_sentences(data[5])
                else "dialoguegcn"
            )
        elif n in (12, 13):
            layout = "sdt"
        else:
            raise ValueError(
                f"{path!r} holds a tuple of {n} fields: expected 9/10 (DialogueGCN layout), "
                "9 (DialogueRNN MELD layout, no visual) or 12/13 (SDT/CBERL layout); pass "
                "layout= to force one."
            )
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r}: expected None or one of {sorted(LAYOUTS)}.")
    names = LAYOUTS[layout]
    if n not in (len(names), len(names) + 1):
        raise ValueError(
            f"{path!r} holds {n} fields but layout={layout!r} has {len(names)} "
            f"(+1 optional trailing field): {', '.join(names)}."
        )
    fields = dict(zip(names, data))
    fields["_layout"] = layout
    return fields


def split_ids(field, name):
    """The dialogue ids of a ``trainVid`` / ``testVid`` field, as a list."""
    if isinstance(field, (set, frozenset)):
        # Some pickles store the splits as sets: sort so the output order is reproducible.
        return sorted(field, key=str)
    if isinstance(field, (list, tuple, np.ndarray, pd.Index)):
        return list(field)
    raise TypeError(f"Field {name!r} is a {type(field).__name__}: expected a list of dialogue ids.")


def speaker_values(speakers) -> list:
    """Speakers of one dialogue as strings (a one-hot vector becomes the index of the one)."""
    out = []
    for s in speakers:
        if isinstance(s, str):
            out.append(s)
        else:
            s = np.asarray(s)
            # MELD stores each speaker as a one-hot vector over the recurring characters.
            out.append(str(int(np.argmax(s))) if s.ndim == 1 and s.size > 1 else str(s.item()))
    return out
