"""A pre-trained transformer encoder with mean pooling and a classification head.

The network that :class:`~sklearn_cberl.features.TunedTextEncoder` fine-tunes (through a
skorch ``NeuralNetClassifier``) and then reads its sentence embeddings from.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import default_collate

__all__ = ["SentenceClassifier", "collate_trimmed"]


class SentenceClassifier(nn.Module):
    """Transformer -> masked mean pooling -> dropout -> linear head.

    The pooling averages the last hidden states over ``pool_mask``: every token of the
    utterance (with ``[CLS]`` and ``[SEP]``, as sentence-transformers' mean pooling does, so
    before fine-tuning the embedding is the frozen model's), or only the target utterance's
    tokens when a dialogue window comes before it.

    Parameters
    ----------
    transformer : transformers.PreTrainedModel
        The encoder (e.g. all-MiniLM-L6-v2's BERT); fine-tuned in place.
    n_classes : int
        Width of the head.
    dropout : float, default=0.1
        Dropout before the head (training only).
    """

    def __init__(self, transformer, n_classes: int, dropout: float = 0.1):
        super().__init__()
        self.transformer = transformer
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(transformer.config.hidden_size, n_classes)

    def embed(self, input_ids, attention_mask, pool_mask, token_type_ids=None):
        """Mean of the last hidden states over ``pool_mask``: (batch, hidden)."""
        kwargs = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.transformer(
            input_ids=input_ids, attention_mask=attention_mask, **kwargs
        ).last_hidden_state
        weight = pool_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weight).sum(1) / weight.sum(1).clamp(min=1.0)

    def forward(self, input_ids, attention_mask, pool_mask, token_type_ids=None):
        """Class logits (batch, n_classes)."""
        pooled = self.embed(input_ids, attention_mask, pool_mask, token_type_ids)
        return self.head(self.dropout(pooled))


def collate_trimmed(batch):
    """``default_collate``, then drop the padding columns no row of the batch uses.

    The token arrays are padded to the longest input of the whole data set; trimming each
    batch to its own longest input saves most of the compute on short utterances.
    """
    X, y = default_collate(batch)
    width = int(X["attention_mask"].sum(1).max())
    return {key: value[:, :width] for key, value in X.items()}, y


def trimmed(X: dict, rows) -> dict:
    """The token arrays of ``rows`` as tensors, trimmed to their longest input."""
    out = {key: torch.as_tensor(value[rows]) for key, value in X.items()}
    width = int(out["attention_mask"].sum(1).max())
    return {key: value[:, :width] for key, value in out.items()}
