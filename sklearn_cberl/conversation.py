"""The conversation data model: the columns of the schema and their validation.

A conversation batch is a :class:`pandas.DataFrame` with one row per utterance:

* metadata columns ``dialogue_id``, ``speaker`` and ``turn`` (an orderable position inside
  the dialogue; ints or floats - a synthetic utterance inserted after turn 3 gets turn 3.5);
* numeric feature columns grouped into *modality blocks* by name prefix: ``text_*``,
  ``audio_*``, ``visual_*``, ``fused_*`` or any prefix the user names.

Why columns rather than sklearn metadata routing: imbalanced-learn's ``Pipeline`` keeps only
the sampler's ``(X, y)``, so a routed ``dialogue_ids`` array would no longer match the
resampled rows. Columns travel through every step, through resampling and through
``GridSearchCV`` slicing.

One optional column marks rows rather than describing them: ``synthetic`` (bool), written by
the over-samplers on conversation frames (True for a generated utterance). It is neither a
feature nor part of ``feature_names_in_``: the classifier keeps marked rows out of its
validation split, and transformers carry the column along.

Two fallbacks keep the estimators usable by any sklearn tool:

* a plain 2-D array, and
* a DataFrame with *none* of the metadata columns,

are feature tables in which every row is its own one-utterance dialogue. A frame with only
*some* of the metadata columns is an error (almost certainly a typo or a dropped column).

:func:`check_conversations` validates a batch and returns a :class:`Conversations` with the
features as one array, the modality blocks, and the grouping of rows into dialogues ordered by
turn, together with the index arrays that put per-utterance results back in input row order.
The container itself lives in :mod:`sklearn_cberl._conversations` (importable from here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array, validate_data

from ._conversations import Conversations

__all__ = [
    "DIALOGUE",
    "SPEAKER",
    "TURN",
    "METADATA_COLUMNS",
    "SYNTHETIC",
    "Conversations",
    "check_conversations",
    "modality_of",
    "is_conversation_frame",
    "check_labels",
]

DIALOGUE = "dialogue_id"
SPEAKER = "speaker"
TURN = "turn"
#: Metadata columns of the schema; carried through every step, never used as features.
METADATA_COLUMNS = (DIALOGUE, SPEAKER, TURN)
#: Optional boolean row mark of a conversation frame: True for a sampler's synthetic utterance.
SYNTHETIC = "synthetic"
#: Name of the single block of a plain feature table (numpy input or frame without metadata).
PLAIN_BLOCK = "x"


def modality_of(column) -> str:
    """Return the modality block a feature column belongs to when blocks are auto-detected.

    The block is the part of the name before the first underscore (``"text_12"`` ->
    ``"text"``, ``"fused_0"`` -> ``"fused"``); a name without an underscore is its own block.
    """
    name = str(column)
    return name.split("_", 1)[0]


def check_labels(y):
    """Refuse missing labels (NaN, None, pd.NA) with a message that names the rows.

    scikit-learn's own checks fail on them with ``'<' not supported between ...`` (strings
    mixed with a float NaN) or accept NaN as a class; a missing emotion label is a data
    problem the user has to solve (drop the utterances or label them).
    """
    if y is None:
        return y  # "y is required" is each estimator's own message
    missing = np.asarray(pd.isna(pd.Series(np.asarray(y, dtype=object).ravel())))
    if missing.any():
        rows = np.flatnonzero(missing)
        shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        raise ValueError(
            f"y has {len(rows)} missing label(s) (NaN/None) at position(s) {shown}: drop "
            "those utterances or give them a label."
        )
    return y


def is_conversation_frame(X) -> bool:
    """True when ``X`` is a DataFrame carrying at least one metadata column."""
    return isinstance(X, pd.DataFrame) and any(c in X.columns for c in METADATA_COLUMNS)


def _plain(X: np.ndarray, names) -> Conversations:
    """A plain feature table as a batch of one-utterance dialogues (rows in input order)."""
    n = X.shape[0]
    rows = np.arange(n)
    names = np.asarray(names, dtype=object)
    return Conversations(
        X=X,
        feature_names=names,
        blocks={PLAIN_BLOCK: slice(0, X.shape[1])},
        dialogue=rows,
        speaker=np.zeros(n, dtype=np.int64),
        turn=np.zeros(n, dtype=np.float64),
        order=rows,
        lengths=np.ones(n, dtype=np.int64),
        metadata=None,
        dialogue_ids=rows,
    )


def _feature_blocks(X: pd.DataFrame, modalities) -> dict[str, list]:
    """Map each modality block to its columns; raise if a named block has none."""
    candidates = [c for c in X.columns if c not in METADATA_COLUMNS]
    blocks: dict[str, list] = {}
    if modalities is None:
        for column in candidates:
            blocks.setdefault(modality_of(column), []).append(column)
        if not blocks:
            raise ValueError(
                "X has no feature columns: expected numeric columns besides the metadata "
                f"columns {list(METADATA_COLUMNS)}, e.g. 'text_0', 'audio_0', 'visual_0'."
            )
        return blocks
    if isinstance(modalities, str):
        modalities = [modalities]
    if len(modalities) == 0:
        raise ValueError(
            "modalities=[] names no modality block: pass None to use every feature column, "
            "or a non-empty list of prefixes such as ['text', 'audio']."
        )
    for name in modalities:
        columns = [c for c in candidates if str(c).startswith(f"{name}_")]
        if not columns:
            raise ValueError(
                f"Modality block {name!r} has no columns: expected at least one column "
                f"named '{name}_<i>' in X."
            )
        blocks[name] = columns
    return blocks


def _check_feature_columns(X: pd.DataFrame, columns: list) -> np.ndarray:
    """Check that the feature columns are real and finite; return them as one array.

    Dtypes are read from ``X.dtypes`` and the values converted once: a per-column Series
    loop cost ~15 % of ``predict`` on 712-column frames.
    """
    dtypes = X.dtypes
    for column in columns:
        dtype = dtypes[column]
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_complex_dtype(dtype):
            raise ValueError(
                f"Feature column {column!r} has dtype {dtype}: expected a real numeric "
                "dtype (embed text with sklearn_cberl.datasets.embed_text and encode "
                "categories before fitting)."
            )
    values = X[columns].to_numpy()
    if values.dtype == object:  # nullable / extension dtypes: pd.NA becomes NaN
        values = X[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            col = int(np.nonzero(bad.any(axis=0))[0][0])
            kind = "NaN" if np.isnan(values[:, col]).any() else "infinity"
            raise ValueError(
                f"Feature column {columns[col]!r} contains {kind}: expected finite values "
                "(impute or drop the affected utterances; an all-zero block is the "
                "convention for a missing modality)."
            )
    return values


def check_conversations(
    X,
    *,
    estimator=None,
    reset: bool = True,
    modalities: Sequence[str] | None = None,
    dtype=(np.float64, np.float32),
) -> Conversations:
    """Validate a conversation batch and group its rows into dialogues.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
        A frame in the data-model schema, a frame without metadata columns, or a 2-D array.
    estimator : estimator instance, default=None
        When given, ``n_features_in_`` / ``feature_names_in_`` are set (``reset=True``) or
        checked against it (``reset=False``) with scikit-learn's ``validate_data``.
    reset : bool, default=True
        Whether this call is a ``fit`` (set the feature attributes) or a later call.
    modalities : sequence of str, default=None
        Modality prefixes to use as feature blocks. None uses every non-metadata column,
        grouped by the prefix before the first underscore; explicit names ignore other
        columns and raise if a named block has no column.
    dtype : dtype or tuple of dtypes, default=(float64, float32)
        Accepted feature dtypes; the first is used when the input has another dtype.

    Returns
    -------
    Conversations

    Raises
    ------
    ValueError
        Naming the offending column: empty input, a missing metadata column, a modality
        block without columns, non-numeric features, NaN/inf, duplicate (dialogue_id, turn).
    """
    dtypes = [np.dtype(d) for d in (dtype if isinstance(dtype, (tuple, list)) else (dtype,))]

    if not is_conversation_frame(X):
        if isinstance(X, pd.DataFrame) and X.shape[0]:
            # Name the offending column (sklearn's messages say only "Input X").
            _check_feature_columns(X, list(X.columns))
        if estimator is not None:
            X = validate_data(estimator, X, reset=reset, dtype=dtypes)
            names = getattr(estimator, "feature_names_in_", None)
        else:
            names = list(X.columns) if isinstance(X, pd.DataFrame) else None
            X = check_array(X, dtype=dtypes)
        if names is None or len(names) != X.shape[1]:
            names = [f"x{i}" for i in range(X.shape[1])]
        return _plain(X, names)

    if X.shape[0] == 0:
        raise ValueError(
            "X is an empty DataFrame (0 utterances): expected at least one row per utterance."
        )
    synthetic = None
    if SYNTHETIC in X.columns:
        mark = X[SYNTHETIC]
        if not pd.api.types.is_bool_dtype(mark.dtype) or mark.isna().any():
            raise ValueError(
                f"Column {SYNTHETIC!r} has dtype {mark.dtype}: it is reserved for the "
                "samplers' row mark and must hold booleans (True = synthetic utterance); "
                "rename the column if it is a feature."
            )
        synthetic = mark.to_numpy(dtype=bool)
        X = X.drop(columns=SYNTHETIC)
    missing = [c for c in METADATA_COLUMNS if c not in X.columns]
    if missing:
        raise ValueError(
            f"X is missing the metadata column(s) {missing}: a conversation frame needs "
            f"{list(METADATA_COLUMNS)} (or none of them, to treat every row as its own "
            "dialogue)."
        )
    if estimator is not None:
        validate_data(estimator, X, skip_check_array=True, reset=reset)

    blocks = _feature_blocks(X, modalities)
    columns = [c for cols in blocks.values() for c in cols]
    values = _check_feature_columns(X, columns)

    for column in METADATA_COLUMNS:
        if X[column].isna().any():
            raise ValueError(f"Metadata column {column!r} contains missing values.")
    turn = X[TURN]
    dtype = turn.dtype
    if (
        not pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_complex_dtype(dtype)
    ):
        raise ValueError(
            f"Metadata column {TURN!r} has dtype {dtype}: expected real numbers giving the "
            "position of each utterance inside its dialogue."
        )
    # Integer turns (e.g. nanosecond timestamps) order and deduplicate exactly: a float64
    # cast would merge turns above 2**53.
    exact = turn.to_numpy(dtype=np.int64 if pd.api.types.is_signed_integer_dtype(dtype) else None)
    turn = turn.to_numpy(dtype=np.float64)
    if not np.isfinite(turn).all():
        raise ValueError(f"Metadata column {TURN!r} contains infinity: expected finite numbers.")
    if exact.dtype.kind not in "iu":
        exact = turn

    dialogue, dialogue_ids = pd.factorize(X[DIALOGUE], sort=False)
    duplicated = pd.DataFrame({"d": dialogue, "t": exact}).duplicated()
    if duplicated.any():
        row = int(np.argmax(duplicated.to_numpy()))
        raise ValueError(
            f"Duplicate ({DIALOGUE!r}, {TURN!r}) pair ({dialogue_ids[dialogue[row]]!s}, "
            f"{X[TURN].iloc[row]!s}): expected each turn to occur once per dialogue."
        )
    speaker, _ = pd.factorize(X[SPEAKER], sort=False)

    target = values.dtype if values.dtype in dtypes else dtypes[0]
    values = np.ascontiguousarray(values, dtype=target)

    # lexsort: last key is primary -> rows grouped by dialogue, then by turn.
    order = np.lexsort((exact, dialogue))
    lengths = np.bincount(dialogue, minlength=len(dialogue_ids))
    starts = np.cumsum([0] + [len(c) for c in blocks.values()])
    metadata = X[list(METADATA_COLUMNS)].copy()
    if synthetic is not None:
        metadata[SYNTHETIC] = synthetic
    return Conversations(
        X=values,
        feature_names=np.asarray([str(c) for c in columns], dtype=object),
        blocks={name: slice(a, b) for name, a, b in zip(blocks, starts[:-1], starts[1:])},
        dialogue=dialogue.astype(np.int64),
        speaker=speaker.astype(np.int64),
        turn=turn,
        order=order,
        lengths=lengths.astype(np.int64),
        metadata=metadata,
        dialogue_ids=np.asarray(dialogue_ids),
        synthetic=synthetic,
    )
