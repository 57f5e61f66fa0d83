"""Loaders for the pre-extracted MERC feature pickles (IEMOCAP, MELD).

The pickles' layouts (field orders and their sources) are described and read in
:mod:`._pickle_layouts`; this module builds the data-model frames, dialogue by dialogue, and
the loaders' Bunch. Label ids follow the public dataloaders' comments: IEMOCAP
``{'hap': 0, 'sad': 1, 'neu': 2, 'ang': 3, 'exc': 4, 'fru': 5}``; MELD ``{'neutral': 0,
'surprise': 1, 'fear': 2, 'sadness': 3, 'joy': 4, 'disgust': 5, 'anger': 6}``. IEMOCAP
speakers are ``'M'``/``'F'``; MELD speakers are one-hot vectors (decoded to the index of the
one).

.. warning::
   Unpickling executes code chosen by whoever wrote the file. Only load pickles from a
   source you trust.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..conversation import DIALOGUE, SPEAKER, TURN
from ._bunch import holdout_dialogues, make_bunch
from ._pickle_layouts import (
    BLOCK_FIELDS,
    LAYOUTS,
    detect_layout,
    read_pickle,
    speaker_values,
    split_ids,
)

__all__ = ["load_iemocap", "load_meld", "IEMOCAP_CLASSES", "MELD_PICKLE_CLASSES", "LAYOUTS"]

#: IEMOCAP's six emotions in the pickles' label-id order (hap, sad, neu, ang, exc, fru).
IEMOCAP_CLASSES = ("happy", "sad", "neutral", "angry", "excited", "frustrated")
#: MELD's seven emotions in the pickles' label-id order.
MELD_PICKLE_CLASSES = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")

_UNSAFE = (
    "Unpickling runs code chosen by the file's author: only load files from a source you trust."
)


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
        speakers = speaker_values(fields["videoSpeakers"][vid])
        if len(speakers) != n:
            raise ValueError(
                f"Dialogue {vid!r}: 'videoSpeakers' has {len(speakers)} entries but "
                f"'videoLabels' has {n}."
            )
        for block in blocks:
            name = BLOCK_FIELDS[block]
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
    data = read_pickle(path)
    fields = detect_layout(data, layout, path)
    layout = fields.pop("_layout")
    available = [b for b, f in BLOCK_FIELDS.items() if f in fields]
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
    train_ids = split_ids(fields["trainVid"], "trainVid")
    test_ids = split_ids(fields["testVid"], "testVid")
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
