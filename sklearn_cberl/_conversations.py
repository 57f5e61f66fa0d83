"""The :class:`Conversations` container: a validated batch grouped into dialogues.

:func:`~sklearn_cberl.conversation.check_conversations` builds it; this module only holds
the grouped arrays and the index arithmetic over them (dialogue-major order, positions,
sub-batches, the way back to input row order). It knows nothing of column names, so the
data-model module can import it without a cycle, and it imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Conversations"]


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
