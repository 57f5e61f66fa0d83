"""What ``CBERLClassifier.fit`` trains and validates on.

Checks of its inputs beyond ``_parameter_constraints`` (``attention_hidden``, the targets,
an explicit ``validation_data``), the focal-loss class weights, the dialogue-level validation
split of ``validation_fraction`` and the standardisation statistics of the training rows.
The batching of the checked data into whole dialogues is :mod:`sklearn_cberl.nn.data`.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, column_or_1d

from .conversation import check_conversations, check_labels

__all__ = [
    "check_attention_hidden",
    "check_targets",
    "class_alpha",
    "check_validation_data",
    "encode_targets",
    "feature_statistics",
    "training_datasets",
    "validation_split",
]


def check_attention_hidden(attention_hidden):
    """The Eq. 15 MLP widths as a tuple of ints (a non-empty sequence of positive ints)."""
    hidden = tuple(attention_hidden)
    if not hidden or not all(isinstance(h, Integral) and h >= 1 for h in hidden):
        raise ValueError(
            "attention_hidden must be a non-empty tuple of positive ints (the Eq. 15 MLP "
            f"widths, e.g. (200, 110)); got {attention_hidden!r}."
        )
    return tuple(int(h) for h in hidden)


def check_targets(X, y):
    """Validated emotion labels ``y`` (1-d, as long as ``X``, classification targets)."""
    if y is None:
        raise ValueError("CBERLClassifier requires y to be passed, but the target y is None.")
    check_labels(y)
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    check_classification_targets(y)
    return y


def encode_targets(encoder, y, sample_weight):
    """Label codes of ``y`` under the fitted ``LabelEncoder``; at least 2 classes, and at least
    2 with a positive ``sample_weight``."""
    if len(encoder.classes_) < 2:
        raise ValueError(
            "CBERLClassifier needs samples of at least 2 classes in y; got 1 class: "
            f"{encoder.classes_.tolist()}."
        )
    y_codes = encoder.transform(y)
    weighted_classes = np.unique(y_codes[sample_weight > 0])
    if len(weighted_classes) < 2:
        raise ValueError(
            "CBERLClassifier needs samples of at least 2 classes with a positive "
            f"sample_weight; got {len(weighted_classes)} class(es) after weighting."
        )
    return y_codes


def class_alpha(class_weight, classes, y, sample_weight):
    """Per-class weight (alpha) of the focal loss (Eq. 19) from the full training labels, as
    float32; None without ``class_weight``."""
    if class_weight is None:
        return None
    alpha = compute_class_weight(class_weight, classes=classes, y=y, sample_weight=sample_weight)
    return alpha.astype(np.float32)


def check_validation_data(estimator, validation_data, X, modalities):
    """Validate ``(X_val, y_val)`` against the fitting ``estimator`` (its columns and
    ``classes_``); return its real (not synthetic) rows and labels."""
    if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
        raise TypeError("validation_data must be a tuple (X_val, y_val).")
    X_val, y_val = validation_data
    try:
        conv_val = check_conversations(
            X_val, estimator=estimator, reset=False, modalities=modalities, dtype=np.float32
        )
    except ValueError as error:
        fitted = getattr(estimator, "feature_names_in_", None)
        given = getattr(X_val, "columns", None)
        if fitted is None or given is None or set(map(str, given)) == set(fitted):
            raise
        raise ValueError(
            "validation_data does not have the columns the classifier is trained on "
            f"(training: {list(fitted[:4])}..., validation: {list(given[:4])}...). "
            "Inside a Pipeline the validation set must first go through the earlier "
            "steps: fit a sklearn_cberl.CBERLPipeline (make_cberl_pipeline returns one) "
            "with fit(X, y, validation_data=(X_val, y_val))."
        ) from error
    y_val = check_targets(X_val, y_val)
    unknown = np.setdiff1d(np.unique(y_val), estimator.classes_)
    if unknown.size:
        raise ValueError(f"validation_data has labels {unknown.tolist()} not present in y.")
    if conv_val.synthetic is not None:  # validate on real utterances only
        conv_val, y_val = conv_val.take(conv_val.real), y_val[conv_val.real]
    return conv_val, y_val


def validation_split(conv, validation_fraction, seed):
    """Hold out a ``validation_fraction`` of the real dialogues (``GroupShuffleSplit``).

    Synthetic rows (marked by the samplers) are near-copies of their sources, and those in a
    validation dialogue were made from validation utterances, so they are dropped from both
    sides: the validation rows are the real rows of the held dialogues, the training rows
    every row of the other dialogues.

    Returns
    -------
    (train_rows, valid_rows, held) or None
        Row indices of ``conv`` and the sorted codes of the held dialogues; None when there
        are fewer than 2 real dialogues.
    """
    real_dialogues = np.unique(conv.dialogue[conv.real])
    if len(real_dialogues) < 2:
        return None
    splitter = GroupShuffleSplit(
        n_splits=1, test_size=validation_fraction, random_state=seed % (2**31)
    )
    _, held = next(splitter.split(real_dialogues, groups=real_dialogues))
    in_valid = np.isin(conv.dialogue, real_dialogues[held])
    valid_rows = np.flatnonzero(in_valid & conv.real)
    train_rows = np.flatnonzero(~in_valid)
    return train_rows, valid_rows, np.sort(real_dialogues[held])


def training_datasets(estimator, X, conv, y_codes, sample_weight, encoder, validation_data, seed):
    """Training and validation dialogues of ``estimator.fit`` (built by its ``_dataset``).

    Validates on ``validation_data`` when given, else on the dialogues
    ``estimator.validation_fraction`` holds out (:func:`validation_split`), else not at all.

    Returns
    -------
    conv : Conversations
        The training batch.
    dataset, dataset_valid : DialogueDataset
        Training and validation dialogues (``dataset_valid`` None: no validation).
    validation_dialogues : ndarray
        Identifiers of the held-out dialogues (empty unless ``validation_fraction`` split).
    """
    held_ids = conv.dialogue_ids[:0]
    valid = None
    if validation_data is not None:
        conv_val, y_val = check_validation_data(estimator, validation_data, X, estimator.modalities)
        valid = estimator._dataset(conv_val, encoder.transform(y_val))
    elif estimator.validation_fraction is not None:
        split = validation_split(conv, estimator.validation_fraction, seed)
        if split is not None:
            train, held_rows, held = split
            held_ids = conv.dialogue_ids[held]
            valid = estimator._dataset(
                conv.take(held_rows), y_codes[held_rows], sample_weight[held_rows]
            )
            conv, y_codes, sample_weight = conv.take(train), y_codes[train], sample_weight[train]
    return conv, estimator._dataset(conv, y_codes, sample_weight), valid, held_ids


def feature_statistics(x):
    """float32 mean and scale of the training rows ``x`` for the module's standardisation.

    float64 statistics: float32 squares overflow for features of scale ~1e20. Constant and
    non-finite columns keep a scale of 1.
    """
    x = x.astype(np.float64)
    mean = x.mean(0)
    scale = x.std(0)
    scale[~np.isfinite(scale) | (scale < 1e-8 * np.maximum(1.0, np.abs(mean)))] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)
