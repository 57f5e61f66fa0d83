"""The conversation data model: columns, validation, dialogues, and where synthetic rows go.

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
feature nor part of ``feature_names_in_``: the estimators keep marked rows out of their
validation splits, and transformers carry the column along.

Two fallbacks keep the estimators usable by any sklearn tool:

* a plain 2-D array, and
* a DataFrame with *none* of the metadata columns,

are feature tables in which every row is its own one-utterance dialogue. A frame with only
*some* of the metadata columns is an error (almost certainly a typo or a dropped column).

The module holds, in this order:

* :class:`Conversations` - a validated batch: the features as one array, the modality
  blocks, the grouping of rows into dialogues ordered by turn, and the index arrays that put
  per-utterance results back in input row order;
* :func:`check_conversations` - validates a batch and builds the container;
  :func:`check_validation_data` - the one check of every estimator's ``validation_data``;
* :func:`split_dialogues` / :func:`validation_split` - the one dialogue-level hold-out of
  the package (estimators' early stopping, the data set loaders): rows never split a
  dialogue unless the input has no dialogues;
* :func:`modality_presence` - the one definition of a missing modality (an all-zero block);
* :func:`assemble_resampled` - an over-sampler's output in the input's container, synthetic
  rows placed in dialogues (``placement``) and marked.

No torch is imported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_array, validate_data

__all__ = [
    "DIALOGUE",
    "METADATA_COLUMNS",
    "PLACEMENTS",
    "SPEAKER",
    "SYNTHETIC",
    "TURN",
    "Conversations",
    "assemble_resampled",
    "check_container",
    "check_conversations",
    "check_labels",
    "check_validation_data",
    "dialogue_groups",
    "densify_sparse_frame",
    "is_conversation_frame",
    "modality_of",
    "modality_presence",
    "split_dialogues",
    "validation_split",
    "wrap_like",
]

# --------------------------------------------------------------------------- schema and checks
DIALOGUE = "dialogue_id"
SPEAKER = "speaker"
TURN = "turn"
#: Metadata columns of the schema; carried through every step, never used as features.
METADATA_COLUMNS = (DIALOGUE, SPEAKER, TURN)
#: Optional boolean row mark of a conversation frame: True for a sampler's synthetic utterance.
SYNTHETIC = "synthetic"
#: Name of the single block of a plain feature table (numpy input or frame without metadata).
PLAIN_BLOCK = "x"


# --------------------------------------------------------------------------- the container
@dataclass(frozen=True, eq=False)
class Conversations:
    """A validated batch of utterances grouped into dialogues.

    All per-row arrays are in the *input* row order; ``order`` lists the rows dialogue by
    dialogue, each dialogue sorted by turn, so that ``values[order]`` is the dialogue-major
    layout that sequence and graph models consume, and :meth:`to_input_order` undoes it.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        The feature columns (float32 or float64), block by block.
    feature_names : ndarray of str, shape (n_features,)
        Name of each column of ``X``.
    blocks : dict of str -> slice
        Columns of ``X`` belonging to each modality block, in block order.
    dialogue : ndarray of int, shape (n_samples,)
        Dialogue code of each row (``0 .. n_dialogues-1``, by first appearance).
    speaker : ndarray of int, shape (n_samples,)
        Speaker code of each row (equal codes = same speaker; compare within a dialogue).
    turn : ndarray of float, shape (n_samples,)
        The turn value of each row.
    order : ndarray of int, shape (n_samples,)
        Row indices sorted by (dialogue code, turn).
    lengths : ndarray of int, shape (n_dialogues,)
        Number of utterances of each dialogue, in dialogue-code order.
    metadata : DataFrame or None
        The metadata columns (with the input's index; ``synthetic`` included when present),
        or None for a plain feature table.
    dialogue_ids : ndarray
        The original dialogue identifier of each dialogue code.
    synthetic : ndarray of bool, shape (n_samples,), or None
        The ``synthetic`` row mark, None when the input has no such column.
    """

    X: np.ndarray
    feature_names: np.ndarray
    blocks: dict
    dialogue: np.ndarray
    speaker: np.ndarray
    turn: np.ndarray
    order: np.ndarray
    lengths: np.ndarray
    metadata: pd.DataFrame | None
    dialogue_ids: np.ndarray
    synthetic: np.ndarray | None = None

    @property
    def n_samples(self) -> int:
        """Number of utterances (rows)."""
        return self.X.shape[0]

    @property
    def n_dialogues(self) -> int:
        """Number of dialogues."""
        return len(self.lengths)

    @property
    def offsets(self) -> np.ndarray:
        """Start of each dialogue in the dialogue-major layout (length ``n_dialogues + 1``)."""
        return np.concatenate([[0], np.cumsum(self.lengths)])

    @property
    def position(self) -> np.ndarray:
        """Position (0-based rank by turn) of each row inside its dialogue, input order.

        ``position[order]`` is the dialogue-major position vector of
        :func:`~sklearn_cberl.nn.data.dialogue_layout`.
        """
        sorted_pos = np.arange(self.n_samples) - np.repeat(self.offsets[:-1], self.lengths)
        return self.to_input_order(sorted_pos)

    @property
    def is_plain(self) -> bool:
        """True for a plain feature table (every row its own dialogue)."""
        return self.metadata is None

    def block(self, name: str) -> np.ndarray:
        """Feature columns of one modality block."""
        return self.X[:, self.blocks[name]]

    @property
    def real(self) -> np.ndarray:
        """Boolean mask of the rows that are not marked synthetic."""
        if self.synthetic is None:
            return np.ones(self.n_samples, dtype=bool)
        return ~self.synthetic

    def take(self, rows) -> Conversations:
        """The sub-batch of the given rows (boolean mask or indices), regrouped.

        Dialogue codes are renumbered by first appearance among the kept rows; a dialogue
        that keeps no row disappears.
        """
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        dialogue, kept = pd.factorize(self.dialogue[rows], sort=False)
        # Order by each row's rank in this batch's order (exact even for turns that float64
        # cannot tell apart).
        rank = np.empty(self.n_samples, dtype=np.int64)
        rank[self.order] = np.arange(self.n_samples)
        return Conversations(
            X=self.X[rows],
            feature_names=self.feature_names,
            blocks=self.blocks,
            dialogue=dialogue.astype(np.int64),
            speaker=self.speaker[rows],
            turn=self.turn[rows],
            order=np.lexsort((rank[rows], dialogue)),
            lengths=np.bincount(dialogue, minlength=len(kept)).astype(np.int64),
            metadata=None if self.metadata is None else self.metadata.iloc[rows],
            dialogue_ids=self.dialogue_ids[np.asarray(kept, dtype=np.int64)],
            synthetic=None if self.synthetic is None else self.synthetic[rows],
        )

    def to_input_order(self, values_sorted):
        """Put values computed in the dialogue-major layout back in input row order."""
        values_sorted = np.asarray(values_sorted)
        out = np.empty_like(values_sorted)
        out[self.order] = values_sorted
        return out


# --------------------------------------------------------------------------- checks
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


def check_container(X):
    """Refuse containers that are no table of utterances, saying what was expected: a
    Series (one row passed as such) and a frame with MultiIndex columns."""
    if isinstance(X, pd.Series):
        raise ValueError(
            "X is a pandas Series: expected a DataFrame with one row per utterance (for a "
            "single utterance pass a one-row frame, e.g. X.iloc[[i]] or series.to_frame().T)."
        )
    if isinstance(X, pd.DataFrame) and isinstance(X.columns, pd.MultiIndex):
        raise ValueError(
            f"X has MultiIndex columns ({X.columns.nlevels} levels, e.g. {X.columns[0]!r}): "
            "expected flat column names such as 'dialogue_id' and 'text_0'; flatten them, e.g. "
            "X.columns = ['_'.join(map(str, c)) for c in X.columns]."
        )
    return X


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
    check_container(X)

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


def check_validation_data(
    estimator, validation_data, *, classes=None, labels="required", modalities=None, dtype=None
):
    """The one check of every estimator's ``validation_data`` (and the pipeline's).

    ``validation_data`` must be a tuple ``(X_val, y_val)`` (``labels="optional"``: or
    ``X_val`` alone). ``X_val`` is validated like a later call of the fitted ``estimator``
    (its columns and their names, :func:`check_conversations` with ``reset=False``), ``y_val``
    like training labels: as long as ``X_val``, no missing label and, with ``classes``, no
    label unseen in training. Synthetic rows are dropped: validation is on real utterances.

    Parameters
    ----------
    estimator : estimator
        The estimator being fitted (its ``n_features_in_`` / ``feature_names_in_`` are set).
    validation_data : tuple (X_val, y_val), or X_val when ``labels="optional"``
    classes : array-like, default=None
        The training classes; labels outside them are an error.
    labels : {"required", "optional"}, default="required"
    modalities, dtype
        As for :func:`check_conversations`.

    Returns
    -------
    conv_val : Conversations
    y_val : ndarray or None
    """
    name = type(estimator).__name__
    if isinstance(validation_data, tuple) and len(validation_data) == 2:
        X_val, y_val = validation_data
    elif labels == "optional" and not isinstance(validation_data, tuple):
        X_val, y_val = validation_data, None
    else:
        expected = "a tuple (X_val, y_val)" + (" or X_val" if labels == "optional" else "")
        raise TypeError(
            f"{name}: validation_data must be {expected}; got {type(validation_data).__name__}"
            + (f" of length {len(validation_data)}" if isinstance(validation_data, tuple) else "")
            + "."
        )
    kwargs = {} if dtype is None else {"dtype": dtype}
    try:
        conv = check_conversations(
            X_val, estimator=estimator, reset=False, modalities=modalities, **kwargs
        )
    except ValueError as error:
        fitted = getattr(estimator, "feature_names_in_", None)
        given = getattr(X_val, "columns", None)
        if fitted is None or given is None or set(map(str, given)) == set(fitted):
            raise ValueError(f"{name}: validation_data: {error}") from error
        raise ValueError(
            f"{name}: validation_data does not have the columns it is trained on (training: "
            f"{list(fitted[:4])}..., validation: {list(given[:4])}...). Inside a Pipeline the "
            "validation set must first go through the earlier steps: fit a "
            "sklearn_cberl.CBERLPipeline (make_cberl_pipeline returns one) with "
            "fit(X, y, validation_data=(X_val, y_val))."
        ) from error
    if y_val is not None:
        check_labels(y_val)
        y_val = np.asarray(y_val)
        if y_val.ndim != 1 or len(y_val) != conv.n_samples:
            raise ValueError(
                f"{name}: validation_data has {conv.n_samples} rows in X_val but y_val has "
                f"shape {y_val.shape}: expected one label per row."
            )
        if classes is not None:
            unknown = np.setdiff1d(np.unique(y_val), np.asarray(classes))
            if unknown.size:
                raise ValueError(
                    f"{name}: validation_data has labels {unknown.tolist()} not present in y."
                )
    elif labels == "required":
        raise ValueError(f"{name}: validation_data needs labels: pass (X_val, y_val).")
    if conv.synthetic is not None:  # validate on real utterances only
        real = conv.real
        conv, y_val = conv.take(real), None if y_val is None else y_val[real]
    return conv, y_val


# --------------------------------------------------------------------------- dialogue splits
def dialogue_groups(X) -> np.ndarray:
    """The dialogue of each row (the ``dialogue_id`` column), else one group per row: the
    groups of dialogue-whole folds and of dialogue bootstrap resamples."""
    if isinstance(X, pd.DataFrame) and DIALOGUE in X:
        return X[DIALOGUE].to_numpy()
    return np.arange(len(X))


def split_dialogues(dialogue_ids, fraction, random_state):
    """Split dialogue identifiers into ``(kept, held)``: ``fraction`` of the dialogues held out.

    The one dialogue-level hold-out of the package: the estimators' validation splits
    (:func:`validation_split`) and the data set loaders' validation dialogues use it, so a
    dialogue is always on one side. Both lists keep the input order.

    Parameters
    ----------
    dialogue_ids : sequence
        Distinct dialogue identifiers.
    fraction : float in (0, 1) or int
        Share (or number) of the dialogues to hold out; at least one is held.
    random_state : int, RandomState instance or None

    Returns
    -------
    kept, held : list
    """
    dialogue_ids = list(dialogue_ids)
    _, held = train_test_split(dialogue_ids, test_size=fraction, random_state=random_state)
    chosen = set(held)
    return [d for d in dialogue_ids if d not in chosen], [d for d in dialogue_ids if d in chosen]


def validation_split(dialogues, fraction: float, random_state, *, real=None):
    """Rows for training and for validation, split by dialogue.

    The one validation split of the package's estimators (and of the feature extractors,
    whose inputs are raw streams: their rows' dialogue ids, or ``np.arange(n)`` when they have
    none). ``fraction`` of the dialogues that hold a real (not synthetic) row are held out
    (:func:`split_dialogues`, on the sorted distinct dialogues, so the split does not depend
    on the row order). Synthetic rows are near-copies of their sources, and those in a held
    dialogue were made from validation utterances, so they are dropped from both sides: the
    validation rows are the real rows of the held dialogues, the training rows every row of
    the other dialogues.

    Parameters
    ----------
    dialogues : array-like of shape (n_samples,)
        Each row's dialogue (``Conversations.dialogue``; a plain table's rows are their own
        dialogues).
    fraction : float in (0, 1)
    random_state : int, RandomState instance or None
    real : ndarray of bool, shape (n_samples,), default=None
        Rows that are not synthetic (``Conversations.real``); None: every row.

    Returns
    -------
    (train_rows, valid_rows) or None
        Sorted row indices; None when fewer than 2 dialogues hold a real row (nothing can be
        held out: the caller trains without validation).
    """
    dialogues = np.asarray(dialogues)
    real = np.ones(len(dialogues), dtype=bool) if real is None else np.asarray(real)
    real_dialogues = np.unique(dialogues[real])
    if len(real_dialogues) < 2:
        return None
    _, held = split_dialogues(real_dialogues, fraction, random_state)
    in_valid = np.isin(dialogues, np.asarray(held, dtype=real_dialogues.dtype))
    return np.flatnonzero(~in_valid), np.flatnonzero(in_valid & real)


def modality_presence(X: np.ndarray, blocks) -> np.ndarray:
    """Which modality blocks each row has: an all-zero block is a missing modality.

    The one definition of a missing modality (the convention of the loaders and of
    :class:`~sklearn_cberl.DJVAE`'s ``mask_missing``), used by DJVAE and by the classifier's
    in-network fusion alike.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    blocks : iterable of slice or index arrays
        The columns of each block.

    Returns
    -------
    ndarray of bool, shape (n_blocks, n_samples)
    """
    return np.stack([np.any(X[:, b] != 0, axis=1) for b in blocks]).reshape(-1, X.shape[0])


# --------------------------------------------------------------------------- synthetic rows
#: Values of the samplers' ``placement`` parameter.
PLACEMENTS = ("after_source", "standalone")


def densify_sparse_frame(X):
    """pandas sparse columns -> dense (the GAN is dense); the output restores their dtype."""
    if isinstance(X, pd.DataFrame):
        sparse = {c: d.subtype for c, d in X.dtypes.items() if isinstance(d, pd.SparseDtype)}
        if sparse:
            return X.astype(sparse)
    return X


def wrap_like(values: np.ndarray, reference, index=None):
    """Return ``values`` in the container type of ``reference`` (as imblearn's samplers do)."""
    if isinstance(reference, pd.Series):
        return pd.Series(values, dtype=reference.dtype, name=reference.name, index=index)
    if isinstance(reference, pd.DataFrame):
        values = np.asarray(values).reshape(len(values), -1)
        frame = pd.DataFrame(values, columns=reference.columns, index=index)
        return frame.astype(reference.dtypes.to_dict())
    if isinstance(reference, list):
        return np.asarray(values).tolist()
    return values


def new_dialogue_ids(existing: pd.Series, n: int) -> pd.Series:
    """``n`` dialogue ids that collide with none of ``existing``, of the same kind.

    Integer ids continue after the largest one, widened to int64 when the input's dtype
    cannot hold them (int8 ids would wrap around and collide); float ids likewise in
    float64; any other kind (strings, categories, booleans, ...) gets string ids.
    """
    dtype = existing.dtype
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)  # pandas nullable Int8 -> int8
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        start = int(existing.max()) + 1
        stop = start + n - 1
        if stop <= np.iinfo(numpy_dtype).max:
            return pd.Series(np.arange(start, start + n), dtype=dtype)
        if stop <= np.iinfo(np.int64).max:
            return pd.Series(np.arange(start, start + n, dtype=np.int64))
    elif pd.api.types.is_float_dtype(dtype):
        start = float(np.floor(existing.max())) + 1.0
        ids = start + np.arange(n, dtype=np.float64)
        exact = np.array_equal(ids.astype(numpy_dtype).astype(np.float64), ids)
        return pd.Series(ids, dtype=dtype if exact else np.float64)
    taken = {str(v) for v in existing.unique()}
    prefix = "emogan_"
    numbers = np.arange(n).astype(str)
    while True:
        names = np.char.add(prefix, numbers)
        if taken.isdisjoint(names.tolist()):
            break
        prefix = "_" + prefix  # an id of this form is taken: lengthen the prefix
    keep = pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    return pd.Series(names.astype(object), dtype=dtype if keep else object)


def assemble_resampled(X, conv: Conversations, features: np.ndarray, sample_indices, placement):
    """Put resampled features (real rows first) and carried metadata in X's container.

    Shared by :class:`~sklearn_cberl.over_sampling.EmoGANSampler` and
    :class:`~sklearn_cberl.over_sampling.ConversationSampler`: the metadata of row
    ``n + j`` is derived from its source row ``sample_indices[n + j]`` (see ``placement``).
    A conversation frame also gets the boolean ``synthetic`` row mark (kept from the input
    when a previous sampler wrote it), so that the classifier can keep synthetic rows out of
    its validation split.
    """
    n = conv.n_samples
    if not isinstance(X, pd.DataFrame):
        return features.tolist() if isinstance(X, list) else features
    new = features[n:]
    columns = [c for c in X.columns if c != SYNTHETIC]
    if not len(new):
        out = X.reset_index(drop=True)
    else:
        X_dense = densify_sparse_frame(X)
        if conv.is_plain:
            feature_columns = columns
        else:
            # conv.X holds the feature columns block by block (first appearance of each
            # modality prefix), which need not be the frame's column order.
            blocks: dict = {}
            for column in columns:
                if column not in METADATA_COLUMNS:
                    blocks.setdefault(modality_of(column), []).append(column)
            feature_columns = [c for cols in blocks.values() for c in cols]
        synthetic = pd.DataFrame(new, columns=feature_columns)
        if not conv.is_plain:
            for column, values in synthetic_metadata(X, conv, sample_indices, placement).items():
                synthetic[column] = values
        # Generated values are continuous: bool / integer feature columns become float64
        # before the concatenation (bool + float would give an object column).
        widen = {
            c: np.float64
            for c in feature_columns
            if not pd.api.types.is_float_dtype(X_dense[c].dtype)
        }
        X_dense = X_dense.astype(widen) if widen else X_dense
        out = pd.concat([X_dense.reset_index(drop=True), synthetic[columns]], ignore_index=True)
        # Float feature columns keep their exact input dtype (float32 / float64 / pandas
        # sparse or nullable floats); other numeric feature columns are float64 now.
        restore = {
            c: d
            for c, d in X.dtypes.items()
            if c in feature_columns and pd.api.types.is_float_dtype(d) and out[c].dtype != d
        }
        out = out.astype(restore) if restore else out
    if not conv.is_plain:
        mark = np.concatenate([~conv.real, np.ones(len(new), dtype=bool)])
        # One concatenation (inserting a column into a frame built column by column
        # fragments it) that never touches the input.
        out = pd.concat([out, pd.Series(mark, index=out.index, name=SYNTHETIC)], axis=1)
    return out


def synthetic_metadata(X: pd.DataFrame, conv: Conversations, sample_indices, placement) -> dict:
    """dialogue_id / speaker / turn of the synthetic rows (see ``placement``)."""
    n = conv.n_samples
    src = np.asarray(sample_indices)[n:]
    meta = X[list(METADATA_COLUMNS)].reset_index(drop=True)
    speaker = meta[SPEAKER].iloc[src].reset_index(drop=True)
    if placement == "standalone":
        turn_dtype = meta[TURN].dtype
        return {
            DIALOGUE: new_dialogue_ids(meta[DIALOGUE], len(src)),
            SPEAKER: speaker,
            TURN: pd.Series(np.zeros(len(src)), dtype=turn_dtype),
        }
    # after_source: between the source and the next utterance of its dialogue.
    order = conv.order
    dialogue_sorted, turn_sorted = conv.dialogue[order], conv.turn[order]
    gap_sorted = np.ones(n)
    same = dialogue_sorted[1:] == dialogue_sorted[:-1]
    gap_sorted[:-1][same] = (turn_sorted[1:] - turn_sorted[:-1])[same]
    gap = conv.to_input_order(gap_sorted)
    # k-th (1-based) of m synthetic rows sharing a source, in output order.
    rank_order = np.argsort(src, kind="stable")
    sorted_src = src[rank_order]
    first = np.searchsorted(sorted_src, sorted_src, side="left")
    k = np.empty(len(src), dtype=np.float64)
    k[rank_order] = np.arange(len(src)) - first + 1
    m = np.bincount(src, minlength=n)[src]
    turn = conv.turn[src] + gap[src] * k / (m + 1)
    return {
        DIALOGUE: meta[DIALOGUE].iloc[src].reset_index(drop=True),
        SPEAKER: speaker,
        TURN: pd.Series(turn, dtype=np.float64),
    }

