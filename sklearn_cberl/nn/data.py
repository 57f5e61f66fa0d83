"""Dialogue batching for the graph network: whole dialogues per batch, PyG-style node layout.

A batch of ``CBERLClassifier`` is a set of whole dialogues: :func:`dialogue_layout` puts a
validated conversation batch in dialogue-major order, :class:`DialogueDataset` serves one
dialogue per item, and :func:`collate_dialogues` concatenates dialogues into one node batch
(features, ``batch``, ``position``, ``speaker``) that :meth:`MGNN.forward
<sklearn_cberl.nn.mgnn.MGNN.forward>` builds its graph from on the training device.

No estimator imports here: the ``conv`` arguments are duck-typed
:class:`~sklearn_cberl.conversation.Conversations`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

__all__ = [
    "DialogueDataset",
    "collate_dialogues",
    "dialogue_dataset",
    "dialogue_layout",
    "inference_batch_size",
]

#: Utterances per inference batch: prediction batch size does not change the results (each
#: dialogue is computed independently) and large batches amortise per-batch overhead.
INFERENCE_UTTERANCES = 4096


def dialogue_layout(conv):
    """Dialogue-major arrays of a validated batch: features, position, local speaker codes.

    Returns
    -------
    x : ndarray of shape (n, d), float32
    position, speaker : ndarray of shape (n,), int64
        Rank inside the dialogue; speakers numbered 0, 1, ... by first appearance in it.
    offsets : ndarray of shape (n_dialogues + 1,)
        Row range of each dialogue.
    """
    order = conv.order
    lengths = conv.lengths
    offsets = conv.offsets
    n = conv.n_samples
    # One definition of the in-dialogue rank: the container's, taken in dialogue-major order.
    position = conv.position[order]
    dialogue = conv.dialogue[order]
    speaker = conv.speaker[order]
    # Speakers numbered 0, 1, ... by first appearance inside each dialogue: factorising
    # (dialogue, speaker) pairs in dialogue-major order numbers a dialogue's speakers
    # consecutively, so subtracting the code of the dialogue's first row localises them.
    pair = dialogue.astype(np.int64) * (int(speaker.max(initial=0)) + 1) + speaker
    codes = pd.factorize(pair, sort=False)[0]
    first = codes[offsets[:-1]] if n else codes
    local = codes - np.repeat(first, lengths)
    # Frames are usually already in dialogue/turn order: skip the copy of the fancy index.
    rows = conv.X if np.array_equal(order, np.arange(n)) else conv.X[order]
    x = np.ascontiguousarray(rows, dtype=np.float32)
    return x, position.astype(np.int64), local.astype(np.int64), offsets


class DialogueDataset(torch.utils.data.Dataset):
    """Whole dialogues of a batch of utterances; item ``d`` is dialogue ``d``'s rows.

    Parameters
    ----------
    x : ndarray of shape (n, d), float32
        Features in dialogue-major order.
    position, speaker : ndarray of shape (n,)
        Rank inside the dialogue and dialogue-local speaker code of each row.
    offsets : ndarray of shape (n_dialogues + 1,)
        Row range of each dialogue.
    y, sample_weight : ndarray of shape (n,), default=None
        Label codes and weights (zeros / ones when None).
    """

    def __init__(self, x, position, speaker, offsets, y=None, sample_weight=None):
        n = x.shape[0]
        self.x = torch.from_numpy(x)
        self.position = torch.from_numpy(position)
        self.speaker = torch.from_numpy(speaker)
        self.y = torch.from_numpy(
            np.zeros(n, dtype=np.int64) if y is None else np.asarray(y, dtype=np.int64)
        )
        weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight)
        self.sample_weight = torch.from_numpy(weight.astype(np.float32))
        self.offsets = np.asarray(offsets, dtype=np.int64)

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, d):
        a, b = int(self.offsets[d]), int(self.offsets[d + 1])
        return (
            self.x[a:b],
            self.position[a:b],
            self.speaker[a:b],
            self.sample_weight[a:b],
            self.y[a:b],
        )


def dialogue_dataset(conv, y=None, sample_weight=None):
    """:class:`DialogueDataset` of a validated batch; ``y`` / ``sample_weight`` in row order."""
    x, position, speaker, offsets = dialogue_layout(conv)
    order = conv.order
    return DialogueDataset(
        x,
        position,
        speaker,
        offsets,
        y=None if y is None else y[order],
        sample_weight=None if sample_weight is None else sample_weight[order],
    )


def inference_batch_size(conv, batch_size):
    """Dialogues per inference batch: about :data:`INFERENCE_UTTERANCES` utterances, at least
    ``batch_size`` dialogues."""
    mean_length = max(1.0, conv.n_samples / max(conv.n_dialogues, 1))
    return max(batch_size, int(INFERENCE_UTTERANCES // mean_length))


def collate_dialogues(items):
    """Stack dialogues into one node batch: ``({x, batch, position, speaker, sample_weight}, y)``.

    The dict is the PyG ``Batch`` layout (nodes concatenated dialogue by dialogue plus a
    ``batch`` vector); skorch moves it to the device and passes it to ``MGNN.forward``.
    """
    x, position, speaker, weight, y = zip(*items)
    lengths = torch.tensor([len(p) for p in position])
    batch = torch.repeat_interleave(torch.arange(len(items)), lengths)
    features = {
        "x": torch.cat(x),
        "batch": batch,
        "position": torch.cat(position),
        "speaker": torch.cat(speaker),
        "sample_weight": torch.cat(weight),
    }
    return features, torch.cat(y)
