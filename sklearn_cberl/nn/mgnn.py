"""The masked multi-task graph network (MGNN) of CBERL (Eq. 13-18) and its classifier heads.

Data flow for a batch of dialogues (PyG-style node layout, see :mod:`sklearn_cberl.nn.graph`):

1. standardise the utterance features with the training mean / scale (buffers);
   optionally (``fusion_blocks``) fuse the modality blocks end to end with the DJVAE encoder
   (Eq. 8-12): the Bi-LSTM then reads the latent ``z`` (sampled in training, the posterior
   mean in evaluation) and each node's per-feature negative ELBO is returned for the loss;
2. Bi-LSTM over each dialogue in turn order (Eq. 13-14) -> context vectors ``g_i``;
3. training only: random node masking - a fraction ``mask_rate`` of the nodes that have a
   neighbour get their ``g_i`` replaced by a learned mask token, so their own features are
   hidden from aggregation and from the classifier (Sec. IV-A-4, Fig. 5);
4. two :class:`~sklearn_cberl.nn.graph.RelationalAttentionConv` layers (Eq. 15-17) over the
   context-window graph -> ``phi_i``;
5. the graph embedding ``[g_i (+) phi_i]`` feeds the classifier heads (one MLP, or ``M`` weak
   heads for the AdaBoost stage) and, for masked nodes, a reconstruction MLP that predicts the
   node's original (standardised) features (Eq. 18).

The module returns per-node tensors only, so skorch can concatenate outputs across batches:
``(logits (n, M, K), embedding (n, d), reconstruction_error (n,), mask (n,), elbo (n,))``
(``elbo`` is zero without end-to-end fusion).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .boosting import samme_decision
from .graph import RelationalAttentionConv, build_conversation_graph, num_relations
from .losses import reconstruction_error
from .vae import DJVAEModule, gaussian_kl, reconstruction_loss, reparameterize

__all__ = ["ContextLSTM", "WeakHeads", "MGNN"]


class ContextLSTM(nn.Module):
    """Bi-LSTM over each dialogue's utterances in turn order (Eq. 13-14).

    Dialogues are padded into a ``(n_dialogues, max_length, d)`` tensor by index assignment
    (no Python loop) and packed, so the backward direction starts at each dialogue's own
    last utterance rather than at the padding.
    """

    def __init__(self, in_features: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(in_features, hidden, batch_first=True, bidirectional=True)

    @property
    def out_features(self) -> int:
        return 2 * self.lstm.hidden_size

    def forward(self, x: Tensor, batch: Tensor, position: Tensor) -> Tensor:
        if x.size(0) == 0:
            return x.new_zeros(0, self.out_features)
        lengths = torch.bincount(batch)
        max_length = int(lengths.max())
        if max_length == 1:
            # Plain tables (every row its own dialogue): a length-1 sequence needs no padding.
            return self.lstm(x.unsqueeze(1))[0].squeeze(1)
        padded = x.new_zeros(lengths.numel(), max_length, x.size(1))
        padded[batch, position] = x
        packed = pack_padded_sequence(padded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=max_length)
        return out[batch, position]


class WeakHeads(nn.Module):
    """``M`` independent two-layer MLP classifiers evaluated in one batched matmul.

    Head ``m``: ``Linear(d, hidden) -> ReLU -> Dropout -> Linear(hidden, K)``, with
    :class:`torch.nn.Linear`'s initialisation. Output shape (n, M, K).
    """

    def __init__(self, in_features: int, hidden: int, n_classes: int, n_heads: int, dropout=0.5):
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(n_heads, in_features, hidden))
        self.b1 = nn.Parameter(torch.empty(n_heads, hidden))
        self.w2 = nn.Parameter(torch.empty(n_heads, hidden, n_classes))
        self.b2 = nn.Parameter(torch.empty(n_heads, n_classes))
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self):
        for w, b in ((self.w1, self.b1), (self.w2, self.b2)):
            bound = 1.0 / math.sqrt(w.shape[1])
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        n_heads, d, hidden = self.w1.shape
        h = (x @ self.w1.permute(1, 0, 2).reshape(d, n_heads * hidden)).view(-1, n_heads, hidden)
        h = self.dropout(torch.relu(h + self.b1))
        out = torch.bmm(h.transpose(0, 1), self.w2).transpose(0, 1)
        return out + self.b2


class MGNN(nn.Module):
    """Masked multi-task graph network with classifier heads (Eq. 13-18).

    Parameters
    ----------
    n_features : int
        Utterance feature width.
    n_classes : int
        Number of emotion classes ``K``.
    hidden_size : int, default=128
        Width of the context vectors ``g`` (Bi-LSTM, ``hidden_size // 2`` per direction), of
        each graph layer and of the head / reconstruction hidden layers.
    window_past, window_future, relations, max_speakers
        Graph construction, see :func:`~sklearn_cberl.nn.graph.build_conversation_graph`.
    attention_hidden : tuple of int, default=(200, 110)
        Attention MLP widths (Eq. 15).
    n_layers : int, default=2
        Graph layers (Eq. 17; the paper uses two: first- and second-order neighbours).
    mask_rate : float, default=0.2
        Fraction of nodes masked per training batch (0 disables masking).
    dropout : float, default=0.5
        Dropout on the context vectors, after every graph layer and inside the heads.
    n_heads : int, default=1
        Number of classifier heads (1 = the MLP ablation; ``n_estimators`` for AdaBoost).
    voting : {"soft", "hard"}
        How :meth:`decision` combines the heads (see :func:`samme_decision`).
    feature_mean, feature_scale : Tensor of shape (n_features,), default=None
        Standardisation statistics of the training features (identity when None).
    fusion_blocks : sequence of int, default=None
        Widths of the modality blocks (side by side in ``x``) to fuse end to end with a
        DJVAE encoder/decoder (MLP encoders of ``hidden_size``, product of experts); None
        feeds the standardised features to the Bi-LSTM directly.
    fusion_components : int, default=32
        Latent width of the end-to-end fusion.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        hidden_size: int = 128,
        window_past: int | None = 10,
        window_future: int | None = 10,
        relations: str = "speaker",
        max_speakers: int = 2,
        attention_hidden: tuple[int, ...] = (200, 110),
        n_layers: int = 2,
        mask_rate: float = 0.2,
        dropout: float = 0.5,
        n_heads: int = 1,
        voting: str = "soft",
        feature_mean: Tensor | None = None,
        feature_scale: Tensor | None = None,
        fusion_blocks: tuple[int, ...] | None = None,
        fusion_components: int = 32,
    ):
        super().__init__()
        self.n_features = n_features
        self.n_classes = n_classes
        self.window_past = window_past
        self.window_future = window_future
        self.relations = relations
        self.max_speakers = max_speakers
        self.mask_rate = float(mask_rate)
        self.voting = voting
        mean = torch.zeros(n_features) if feature_mean is None else feature_mean
        scale = torch.ones(n_features) if feature_scale is None else feature_scale
        self.register_buffer("feature_mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("feature_scale", torch.as_tensor(scale, dtype=torch.float32))
        # SAMME votes of the heads; part of the state dict so that restoring the best epoch
        # restores the votes that went with it.
        self.register_buffer("estimator_weights", torch.ones(n_heads))

        self.fusion = None
        if fusion_blocks:
            blocks = [int(b) for b in fusion_blocks]
            self.fusion = DJVAEModule(
                blocks, ["mlp"] * len(blocks), int(fusion_components), (hidden_size,)
            )
        in_features = n_features if self.fusion is None else int(fusion_components)
        self.context = ContextLSTM(in_features, max(1, hidden_size // 2))
        width = self.context.out_features
        self.mask_token = nn.Parameter(torch.randn(width) * 0.02)
        n_rel = num_relations(relations, max_speakers)
        self.convs = nn.ModuleList(
            RelationalAttentionConv(
                width if i == 0 else hidden_size, hidden_size, n_rel, attention_hidden
            )
            for i in range(n_layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.embedding_size = width + (hidden_size if n_layers else 0)
        self.heads = WeakHeads(self.embedding_size, hidden_size, n_classes, n_heads, dropout)
        self.reconstruction = nn.Sequential(
            nn.Linear(self.embedding_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, n_features),
        )

    def forward(self, x, batch, position, speaker, sample_weight=None):
        """Per-node outputs; ``sample_weight`` is accepted (skorch passes the whole batch
        dict) and used only by the loss."""
        raw = x
        x = (x - self.feature_mean) / self.feature_scale
        inputs, elbo = self._fuse(raw, x) if self.fusion is not None else (x, x.new_zeros(len(x)))
        g = self.dropout(self.context(inputs, batch, position))
        edge_index, edge_type = build_conversation_graph(
            batch,
            position,
            speaker,
            window_past=self.window_past,
            window_future=self.window_future,
            relations=self.relations,
            max_speakers=self.max_speakers,
        )
        n = x.size(0)
        mask = torch.zeros(n, dtype=torch.bool, device=x.device)
        if self.training and self.mask_rate > 0 and n:
            # Only nodes with a neighbour besides themselves: a lone node has no context to be
            # reconstructed from, masking it would only delete its training signal.
            has_context = torch.bincount(edge_index[1], minlength=n) > 1
            mask = (torch.rand(n, device=x.device) < self.mask_rate) & has_context
            g = torch.where(mask.unsqueeze(-1), self.mask_token.expand_as(g), g)
        h = g
        for conv in self.convs:
            h = self.dropout(conv(h, edge_index, edge_type))
        embedding = torch.cat([g, h], dim=-1) if len(self.convs) else g
        logits = self.heads(embedding)
        error = x.new_zeros(n)
        if bool(mask.any()):
            reconstructed = self.reconstruction(embedding[mask])
            error = error.index_put(
                (mask.nonzero().squeeze(-1),), reconstruction_error(reconstructed, x[mask])
            )
        return logits, embedding, error, mask.to(x.dtype), elbo

    def _fuse(self, raw: Tensor, x: Tensor):
        """End-to-end DJVAE fusion: the latent fed to the Bi-LSTM and the per-node ELBO loss.

        The loss is DJVAE's negative ELBO (Eq. 12, ``beta = 1``) divided by the number of
        features, so that it sits on the scale of the other per-utterance terms of Eq. 20.
        An all-zero raw block is a missing modality, as in :class:`~sklearn_cberl.DJVAE`.
        """
        blocks = self.fusion.blocks
        present = torch.stack([(raw[:, b] != 0).any(dim=1) for b in blocks]).to(x.dtype)
        mu, logvar = self.fusion.encode(x, present)
        z = reparameterize(mu, logvar) if self.training else mu
        weights = x.new_full((len(blocks),), 1.0 / len(blocks))
        rec = reconstruction_loss(self.fusion.decode(z), x, blocks, present, weights)
        return z, rec + gaussian_kl(mu, logvar) / self.n_features

    def decision(self, logits: Tensor) -> Tensor:
        """SAMME alpha-weighted vote of the heads (n, K)."""
        return samme_decision(logits, self.estimator_weights, self.voting)
