"""CBERL's classification network (paper Eq. 13-20): graph, masked multi-task network, losses.

Everything the classifier's network computes, in the order data flows through it:

* **the conversation graph** (Eq. 15-17): :func:`build_conversation_graph` turns a batch of
  dialogues, laid out PyG-style (nodes concatenated dialogue by dialogue, a ``batch`` vector
  naming each node's dialogue and a ``position`` vector its rank inside it), into directed
  context-window edges ``j -> i`` with a relation type per edge, using tensor operations only
  (no Python loop over utterances, edges or dialogues);
  :class:`RelationalAttentionConv` is the similarity-attention relational convolution;
* **the network** (:class:`MGNN`, Eq. 13-18): optional end-to-end DJVAE fusion, a Bi-LSTM
  over each dialogue (:class:`ContextLSTM`), random node masking, two graph layers, the
  weak classifier heads (:class:`WeakHeads`) and a feature-reconstruction head;
* **the losses** (Eq. 18-20): :func:`focal_loss`, :func:`masked_reconstruction_loss` and the
  criterion :class:`CBERLLoss`;
* **SAMME** (the AdaBoost stage, Sec. IV-A-5): :func:`samme_alpha`, :func:`samme_weights`,
  :func:`samme_decision` - scikit-learn's ``AdaBoostClassifier(algorithm="SAMME")``
  arithmetic (Zhu et al., 2009) on tensors, so that it runs on the training device inside
  the loss; how rounds interleave with training is the skorch net's business
  (:mod:`sklearn_cberl.classifier`).

Relation types of an edge ``j -> i`` (``relations="speaker"``, the default; ``R = 5``):

====  ==========================================================
r     meaning
====  ==========================================================
0     j is *before* i (past), different speaker
1     j is before i (past), same speaker
2     j is *after* i (future), different speaker
3     j is after i (future), same speaker
4     self-loop ``i -> i`` (the ``w_ii W_zeta`` term of Eq. 17)
====  ==========================================================

``relations="pair"`` is DialogueGCN's full set: one relation per (speaker of j, speaker of i,
direction) with speakers numbered by first appearance inside their dialogue and capped at
``max_speakers`` (later speakers share the last slot), ``R = 2 * max_speakers**2 + 1`` with the
self-loop last.

The module returns per-node tensors only, so skorch can concatenate outputs across batches.
Every tensor created here follows the input's device (CPU/CUDA parity). No estimator is
imported.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax, to_torch_csr_tensor

from .vae import DJVAEModule, drop_modalities, negative_elbo

__all__ = [
    "RELATIONS",
    "CBERLLoss",
    "ContextLSTM",
    "MGNN",
    "RelationalAttentionConv",
    "WeakHeads",
    "build_conversation_graph",
    "focal_loss",
    "masked_reconstruction_loss",
    "num_relations",
    "reconstruction_error",
    "samme_alpha",
    "samme_decision",
    "samme_weights",
    "total_loss",
]


# -------------------------------------------------------------- the conversation graph (Eq. 15-17)
#: Names of the relation types of ``relations="speaker"``, in relation-id order.
RELATIONS = ("past_other", "past_same", "future_other", "future_same", "self")


def num_relations(relations: str = "speaker", max_speakers: int = 2) -> int:
    """Number of relation types, self-loop included."""
    if relations == "speaker":
        return len(RELATIONS)
    if relations == "pair":
        return 2 * max_speakers * max_speakers + 1
    raise ValueError(f"relations must be 'speaker' or 'pair', got {relations!r}.")


def build_conversation_graph(
    batch: Tensor,
    position: Tensor,
    speaker: Tensor,
    *,
    window_past: int | None = 10,
    window_future: int | None = 10,
    relations: str = "speaker",
    max_speakers: int = 2,
) -> tuple[Tensor, Tensor]:
    """Directed context-window edges and their relation types for a batch of dialogues.

    Parameters
    ----------
    batch : LongTensor of shape (n_nodes,)
        Dialogue of each node, non-decreasing (nodes grouped dialogue by dialogue).
    position : LongTensor of shape (n_nodes,)
        Rank of each node inside its dialogue: ``0 .. length-1`` in node order.
    speaker : LongTensor of shape (n_nodes,)
        Speaker code of each node; only equality within a dialogue matters, except for
        ``relations="pair"`` which needs codes numbered ``0, 1, ...`` inside each dialogue.
    window_past, window_future : int or None
        How many earlier / later utterances each node receives messages from (None: the
        whole dialogue; 0: none). The self-loop is always present.
    relations : {"speaker", "pair"}
        Relation typing, see the module docstring.
    max_speakers : int
        Speaker slots for ``relations="pair"``.

    Returns
    -------
    edge_index : LongTensor of shape (2, n_edges)
        ``[source j, target i]``, sorted by target, self-loop included for every node.
    edge_type : LongTensor of shape (n_edges,)
        Relation id of each edge (``num_relations(...) - 1`` is the self-loop).
    """
    n = position.numel()
    device = position.device
    if n == 0:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return torch.stack([empty, empty]), empty
    # Dialogue lengths and start offsets from the (sorted) batch vector.
    lengths = torch.bincount(batch)
    start = torch.cumsum(lengths, 0) - lengths
    length = lengths[batch]
    first = start[batch]
    # Window [lo, hi] of source positions for every target node, self included.
    if window_past is None:
        lo = torch.zeros_like(position)
    else:
        lo = torch.clamp(position - window_past, min=0)
    hi = (
        length - 1 if window_future is None else torch.minimum(position + window_future, length - 1)
    )
    count = hi - lo + 1
    n_edges = int(count.sum())
    # Expand each target into its window with repeat_interleave + a running offset: the
    # vectorised equivalent of `for i: for j in range(lo_i, hi_i + 1)`.
    target = torch.repeat_interleave(torch.arange(n, device=device), count, output_size=n_edges)
    run_start = torch.cumsum(count, 0) - count
    k = torch.arange(n_edges, device=device) - torch.repeat_interleave(
        run_start, count, output_size=n_edges
    )
    source_pos = lo[target] + k
    source = first[target] + source_pos

    target_pos = position[target]
    future = source_pos > target_pos
    is_self = source == target
    if relations == "speaker":
        same = speaker[source] == speaker[target]
        edge_type = 2 * future.long() + same.long()
        self_type = len(RELATIONS) - 1
    elif relations == "pair":
        cap = max_speakers - 1
        s_src = torch.clamp(speaker[source], max=cap)
        s_dst = torch.clamp(speaker[target], max=cap)
        edge_type = (future.long() * max_speakers + s_src) * max_speakers + s_dst
        self_type = 2 * max_speakers * max_speakers
    else:
        raise ValueError(f"relations must be 'speaker' or 'pair', got {relations!r}.")
    edge_type = torch.where(is_self, torch.full_like(edge_type, self_type), edge_type)
    return torch.stack([source, target]), edge_type


class RelationalAttentionConv(MessagePassing):
    r"""One layer of CBERL's graph interaction network (Eq. 15-17).

    Edge weights (similarity attention) from an MLP over the endpoint features and the edge
    indicator (Eq. 15), normalised by a softmax over each node's incoming edges (Eq. 16):

    .. math::
        s_{ij} = W_{\theta_1}\,\mathrm{ReLU}(W_{\theta_2}[g_i \oplus g_j \oplus \Pi_{ij}]),
        \qquad w_{ij} = \mathrm{softmax}_{j \in \mathcal{M}_i}(s_{ij})

    then relational message passing (Eq. 17):

    .. math::
        \phi_i' = \mathrm{ReLU}\Big(\sum_r \sum_{j \in \mathcal{M}_i^r}
        \frac{w_{ij}}{c_{i,r}} W_r \phi_j + w_{ii} W_\zeta \phi_i\Big)

    The paper's :math:`\Pi_{ij}` is a 0/1 edge indicator, which is constant (1) on every edge
    that exists and would only add a bias; we use its per-relation generalisation, a learned
    embedding of the edge's relation type, so the attention can tell e.g. past from future.
    The first MLP layer on the concatenation is computed as ``A g_i + B g_j + C[r_ij]``:
    the same linear map, but node projections are computed once per node and gathered per
    edge instead of multiplying an ``(n_edges, 2d)`` matrix. ``W_zeta`` is the weight of the
    self-loop relation (``c_{i,self} = 1``).

    Parameters
    ----------
    in_channels, out_channels : int
        Node feature widths.
    num_relations : int
        Relation types including the self-loop (the last one).
    attention_hidden : tuple of int, default=(200, 110)
        Hidden widths of the attention MLP (Eq. 15, the paper's 200 and 110).
    activation : bool, default=True
        Apply the ReLU of Eq. 17.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_relations: int,
        attention_hidden: tuple[int, ...] = (200, 110),
        activation: bool = True,
    ):
        super().__init__(aggr="add", node_dim=0)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_relations = num_relations
        self.activation = activation
        hidden = tuple(int(h) for h in attention_hidden)
        if not hidden:
            raise ValueError("attention_hidden needs at least one layer width.")
        # Eq. 15, first layer, split over the three concatenated parts.
        self.att_target = nn.Linear(in_channels, hidden[0])
        self.att_source = nn.Linear(in_channels, hidden[0], bias=False)
        self.att_relation = nn.Embedding(num_relations, hidden[0])
        layers: list[nn.Module] = []
        for a, b in zip(hidden[:-1], hidden[1:]):
            layers += [nn.ReLU(), nn.Linear(a, b)]
        layers += [nn.ReLU(), nn.Linear(hidden[-1], 1)]
        self.att_mlp = nn.Sequential(*layers)
        # W_r for every relation, W_zeta = weight[-1]; stored as one matrix so that all
        # relation transforms of a node are one matmul.
        self.weight = nn.Parameter(torch.empty(num_relations, in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.att_target.reset_parameters()
        self.att_source.reset_parameters()
        nn.init.normal_(self.att_relation.weight, std=0.1)
        for layer in self.att_mlp:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()
        nn.init.xavier_uniform_(self.weight.view(-1, self.out_channels))
        nn.init.zeros_(self.bias)

    def attention(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """Edge weights ``w_ij`` (Eq. 15-16): they sum to 1 over the incoming edges of a node."""
        source, target = edge_index
        R = self.num_relations
        if R <= 16:
            # Fold the relation term into a per-(node, relation) table: one gather and one add
            # per edge instead of three gathers and two adds (edge-sized tensors dominate).
            table = (self.att_target(x).unsqueeze(1) + self.att_relation.weight).flatten(0, 1)
            hidden = table[target * R + edge_type] + self.att_source(x)[source]
        else:
            hidden = (
                self.att_target(x)[target]
                + self.att_source(x)[source]
                + self.att_relation(edge_type)
            )
        score = self.att_mlp(hidden).squeeze(-1)
        return softmax(score, target, num_nodes=x.size(0))

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        n = x.size(0)
        R = self.num_relations
        source, target = edge_index
        weight = self.attention(x, edge_index, edge_type)
        # c_{i,r}: number of neighbours of node i under relation r (Eq. 17).
        slot = target * R + edge_type
        c = torch.bincount(slot, minlength=n * R).to(x.dtype)
        norm = weight / c[slot]
        # All relation transforms W_r phi_j at once, flattened to one row per (node, relation);
        # message passing then gathers row (j, r_ij) for each edge and sums into target i.
        transformed = (x @ self.weight.permute(1, 0, 2).reshape(self.in_channels, -1)).view(
            n * R, self.out_channels
        )
        column = source * R + edge_type
        if torch.is_grad_enabled() and (norm.requires_grad or transformed.requires_grad):
            # Training: explicit messages (gather, scale, scatter-add) - their backward is
            # several times faster than a sparse matmul's.
            lifted = torch.stack([column, target])
            out = self.propagate(lifted, x=(transformed, None), norm=norm, size=(n * R, n))
        else:
            # Inference: fuse message and aggregation into one CSR sparse-dense matmul
            # (PyG's message_and_aggregate path), ~20x faster than materialising the
            # (n_edges, out) messages.
            # (n, n * R) CSR matrix built by PyG; torch's notices about CSR support being
            # beta and invariant checks being off are silenced: PyG builds a sorted, valid
            # matrix and this matmul is stable.
            with warnings.catch_warnings():
                warnings.filterwarnings(
                    "ignore",
                    message=".*[Ss]parse (CSR tensor support|invariant checks)",
                    category=UserWarning,
                )
                adj_t = to_torch_csr_tensor(torch.stack([target, column]), norm, size=(n, n * R))
            out = self.propagate(adj_t, x=(transformed, None), norm=None)
        out = out + self.bias
        return torch.relu(out) if self.activation else out

    def message(self, x_j: Tensor, norm: Tensor) -> Tensor:
        return norm.unsqueeze(-1) * x_j

    def message_and_aggregate(self, edge_index: Tensor, x) -> Tensor:
        source = x[0] if isinstance(x, (tuple, list)) else x
        return edge_index @ source

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
            f"num_relations={self.num_relations})"
        )


# ------------------------------------------------------------------------- the network (Eq. 13-18)
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
        Graph construction, see :func:`build_conversation_graph`.
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
    fusion : dict, default=None
        The :class:`~sklearn_cberl.nn.vae.DJVAEModule` configuration (its ``config``:
        block sizes, encoders, latent size, hidden sizes, posterior) of an end-to-end fusion:
        the modality blocks (side by side in ``x``) are fused by that DJVAE encoder and the
        Bi-LSTM reads its latent. None feeds the standardised features to the Bi-LSTM.
    fusion_beta : float, default=1.0
        KL weight of the fusion's Eq. 12 loss.
    fusion_passthrough : bool, default=False
        The Bi-LSTM reads the standardised features next to the latent (a skip path: the
        fusion can add to the inputs but not hide them).
    fusion_dropout : float, default=0.0
        Modality dropout of the fusion in training
        (:func:`~sklearn_cberl.nn.vae.drop_modalities`).
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
        fusion: dict | None = None,
        fusion_beta: float = 1.0,
        fusion_passthrough: bool = False,
        fusion_dropout: float = 0.0,
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

        self.fusion = None if fusion is None else DJVAEModule(**fusion)
        self.fusion_beta = float(fusion_beta)
        self.fusion_passthrough = bool(fusion_passthrough) and self.fusion is not None
        self.fusion_dropout = float(fusion_dropout)
        in_features = n_features if self.fusion is None else self.fusion.n_components
        in_features += n_features if self.fusion_passthrough else 0
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

    def forward(self, x, batch, position, speaker, sample_weight=None, present=None):
        """Per-node outputs ``(logits (n, M, K), embedding (n, d), reconstruction_error (n,),
        mask (n,), elbo (n,))``; ``elbo`` is zero without fusion.

        ``sample_weight`` is accepted (skorch passes the whole batch dict) and used only by
        the loss; ``present`` (n, n_modalities) marks each node's modalities for the fusion.
        """
        x = (x - self.feature_mean) / self.feature_scale
        inputs, elbo = (x, x.new_zeros(len(x))) if self.fusion is None else self._fuse(x, present.T)
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

    def _fuse(self, x: Tensor, present: Tensor):
        """End-to-end DJVAE fusion: the latent fed to the Bi-LSTM and the per-node ELBO loss.

        The loss is DJVAE's negative ELBO (Eq. 12, :func:`~sklearn_cberl.nn.vae.negative_elbo`
        with the fusion's ``beta``) divided by the number of features, so that it sits on
        the per-feature scale of the other per-utterance terms of Eq. 20. ``present`` marks
        the modalities each node has (``sklearn_cberl.conversation.modality_presence``).
        """
        if self.training:
            present = drop_modalities(present, self.fusion_dropout)
        elbo = negative_elbo(self.fusion, x, present, sample=self.training)
        inputs = torch.cat([elbo.z, x], dim=1) if self.fusion_passthrough else elbo.z
        return inputs, elbo.loss(self.fusion_beta) / self.n_features

    def decision(self, logits: Tensor) -> Tensor:
        """SAMME alpha-weighted vote of the heads (n, K)."""
        return samme_decision(logits, self.estimator_weights, self.voting)


# -------------------------------------------------------------------------- the losses (Eq. 18-20)
def _weighted_mean(values: Tensor, weight: Tensor | None) -> Tensor:
    if weight is None:
        return values.mean()
    # clamp: an all-zero-weight batch contributes 0 rather than 0/0.
    return (values * weight).sum() / weight.sum().clamp_min(torch.finfo(values.dtype).tiny)


def focal_loss(
    logits: Tensor,
    target: Tensor,
    *,
    gamma: float = 3.0,
    alpha: Tensor | None = None,
    weight: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    r"""Focal loss (Eq. 19): :math:`-\alpha_y (1 - p_y)^\gamma \log p_y`, averaged.

    Parameters
    ----------
    logits : Tensor of shape (n, K) or (n, M, K)
        Unnormalised class scores; a middle axis holds ``M`` classifier heads that share the
        target (the AdaBoost heads), each with its own weight column.
    target : LongTensor of shape (n,)
        Class index of each utterance.
    gamma : float, default=3.0
        Focusing parameter; ``gamma=0`` gives (weighted) cross-entropy.
    alpha : Tensor of shape (K,), default=None
        Per-class weight (Lin et al.'s alpha-balancing).
    weight : Tensor of shape (n,) or (n, M), default=None
        Per-utterance weight (sample weights, boosting weights).
    reduction : {"mean", "none"}
        ``"mean"``: weighted mean over utterances (and mean over heads); ``"none"``: the
        per-utterance loss, shape (n,) or (n, M).
    """
    log_p = F.log_softmax(logits, dim=-1)
    index = target.view(-1, *([1] * (logits.dim() - 1)))
    index = index.expand(*logits.shape[:-1], 1)
    log_pt = log_p.gather(-1, index).squeeze(-1)
    loss = -log_pt
    if gamma:
        # (1 - p)^gamma computed as -expm1(log p) for accuracy when p -> 1.
        loss = loss * (-torch.expm1(log_pt)).clamp_min(0).pow(gamma)
    if alpha is not None:
        a = alpha[target]
        loss = loss * (a.unsqueeze(-1) if loss.dim() > 1 else a)
    if reduction == "none":
        return loss
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
    if weight is not None and weight.dim() < loss.dim():
        weight = weight.unsqueeze(-1).expand_as(loss)
    if loss.dim() == 1:
        return _weighted_mean(loss, weight)
    # Weighted mean over utterances per head, then mean over heads: the balance between
    # Eq. 18 and Eq. 19 in Eq. 20 does not depend on the number of heads.
    if weight is None:
        return loss.mean()
    per_head = (loss * weight).sum(0) / weight.sum(0).clamp_min(torch.finfo(loss.dtype).tiny)
    return per_head.mean()


def reconstruction_error(reconstruction: Tensor, original: Tensor) -> Tensor:
    """Per-node squared error of Eq. 18, averaged over the feature dimension, shape (n,)."""
    return (reconstruction - original).pow(2).mean(-1)


def masked_reconstruction_loss(
    error: Tensor,
    mask: Tensor,
    weight: Tensor | None = None,
) -> Tensor:
    """Eq. 18: mean squared reconstruction error over the masked nodes.

    Parameters
    ----------
    error : Tensor of shape (n,)
        Per-node error from :func:`reconstruction_error` (any value on unmasked nodes).
    mask : BoolTensor of shape (n,)
        Which nodes were masked.
    weight : Tensor of shape (n,), default=None
        Per-utterance weights.

    Returns
    -------
    Tensor
        Scalar; 0 (keeping the graph) when no node is masked.
    """
    if not bool(mask.any()):
        return error.sum() * 0.0
    return _weighted_mean(error[mask], None if weight is None else weight[mask])


def total_loss(recon: Tensor, focal: Tensor, xi_recon: float = 0.3, xi_focal: float = 0.7):
    """Eq. 20: ``xi_recon * L_recon + xi_focal * L_focal`` (paper: 0.3 and 0.7)."""
    return xi_recon * recon + xi_focal * focal


class CBERLLoss(torch.nn.Module):
    """Eq. 20 as a criterion module: ``xi_recon * L_recon (Eq. 18) + xi_focal * L_focal (Eq. 19)``
    (``+ xi_fusion * L_ELBO`` with end-to-end fusion).

    Parameters
    ----------
    gamma : float, default=3.0
        Focal-loss focusing parameter.
    alpha : Tensor of shape (K,), default=None
        Per-class focal weights (a buffer, so it follows the module's device).
    xi_recon, xi_focal : float, default=0.3, 0.7
        Task weights of Eq. 20.
    xi_fusion : float, default=1.0
        Weight of the end-to-end fusion's negative ELBO (per feature, Eq. 12), when given.
    """

    def __init__(self, gamma=3.0, alpha=None, xi_recon=0.3, xi_focal=0.7, xi_fusion=1.0):
        super().__init__()
        self.gamma = float(gamma)
        self.xi_recon = float(xi_recon)
        self.xi_focal = float(xi_focal)
        self.xi_fusion = float(xi_fusion)
        self.register_buffer(
            "alpha", None if alpha is None else torch.as_tensor(alpha, dtype=torch.float32)
        )

    def forward(
        self, logits, target, *, error=None, mask=None, weight=None, head_weight=None, elbo=None
    ):
        """Return ``(total, focal, recon)``; ``head_weight`` (n, M) overrides ``weight`` in
        the focal term (boosting), ``weight`` (n,) always weights the reconstruction terms;
        ``elbo`` (n,) is the per-utterance fusion loss (end-to-end fusion only)."""
        focal = focal_loss(
            logits,
            target,
            gamma=self.gamma,
            alpha=self.alpha,
            weight=weight if head_weight is None else head_weight,
        )
        if error is None or mask is None:
            recon = focal.new_zeros(())
        else:
            recon = masked_reconstruction_loss(error, mask, weight)
        total = total_loss(recon, focal, self.xi_recon, self.xi_focal)
        if elbo is not None:
            total = total + self.xi_fusion * _weighted_mean(elbo, weight)
        return total, focal, recon


# ------------------------------------------------------------------------------------------- SAMME
#: Error clipping: keeps alpha finite when a head is perfect on a batch.
EPS = 1e-6


def samme_alpha(error: Tensor, n_classes: int, learning_rate: float = 1.0) -> Tensor:
    """SAMME vote of a head with weighted error ``error``: ``log((1-e)/e) + log(K-1)``, >= 0."""
    error = error.clamp(EPS, 1.0 - EPS)
    alpha = torch.log((1.0 - error) / error) + math.log(max(n_classes - 1, 1))
    return (learning_rate * alpha).clamp_min(0.0)


def samme_weights(
    miss: Tensor,
    sample_weight: Tensor | None = None,
    n_classes: int = 2,
    learning_rate: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Boosting weights of every head from the heads' mistakes (one SAMME pass).

    Parameters
    ----------
    miss : BoolTensor of shape (n, M)
        ``miss[i, m]``: head ``m`` misclassifies utterance ``i``.
    sample_weight : Tensor of shape (n,), default=None
        Initial weights (uniform when None).
    n_classes : int
        Number of classes ``K``.
    learning_rate : float, default=1.0
        Shrinks every alpha (scikit-learn's ``AdaBoostClassifier(learning_rate=...)``).

    Returns
    -------
    weights : Tensor of shape (n, M)
        Column ``m``: the normalised weights (summing to 1) head ``m`` is trained with; they
        depend only on heads ``< m``.
    errors : Tensor of shape (M,)
        Weighted error of each head under its own weights.
    alphas : Tensor of shape (M,)
        SAMME vote of each head.
    """
    n, n_heads = miss.shape
    miss = miss.to(torch.float32) if not miss.is_floating_point() else miss
    w = miss.new_ones(n) if sample_weight is None else sample_weight.to(miss.dtype)
    w = w / w.sum().clamp_min(torch.finfo(w.dtype).tiny)
    weights, errors, alphas = [], [], []
    # A loop over heads (M is small), not over utterances.
    for m in range(n_heads):
        weights.append(w)
        err = (w * miss[:, m]).sum()
        alpha = samme_alpha(err, n_classes, learning_rate)
        errors.append(err)
        alphas.append(alpha)
        w = w * torch.exp(alpha * miss[:, m])
        w = w / w.sum().clamp_min(torch.finfo(w.dtype).tiny)
    return torch.stack(weights, 1), torch.stack(errors), torch.stack(alphas)


def samme_decision(logits: Tensor, alpha: Tensor, voting: str = "soft") -> Tensor:
    """Alpha-weighted vote of the heads, shape (n, K).

    Each head's vote is coded as in SAMME: ``voting="hard"`` gives the predicted class ``1``
    and the others ``-1/(K-1)`` (Zhu et al.'s symmetric coding); ``voting="soft"`` uses the
    SAMME.R coding of the head's probabilities, ``(K-1) (log p_k - mean_j log p_j)``, so ties
    are impossible and the vote carries each head's confidence. Votes are averaged with weights
    ``alpha / sum(alpha)`` (uniform when every alpha is 0).
    """
    n_classes = logits.shape[-1]
    if voting == "soft":
        log_p = F.log_softmax(logits, dim=-1)
        vote = (n_classes - 1) * (log_p - log_p.mean(-1, keepdim=True))
    elif voting == "hard":
        winner = F.one_hot(logits.argmax(-1), n_classes).to(logits.dtype)
        vote = winner * (1.0 + 1.0 / (n_classes - 1)) - 1.0 / (n_classes - 1)
    else:
        raise ValueError(f"voting must be 'soft' or 'hard', got {voting!r}.")
    alpha = alpha.to(logits.dtype)
    total = alpha.sum()
    share = alpha / total if bool(total > 0) else torch.full_like(alpha, 1.0 / alpha.numel())
    return torch.einsum("nmk,m->nk", vote, share)
