"""Modality blocks of DJVAE's input: which columns, which encoder, standardised how.

Kept apart from the estimator (:mod:`sklearn_cberl.fusion`): these are plain functions of the
validated :class:`~sklearn_cberl.conversation.Conversations` and the estimator's parameters.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array

from .conversation import METADATA_COLUMNS, PLAIN_BLOCK
from .nn.vae import ENCODERS, PAPER_ENCODERS

__all__ = [
    "block_columns",
    "check_passthrough_names",
    "fused_output",
    "latent_input",
    "held_out_rows",
    "is_conversation_frame",
    "resolve_encoders",
    "standardise_blocks",
]


def is_conversation_frame(X) -> bool:
    """Whether X carries metadata columns (a conversation frame, not a plain table)."""
    return isinstance(X, pd.DataFrame) and any(c in X.columns for c in METADATA_COLUMNS)


def block_columns(X, conv, modalities, conversational: bool) -> dict[str, np.ndarray]:
    """Column indices (into ``conv.X``) of each modality block.

    A conversation frame has its blocks already; a plain table is one block, unless
    ``modalities`` names column prefixes (then X must be a DataFrame).
    """
    names = [str(n) for n in conv.feature_names]
    if conversational:
        return {m: np.arange(s.start, s.stop) for m, s in conv.blocks.items()}
    if modalities is None:
        return {PLAIN_BLOCK: np.arange(len(names))}
    if not isinstance(X, pd.DataFrame):
        raise ValueError(
            f"modalities={modalities!r} needs named columns: pass a DataFrame whose columns "
            "are named '<modality>_<i>', or modalities=None."
        )
    columns = {}
    for m in [modalities] if isinstance(modalities, str) else modalities:
        idx = np.array([i for i, n in enumerate(names) if n.startswith(f"{m}_")])
        if idx.size == 0:
            raise ValueError(
                f"Modality block {m!r} has no columns: expected at least one column "
                f"named '{m}_<i>' in X."
            )
        columns[m] = idx
    return columns


def resolve_encoders(spec, modalities) -> dict[str, str]:
    """The encoder kind of each modality from DJVAE's ``encoder`` parameter (Fig. 4)."""
    kinds = sorted(ENCODERS)
    if isinstance(spec, str):
        if spec == "paper":
            return {m: PAPER_ENCODERS.get(m, "mlp") for m in modalities}
        if spec not in ENCODERS:
            raise ValueError(
                f"encoder must be 'paper', one of {kinds} or a dict modality -> kind, got {spec!r}."
            )
        return dict.fromkeys(modalities, spec)
    if isinstance(spec, Mapping):
        unknown = [m for m in spec if m not in modalities]
        if unknown:
            raise ValueError(
                f"encoder names modalities {unknown} that are not among the fitted "
                f"blocks {list(modalities)}."
            )
        bad = {m: k for m, k in spec.items() if k not in ENCODERS}
        if bad:
            raise ValueError(f"encoder kinds must be among {kinds}, got {bad}.")
        return {m: spec.get(m, "mlp") for m in modalities}
    raise TypeError(f"encoder must be a str or a dict modality -> kind, got {type(spec).__name__}.")


def standardise_blocks(conv, columns, scalers: dict, mask_missing: bool, *, fit: bool):
    """Standardised float32 features (blocks side by side) and the (M, n) presence mask.

    With ``mask_missing`` an all-zero block is a missing modality: it is left out of the
    scaler's statistics and set to 0 after scaling. ``fit=True`` fits ``scalers[m]``.
    """
    parts, present = [], []
    for m, idx in columns.items():
        block = conv.X[:, idx]
        here = np.any(block != 0, axis=1) if mask_missing else np.ones(len(block), dtype=bool)
        if fit:
            if not here.any():
                raise ValueError(
                    f"Modality {m!r} is all zeros (missing) in every training row: "
                    "drop it with modalities=..., or set mask_missing=False."
                )
            scalers[m] = StandardScaler().fit(block[here])
        scaled = scalers[m].transform(block).astype(np.float32)
        scaled[~here] = 0.0
        parts.append(scaled)
        present.append(here)
    return np.hstack(parts), np.stack(present).astype(np.float32)


def held_out_rows(conv, fraction: float, random_state) -> np.ndarray:
    """Boolean mask of the rows of ``fraction`` of the dialogues (of the rows, for a plain
    table), drawn with ``random_state``; at least one row, never all of them."""
    from sklearn.model_selection import GroupShuffleSplit

    groups = np.arange(conv.n_samples) if conv.is_plain else conv.dialogue
    if len(np.unique(groups)) < 2:
        raise ValueError(
            "early_stopping needs at least two dialogues to hold some out, or pass validation_data."
        )
    split = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=random_state)
    _, held = next(split.split(np.zeros(conv.n_samples), groups=groups))
    mask = np.zeros(conv.n_samples, dtype=bool)
    mask[held] = True
    return mask


def check_passthrough_names(fused_names, input_names) -> None:
    """Passthrough would put input columns named ``fused_*`` next to the latent's: refuse."""
    clash = sorted(set(fused_names) & set(input_names))
    if clash:
        raise ValueError(
            f"passthrough=True would duplicate the column(s) {clash[:3]}: rename the input's "
            "fused_* columns or leave them out with modalities=..."
        )


def fused_output(X, conv, latent, columns, fused_names, passthrough: bool, conversational: bool):
    """DJVAE's output: metadata (a conversation frame), the latent, then the input blocks
    when ``passthrough``; a plain table gives an array."""
    order = np.concatenate(list(columns.values()))
    if not conversational:
        return np.hstack([latent, conv.X[:, order]]) if passthrough else latent
    parts = [conv.metadata, pd.DataFrame(latent, index=X.index, columns=fused_names)]
    if passthrough:
        label = {str(c): c for c in X.columns}
        parts.append(X[[label[n] for n in conv.feature_names[order]]])
    return pd.concat(parts, axis=1)


def latent_input(X, fused_names, passthrough_width: int):
    """The latent matrix of ``inverse_transform``'s input and the metadata frame, if any.

    ``X`` is DJVAE's output (its ``fused_*`` columns are used) or an array of the latent,
    optionally followed by the ``passthrough_width`` passthrough columns.
    """
    k = len(fused_names)
    if isinstance(X, pd.DataFrame) and all(c in X.columns for c in fused_names):
        metadata = None
        if all(c in X.columns for c in METADATA_COLUMNS):
            metadata = X[list(METADATA_COLUMNS)].copy()
        return check_array(X[fused_names], dtype=(np.float64, np.float32)), metadata
    Z = check_array(X, dtype=(np.float64, np.float32))
    if Z.shape[1] == k + passthrough_width:
        Z = Z[:, :k]
    if Z.shape[1] != k:
        raise ValueError(
            f"X has {Z.shape[1]} columns: expected the latent ({k} columns, or a frame with "
            f"columns {fused_names[0]}..{fused_names[-1]})."
        )
    return Z, None
