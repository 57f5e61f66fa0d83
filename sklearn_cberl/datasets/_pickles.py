"""Loaders for the pre-extracted MERC feature pickles (IEMOCAP, MELD).

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

Each ``video*`` field is a dict ``dialogue id -> per-utterance list``. Label ids follow the
dataloaders' comments: IEMOCAP ``{'hap': 0, 'sad': 1, 'neu': 2, 'ang': 3, 'exc': 4,
'fru': 5}``; MELD ``{'neutral': 0, 'surprise': 1, 'fear': 2, 'sadness': 3, 'joy': 4,
'disgust': 5, 'anger': 6}``. IEMOCAP speakers are ``'M'``/``'F'``; MELD speakers are one-hot
vectors (decoded here to the index of the one).

.. warning::
   Unpickling executes code chosen by whoever wrote the file. Only load pickles from a
   source you trust.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.utils import Bunch

from ..conversation import DIALOGUE, SPEAKER, TURN

__all__ = ["load_iemocap", "load_meld", "IEMOCAP_CLASSES", "MELD_PICKLE_CLASSES", "LAYOUTS"]

#: IEMOCAP's six emotions in the pickles' label-id order (hap, sad, neu, ang, exc, fru).
IEMOCAP_CLASSES = ("happy", "sad", "neutral", "angry", "excited", "frustrated")
#: MELD's seven emotions in the pickles' label-id order.
MELD_PICKLE_CLASSES = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")

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
_BLOCK_FIELDS = {
    "text": "videoText",
    "audio": "videoAudio",
    "visual": "videoVisual",
    "roberta2": "roberta2",
    "roberta3": "roberta3",
    "roberta4": "roberta4",
}

_UNSAFE = (
    "Unpickling runs code chosen by the file's author: only load files from a source you trust."
)


# --------------------------------------------------------------------------------------
# Shared by every loader: the Bunch shape and the seeded validation hold-out.
# --------------------------------------------------------------------------------------
def holdout_dialogues(dialogue_ids, valid_size, random_state):
    """Split dialogue ids into (train, valid): ``valid_size`` of the *dialogues*, seeded.

    IEMOCAP has no official validation split; the paper (like DialogueGCN) holds out 10 %
    of the training dialogues. Splitting dialogues, not utterances, keeps every
    conversation on one side.
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
    train, valid = train_test_split(
        dialogue_ids, test_size=valid_size, random_state=random_state, shuffle=True
    )
    # Keep the file's dialogue order inside each side (deterministic, easy to read).
    chosen = set(valid)
    return [d for d in dialogue_ids if d not in chosen], [d for d in dialogue_ids if d in chosen]


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


# --------------------------------------------------------------------------------------
# Pickles
# --------------------------------------------------------------------------------------
def _read_pickle(path):
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


def _detect_layout(data, layout, path) -> dict:
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


def _split_ids(field, name):
    if isinstance(field, (set, frozenset)):
        # Some pickles store the splits as sets: sort so the output order is reproducible.
        return sorted(field, key=str)
    if isinstance(field, (list, tuple, np.ndarray, pd.Index)):
        return list(field)
    raise TypeError(f"Field {name!r} is a {type(field).__name__}: expected a list of dialogue ids.")


def _speaker_values(speakers) -> list:
    out = []
    for s in speakers:
        if isinstance(s, str):
            out.append(s)
        else:
            s = np.asarray(s)
            # MELD stores each speaker as a one-hot vector over the recurring characters.
            out.append(str(int(np.argmax(s))) if s.ndim == 1 and s.size > 1 else str(s.item()))
    return out


def _frames(fields, ids, blocks, class_names, split):
    """Build (X, y, sentences) for one split, dialogue by dialogue."""
    labels_field = fields["videoLabels"]
    sentence_field = fields.get("videoSentence")
    meta, feats, labels, sentences = [], {b: [] for b in blocks}, [], []
    widths = {}
    for vid in ids:
        if vid not in labels_field:
            raise ValueError(f"Dialogue {vid!r} of {split!r} has no entry in 'videoLabels'.")
        lab = np.asarray(labels_field[vid]).reshape(-1)
        n = len(lab)
        speakers = _speaker_values(fields["videoSpeakers"][vid])
        if len(speakers) != n:
            raise ValueError(
                f"Dialogue {vid!r}: 'videoSpeakers' has {len(speakers)} entries but "
                f"'videoLabels' has {n}."
            )
        for block in blocks:
            name = _BLOCK_FIELDS[block]
            values = np.asarray(fields[name][vid], dtype=np.float32)
            if values.ndim != 2 or values.shape[0] != n:
                raise ValueError(
                    f"Dialogue {vid!r}: field {name!r} has shape {values.shape}: expected "
                    f"({n}, width) - one row per utterance."
                )
            if widths.setdefault(block, values.shape[1]) != values.shape[1]:
                raise ValueError(
                    f"Field {name!r} changes width at dialogue {vid!r}: "
                    f"{values.shape[1]} != {widths[block]}."
                )
            feats[block].append(values)
        meta.append(pd.DataFrame({DIALOGUE: str(vid), SPEAKER: speakers, TURN: np.arange(n)}))
        labels.append(lab)
        text = sentence_field.get(vid) if sentence_field is not None else None
        sentences.extend(list(text) if text is not None else [None] * n)

    labels = np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64)
    bad = (labels < 0) | (labels >= len(class_names))
    if bad.any():
        raise ValueError(
            f"'videoLabels' holds label id {labels[bad][0]} in {split!r}: expected ids "
            f"0..{len(class_names) - 1} for class_names={list(class_names)}."
        )
    parts = [
        pd.concat(meta, ignore_index=True)
        if meta
        else pd.DataFrame({DIALOGUE: pd.Series(dtype=str), SPEAKER: [], TURN: []})
    ]
    for block in blocks:
        values = np.concatenate(feats[block]) if feats[block] else None
        if values is None:
            continue
        parts.append(pd.DataFrame(values, columns=[f"{block}_{i}" for i in range(values.shape[1])]))
    X = pd.concat(parts, axis=1)
    y = pd.Series(np.asarray(class_names, dtype=object)[labels], name="emotion", dtype=object)
    return X, y, pd.Series(sentences, name="sentence", dtype=object)


def _load(path, *, dataset, layout, modalities, class_names, valid_size, random_state):
    data = _read_pickle(path)
    fields = _detect_layout(data, layout, path)
    layout = fields.pop("_layout")
    available = [b for b, f in _BLOCK_FIELDS.items() if f in fields]
    if modalities is None:
        blocks = [b for b in ("text", "audio", "visual") if b in available]
    else:
        blocks = [modalities] if isinstance(modalities, str) else list(modalities)
        unknown = [b for b in blocks if b not in available]
        if unknown:
            raise ValueError(
                f"modalities={list(blocks)}: {unknown} not in this {layout!r} pickle; "
                f"available: {available}."
            )
    train_ids = _split_ids(fields["trainVid"], "trainVid")
    test_ids = _split_ids(fields["testVid"], "testVid")
    fit_ids, valid_ids = holdout_dialogues(train_ids, valid_size, random_state)
    splits = {
        name: _frames(fields, ids, blocks, class_names, name)
        for name, ids in (("train", fit_ids), ("valid", valid_ids), ("test", test_ids))
    }
    # Empty validation frames still get the training columns (same schema everywhere).
    X_valid, y_valid, s_valid = splits["valid"]
    if len(X_valid) == 0:
        splits["valid"] = (splits["train"][0].iloc[:0].copy(), y_valid, s_valid)
    widths = {
        b: int(sum(str(c).startswith(f"{b}_") for c in splits["train"][0].columns)) for b in blocks
    }
    descr = (
        f"{dataset} pre-extracted features ({layout!r} layout) from {os.fspath(path)!r}: "
        f"{len(fit_ids)} train / {len(valid_ids)} validation (seeded {valid_size} of the "
        f"training dialogues, random_state={random_state!r}) / {len(test_ids)} test "
        f"dialogues; blocks {widths}; classes {list(class_names)}. " + _UNSAFE
    )
    return make_bunch(splits, class_names, descr, layout=layout, feature_blocks=widths)


_PARAMS_DOC = """
    Parameters
    ----------
    path : str or path-like
        The pickle file.
    layout : {{None, "dialoguegcn", "dialoguegcn-novisual", "sdt"}}, default=None
        Field layout; None detects it from the tuple length and contents (see the module
        docstring for the field lists and their sources).
    modalities : sequence of str, default=None
        Blocks to load among ``text``, ``audio``, ``visual`` and, in the SDT layout,
        ``roberta2``/``roberta3``/``roberta4``. None loads text, audio and visual (those
        present).
    class_names : sequence of str, default={default}
        Label of each label id.
    valid_size : float or int, default=0.1
        Fraction (or number) of the training *dialogues* held out as validation, seeded by
        ``random_state``; 0 gives empty validation frames.
    random_state : int, RandomState instance or None, default=0
        Seed of the validation hold-out.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X_train, y_train, X_valid, y_valid, X_test, y_test``: frames in the data-model
        schema (``dialogue_id`` (str), ``speaker`` (str), ``turn`` (int) and the feature
        blocks ``<block>_<i>``, float32) and Series of string labels; ``sentences_*``
        (the ``videoSentence`` text, aligned with ``X_*``); ``class_names``;
        ``feature_blocks`` (block -> width); ``layout``; ``DESCR``.

    Raises
    ------
    ValueError
        Unknown layout, inconsistent field lengths or widths, label ids out of range.

    Warnings
    --------
    Unpickling untrusted files is unsafe: a pickle can run arbitrary code when loaded.
    Only load feature files from a source you trust.
"""


def load_iemocap(
    path,
    *,
    layout: str | None = None,
    modalities: Sequence[str] | None = None,
    class_names: Sequence[str] = IEMOCAP_CLASSES,
    valid_size=0.1,
    random_state=0,
):
    return _load(
        path,
        dataset="IEMOCAP",
        layout=layout,
        modalities=modalities,
        class_names=class_names,
        valid_size=valid_size,
        random_state=random_state,
    )


def load_meld(
    path,
    *,
    layout: str | None = None,
    modalities: Sequence[str] | None = None,
    class_names: Sequence[str] = MELD_PICKLE_CLASSES,
    valid_size=0.1,
    random_state=0,
):
    return _load(
        path,
        dataset="MELD",
        layout=layout,
        modalities=modalities,
        class_names=class_names,
        valid_size=valid_size,
        random_state=random_state,
    )


load_iemocap.__doc__ = """Load IEMOCAP's pre-extracted features (DialogueGCN or SDT/CBERL pickle).

    Six classes (paper Sec. V-A): happy, sad, neutral, angry, excited, frustrated (label ids
    0-5). Speakers are ``'M'``/``'F'``. The pickle has only ``trainVid`` (sessions 1-4) and
    ``testVid`` (session 5): there is no official validation split, so ``valid_size`` of the
    training dialogues are held out, seeded, as the paper does.
""" + _PARAMS_DOC.format(default="IEMOCAP_CLASSES")

load_meld.__doc__ = """Load MELD's pre-extracted features (DialogueGCN, DialogueRNN or SDT pickle).

    Seven classes in the pickles' label-id order: neutral, surprise, fear, sadness, joy,
    disgust, anger. Speakers are one-hot vectors in the file and become the index of the
    one (as a string). The pickles carry no validation ids - only ``trainVid`` and
    ``testVid``, and the public dataloaders (DialogueGCN, MMGCN, SDT) carve validation out of
    ``trainVid`` themselves - so the same seeded hold-out of ``valid_size`` training
    dialogues applies. The trailing extra field of MELD pickles is ignored.
""" + _PARAMS_DOC.format(default="MELD_PICKLE_CLASSES")
