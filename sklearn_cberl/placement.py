"""Where synthetic utterances go in a conversation frame (part of the data model).

An over-sampler returns features for new rows and, for each, the real row it comes from
(``sample_indices``). This module turns that into an output of the input's container: real
rows first and unchanged, then the synthetic rows with valid ``dialogue_id`` / ``speaker`` /
``turn`` (see ``placement``) and the boolean ``synthetic`` row mark. Like
:mod:`sklearn_cberl.conversation` it imports no torch.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .conversation import (
    DIALOGUE,
    METADATA_COLUMNS,
    SPEAKER,
    SYNTHETIC,
    TURN,
    Conversations,
    modality_of,
)

__all__ = [
    "PLACEMENTS",
    "assemble_resampled",
    "densify_sparse_frame",
    "new_dialogue_ids",
    "synthetic_metadata",
    "wrap_like",
]

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
        out = out.copy() if out is X else out
        out[SYNTHETIC] = np.concatenate([~conv.real, np.ones(len(new), dtype=bool)])
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
