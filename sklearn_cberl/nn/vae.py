"""DJVAE torch modules: modality encoders, joint Gaussian posterior, decoder, Eq. 12 terms.

Paper Sec. IV-A-2, Fig. 4, Eq. 8-12 (``docs/fusion.md`` maps every equation to the code):

* Eq. 8, encoder ``f: x -> z`` and decoder ``g: z -> x'``: :meth:`DJVAEModule.encode` and
  :meth:`DJVAEModule.decode`. Fig. 4 gives every modality its own encoder - Bi-LSTM for text,
  CNN for video, 1-D conv for audio: :class:`BiLSTMEncoder`, :class:`CNNEncoder`,
  :class:`Conv1dEncoder`, plus a plain :class:`MLPEncoder`. MERC feature sets give one
  *vector* per utterance and modality, so the sequence/convolution encoders read that vector
  as a short sequence of chunks (Bi-LSTM), a 1-channel signal (1-D conv) or a square
  1-channel image (CNN). The encodings form one Gaussian ``q(z | x) = N(mu, diag(sigma^2))``
  (Fig. 4's mu and sigma): a product of experts over the *available* modalities
  (:func:`product_of_experts`) or concatenation + linear. ``z = mu + sigma * eps`` is
  sampled with :func:`reparameterize`; the decoder reconstructs every modality
  (:class:`Decoder`).
* Eq. 9-11 derive the evidence lower bound
  ``log p(x) >= E_q[log p(x | z)] - KL(q(z | x) || p(z))`` with the prior ``p(z) = N(0, I)``
  (the paper: "we will use a standard normal distribution").
* Eq. 12, the loss = minus that bound = reconstruction (:func:`reconstruction_loss`, the
  Gaussian negative log-likelihood = MSE up to constants) + KL(q || N(0, I))
  (:func:`gaussian_kl`, closed form); DJVAE weights the KL term by ``beta``.
  :func:`negative_elbo` is the one place the two terms are assembled, with one scaling,
  for :class:`~sklearn_cberl.DJVAE` and for the classifier's end-to-end fusion alike.

Every tensor created here follows the input's device and dtype (CPU/CUDA parity).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

__all__ = [
    "ENCODERS",
    "PAPER_ENCODERS",
    "MLPEncoder",
    "BiLSTMEncoder",
    "Conv1dEncoder",
    "CNNEncoder",
    "Decoder",
    "DJVAEModule",
    "product_of_experts",
    "reparameterize",
    "gaussian_kl",
    "reconstruction_loss",
    "ELBO",
    "drop_modalities",
    "negative_elbo",
]

#: Range of the log-variances the encoders may output: exp(-logvar) enters the product of
#: experts as a precision, and an unbounded one overflows float32 in the first epochs.
LOGVAR_RANGE = (-10.0, 10.0)


def _mlp(widths: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Fully connected encoder ``d -> hidden_sizes`` (ReLU after every layer)."""

    def __init__(self, n_features: int, hidden_sizes: Sequence[int]):
        super().__init__()
        self.net = _mlp([n_features, *hidden_sizes])
        self.out_features = hidden_sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class BiLSTMEncoder(nn.Module):
    """The paper's text encoder: a Bi-LSTM over the feature vector read as a sequence.

    The ``d`` features are zero-padded to ``n_chunks * chunk`` and read as ``n_chunks``
    steps of ``chunk`` features; the final forward and backward states, concatenated,
    go through fully connected layers of ``hidden_sizes``.
    """

    def __init__(self, n_features: int, hidden_sizes: Sequence[int], n_chunks: int = 8):
        super().__init__()
        self.n_chunks = max(1, min(n_chunks, n_features))
        self.chunk = math.ceil(n_features / self.n_chunks)
        self.pad = self.n_chunks * self.chunk - n_features
        width = max(1, hidden_sizes[0] // 2)  # per direction
        self.lstm = nn.LSTM(self.chunk, width, batch_first=True, bidirectional=True)
        self.head = _mlp([2 * width, *hidden_sizes])
        self.out_features = hidden_sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (0, self.pad)).view(x.shape[0], self.n_chunks, self.chunk)
        _, (h, _) = self.lstm(x)  # h: (2, batch, width) - last states of both directions
        return self.head(torch.cat([h[0], h[1]], dim=1))


class Conv1dEncoder(nn.Module):
    """The paper's audio encoder: two strided 1-D convolutions over the feature vector."""

    def __init__(
        self, n_features: int, hidden_sizes: Sequence[int], channels: int = 16, pooled: int = 8
    ):
        super().__init__()
        # kernel 5, stride 2, padding 2: output length ceil(d / 2) >= 1 for every d >= 1.
        self.conv = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool1d(pooled),
        )
        self.head = _mlp([channels * pooled, *hidden_sizes])
        self.out_features = hidden_sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x.unsqueeze(1)).flatten(1))


class CNNEncoder(nn.Module):
    """The paper's video encoder: a 2-D CNN over the feature vector laid out as a square."""

    def __init__(
        self, n_features: int, hidden_sizes: Sequence[int], channels: int = 16, pooled: int = 4
    ):
        super().__init__()
        self.side = math.ceil(math.sqrt(n_features))
        self.pad = self.side * self.side - n_features
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(pooled),
        )
        self.head = _mlp([channels * pooled * pooled, *hidden_sizes])
        self.out_features = hidden_sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x, (0, self.pad)).view(x.shape[0], 1, self.side, self.side)
        return self.head(self.conv(x).flatten(1))


#: Encoder kinds accepted by ``DJVAE(encoder=...)``.
ENCODERS = {
    "mlp": MLPEncoder,
    "bilstm": BiLSTMEncoder,
    "conv1d": Conv1dEncoder,
    "cnn": CNNEncoder,
}
#: ``encoder="paper"``: the paper's choice per modality (Sec. IV-A-2); other modalities: MLP.
PAPER_ENCODERS = {"text": "bilstm", "audio": "conv1d", "visual": "cnn"}


class Decoder(nn.Module):
    """``z -> reversed(hidden_sizes) -> all modality features`` (Eq. 8 ``g``, Fig. 4 right).

    One output layer covers every modality (its columns are the blocks side by side), which
    is the same as a linear head per modality but a single matrix product.
    """

    def __init__(self, n_components: int, hidden_sizes: Sequence[int], n_features: int):
        super().__init__()
        widths = [n_components, *reversed(hidden_sizes)]
        self.net = nn.Sequential(_mlp(widths), nn.Linear(widths[-1], n_features))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def product_of_experts(mu: torch.Tensor, logvar: torch.Tensor, present: torch.Tensor):
    """Joint Gaussian of the available modality experts and the N(0, I) prior expert (Fig. 4).

    The product of Gaussians ``N(mu_m, var_m)`` is Gaussian with precision
    ``T = 1 + sum_m present_m / var_m`` (the 1 is the prior expert) and mean
    ``sum_m present_m mu_m / var_m / T``. A missing modality (``present_m = 0``) drops out;
    a row with no modality at all gets the prior.

    Parameters
    ----------
    mu, logvar : Tensor of shape (n_modalities, batch, n_components)
    present : Tensor of shape (n_modalities, batch), 0/1

    Returns
    -------
    mu, logvar : Tensor of shape (batch, n_components)
    """
    precision = torch.exp(-logvar) * present.unsqueeze(-1)
    total = 1.0 + precision.sum(dim=0)
    joint_mu = (precision * mu).sum(dim=0) / total
    return joint_mu, -torch.log(total)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator=None) -> torch.Tensor:
    """Reparameterisation: ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form ``KL(N(mu, diag(exp(logvar))) || N(0, I))`` per row (Eq. 12, second term).

    ``KL = 1/2 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)``; shape ``(batch,)``.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def reconstruction_loss(
    x_hat: torch.Tensor,
    x: torch.Tensor,
    blocks: Sequence[slice],
    present: torch.Tensor,
    weights: torch.Tensor,
) -> torch.Tensor:
    """Masked Gaussian negative log-likelihood per row, up to constants (Eq. 12, first term).

    With unit variance on standardised features, ``-log p(x_m | z) = 1/2 ||x_m - x_hat_m||^2
    + const``. Each modality's term is the *mean* over its columns times ``weights[m]``, so
    a 6373-d block and a 100-d block carry the weight the caller chose rather than their
    widths (DJVAE uses ``weights[m] = n_features / n_modalities``: equal shares that add up
    to the full-likelihood scale). A missing modality (``present[m] = 0``) adds nothing.

    Parameters
    ----------
    x_hat, x : Tensor of shape (batch, n_features)
    blocks : sequence of slice
        Columns of each modality.
    present : Tensor of shape (n_modalities, batch), 0/1
    weights : Tensor of shape (n_modalities,)

    Returns
    -------
    Tensor of shape (batch,)
    """
    sq = (x_hat - x).pow(2)
    per_modality = torch.stack([sq[:, b].mean(dim=1) for b in blocks])  # (M, batch)
    return 0.5 * (per_modality * present * weights.unsqueeze(1)).sum(dim=0)


class DJVAEModule(nn.Module):
    """Encoders + joint posterior + decoder of DJVAE (Fig. 4).

    Parameters
    ----------
    block_sizes : sequence of int
        Width of each modality block; the input's columns are the blocks side by side.
    encoders : sequence of str
        Encoder kind per block (keys of :data:`ENCODERS`).
    n_components : int
        Latent size.
    hidden_sizes : sequence of int
        Encoder hidden widths (the decoder mirrors them).
    posterior : {"poe", "concat"}
        How the modality encodings form the joint posterior ``q(z | x)``.
    n_classes : int, default=0
        Classes of a linear label head on the latent (``label_logits``; a label-aware
        DJVAE); 0: no head.

    Attributes
    ----------
    config : dict
        The constructor arguments as JSON values: ``sklearn_cberl.persistence`` rebuilds
        the module from them and its ``state_dict``.
    """

    def __init__(
        self, block_sizes, encoders, n_components, hidden_sizes, posterior="poe", n_classes=0
    ):
        super().__init__()
        self.config = {
            "block_sizes": [int(size) for size in block_sizes],
            "encoders": [str(kind) for kind in encoders],
            "n_components": int(n_components),
            "hidden_sizes": [int(size) for size in hidden_sizes],
            "posterior": str(posterior),
            "n_classes": int(n_classes),
        }
        self.posterior = posterior
        self.n_components = n_components
        starts = [0]
        for size in block_sizes:
            starts.append(starts[-1] + size)
        self.blocks = [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]
        self.encoders = nn.ModuleList(
            ENCODERS[kind](size, hidden_sizes) for kind, size in zip(encoders, block_sizes)
        )
        widths = [enc.out_features for enc in self.encoders]
        if posterior == "poe":
            self.heads = nn.ModuleList(nn.Linear(w, 2 * n_components) for w in widths)
        else:
            self.heads = nn.ModuleList([nn.Linear(sum(widths), 2 * n_components)])
        self.decoder = Decoder(n_components, hidden_sizes, starts[-1])
        self.label_head = nn.Linear(n_components, n_classes) if n_classes else None

    @property
    def n_features(self) -> int:
        """Width of the input (every block side by side)."""
        return self.blocks[-1].stop if self.blocks else 0

    def encode(self, x: torch.Tensor, present: torch.Tensor):
        """Posterior ``(mu, logvar)`` of shape (batch, n_components) each (Eq. 8 ``f``)."""
        # A missing block is zeroed before its encoder so its (standardised) filler values
        # cannot leak into the posterior; for PoE its expert is also dropped.
        hidden = [
            enc(x[:, b] * p.unsqueeze(1)) for enc, b, p in zip(self.encoders, self.blocks, present)
        ]
        if self.posterior == "poe":
            stats = torch.stack([head(h) for head, h in zip(self.heads, hidden)])
            mu, logvar = stats.chunk(2, dim=-1)
            logvar = logvar.clamp(*LOGVAR_RANGE)
            return product_of_experts(mu, logvar, present)
        hidden = [h * p.unsqueeze(1) for h, p in zip(hidden, present)]
        mu, logvar = self.heads[0](torch.cat(hidden, dim=1)).chunk(2, dim=-1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor, present: torch.Tensor, generator=None):
        mu, logvar = self.encode(x, present)
        z = reparameterize(mu, logvar, generator) if self.training else mu
        return self.decode(z), mu, logvar


class ELBO(NamedTuple):
    """The Eq. 12 terms of a batch, per row (see :func:`negative_elbo`)."""

    z: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor

    def loss(self, beta: float = 1.0) -> torch.Tensor:
        """Minus the evidence lower bound per row, the KL term weighted by ``beta``."""
        return self.reconstruction + float(beta) * self.kl


def drop_modalities(present: torch.Tensor, rate: float) -> torch.Tensor:
    """Modality dropout: each available modality of a row is hidden with probability
    ``rate`` (a row keeps at least one), so that the latent learns to be inferred from every
    modality, small ones included, and to work when some are missing.

    Parameters
    ----------
    present : Tensor of shape (n_modalities, batch), 0/1
    rate : float in [0, 1)

    Returns
    -------
    Tensor of the same shape
    """
    if not rate or present.shape[0] < 2:
        return present
    kept = present * (torch.rand(present.shape, device=present.device) >= rate).to(present.dtype)
    emptied = (kept.sum(0) == 0) & (present.sum(0) > 0)
    return torch.where(emptied.unsqueeze(0), present, kept)


def negative_elbo(
    module: DJVAEModule, x: torch.Tensor, present: torch.Tensor, *, sample=True, generator=None
) -> ELBO:
    """The terms of the Eq. 12 loss of standardised rows ``x``, per row.

    ``z`` is one draw ``mu + sigma * eps`` from the joint posterior (``sample=False``: the
    posterior mean), decoded to reconstruct every modality. Every modality carries an equal
    share of the reconstruction term whatever its width, the shares adding up to the
    full-likelihood scale (``weights[m] = n_features / n_modalities`` in
    :func:`reconstruction_loss`), so ``beta = 1`` is the plain ELBO; the KL term is exact.

    Parameters
    ----------
    module : DJVAEModule
    x : Tensor of shape (batch, n_features)
    present : Tensor of shape (n_modalities, batch), 0/1
    sample : bool, default=True
    generator : torch.Generator, default=None
        Draws ``eps`` (None: torch's global generator).

    Returns
    -------
    ELBO
        ``z``, ``mu``, ``logvar`` and the per-row ``reconstruction`` and ``kl`` terms;
        ``.loss(beta)`` is the Eq. 12 loss per row.
    """
    mu, logvar = module.encode(x, present)
    z = reparameterize(mu, logvar, generator) if sample else mu
    n_blocks = len(module.blocks)
    weights = x.new_full((n_blocks,), module.n_features / n_blocks)
    reconstruction = reconstruction_loss(module.decode(z), x, module.blocks, present, weights)
    return ELBO(z, mu, logvar, reconstruction, gaussian_kl(mu, logvar))

