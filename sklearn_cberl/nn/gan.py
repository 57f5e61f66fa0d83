"""EmoGAN: the multimodal emotion cycle-GAN of CBERL's data-augmentation stage.

Paper Sec. IV-A-1, Fig. 3, Eq. 1-7; project spec ``paper/cberl.md`` section 1. The estimator
that trains these modules and turns them into an imbalanced-learn sampler is
:class:`sklearn_cberl.over_sampling.EmoGANSampler`; this module holds only torch code.

Networks
--------
* :class:`ResidualGenerator` - used twice: ``G_S->T`` (unconditional) and ``G_T->S``
  (conditioned on the emotion one-hot ``Z``). One forward pass maps *all* modalities of an
  utterance: a shared trunk reads the concatenated (standardised) modalities, one output head
  per modality writes that modality's displacement, so the modalities of a synthetic utterance
  are generated jointly and stay consistent.
* :class:`ModalityDiscriminator` - one per modality (the paper's ``D_T,F``, "multi-source").
* :class:`EmotionClassifier` - ``EC_s``, pre-trained on the real data and frozen while the
  GAN trains.
* :class:`EmoGAN` - the container, with the per-minibatch loss computations.

Losses (each a named function, mean over the batch)
---------------------------------------------------
* :func:`adversarial_loss` / :func:`generator_adversarial_loss` - Eq. 3;
* :func:`identity_loss` - Eq. 4;
* :func:`classification_loss` - ``L_C``, Eq. 1;
* :func:`target_classification_loss` - ``L_RC``, Eq. 2;
* :func:`total_generator_loss` - ``L_EmoGAN``, Eq. 5;
* :func:`mode_seeking_loss` - not in the paper: the mode-seeking term of Mao et al. (CVPR
  2019) that makes the generator use its noise input (without it the sampled rows were
  near-copies of their sources; ``docs/sampler.md``).

Updates (Eq. 6-7): the paper's two formulas are garbled (both are written with
``grad_theta_D``); we read Eq. 6 (the adversarial term only) as the discriminator update and
Eq. 7 (the total loss, whose identity and classification terms do not depend on ``theta_D``)
as the generator update, alternating one Adam step of each per minibatch
(:meth:`EmoGAN.generator_loss`, then :meth:`EmoGAN.discriminator_loss`; the training loop is
skorch's, :class:`sklearn_cberl.over_sampling._gan_training.EmoGANNet`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ResidualGenerator",
    "ModalityDiscriminator",
    "EmotionClassifier",
    "EmoGAN",
    "adversarial_loss",
    "generator_adversarial_loss",
    "identity_loss",
    "classification_loss",
    "target_classification_loss",
    "total_generator_loss",
    "mode_seeking_loss",
]


# --------------------------------------------------------------------------- losses
def adversarial_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 3, discriminator side: ``-(E_T[log D(T)] + E_S[log(1 - D(G_S->T(S)))])``.

    The discriminator maximises Eq. 3; this returns its negative (a binary cross-entropy on
    logits: real -> 1, fake -> 0) so that every optimiser here minimises.

    Parameters
    ----------
    real_logits, fake_logits : Tensor of shape (n,) and (m,)
        Discriminator logits ``D`` before the sigmoid for real and generated blocks.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 3, generator side, in the non-saturating form ``-E_S[log D(G(S))]``.

    Minimising ``E_S[log(1 - D(G(S)))]`` literally has vanishing gradients while the
    discriminator wins (Goodfellow et al. 2014); ``-log D(G(S))`` has the same fixed point and
    useful gradients, which is what GAN implementations use.
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def identity_loss(
    g_ts_of_s: torch.Tensor, s: torch.Tensor, g_st_of_t: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """Eq. 4: ``E_S ||G_T->S(S) - S||^2 + E_T ||G_S->T(T) - T||^2``, per feature.

    The squared norm is divided by the number of features (i.e. a mean squared error), so
    that the weights ``lambda`` of Eq. 5 mean the same thing whatever the feature width
    (with 712 standardised features the raw norm would dwarf the cross-entropy terms).
    """
    return F.mse_loss(g_ts_of_s, s) + F.mse_loss(g_st_of_t, t)


def classification_loss(
    cycle_logits: torch.Tensor, translated_logits: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Eq. 1, ``L_C``: EC_s must give the source label ``y_k`` to both translations.

    ``L_C = CE(EC_s(G_T->S(G_S->T(S_k), Z_k)), y_k) + CE(EC_s(G_T->S(S_k, Z_k)), y_k)``. The
    paper writes the log-likelihood ``sum_k y_k log EC_s(.)``; its negative (cross-entropy,
    averaged over the batch) is the quantity minimised.

    Parameters
    ----------
    cycle_logits : Tensor (n, n_classes)
        ``EC_s`` logits of ``G_T->S(G_S->T(S_k), Z_k)``.
    translated_logits : Tensor (n, n_classes)
        ``EC_s`` logits of ``G_T->S(S_k, Z_k)``.
    y : LongTensor (n,)
        Source labels (class codes).
    """
    return F.cross_entropy(cycle_logits, y) + F.cross_entropy(translated_logits, y)


def target_classification_loss(logits: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Eq. 2, ``L_RC``: EC_s must give the requested class ``r`` to ``G_T->S(T_i, Z_r)``.

    Cross-entropy (negated log-likelihood of Eq. 2), averaged over the batch.
    """
    return F.cross_entropy(logits, r)


def total_generator_loss(
    identity: torch.Tensor,
    adversarial: torch.Tensor,
    l_c: torch.Tensor,
    l_rc: torch.Tensor,
    *,
    lambda_identity: float = 1.0,
    lambda_adversarial: float = 0.5,
    lambda_classification: float = 0.5,
) -> torch.Tensor:
    """Eq. 5: ``L_EmoGAN = l1 L_identity + l2 L(G_S->T, D_T,F) + l3 (L_C + L_RC)``.

    Defaults ``l1 = 1, l2 = 0.5, l3 = 0.5`` (paper Sec. V-D). The paper calls the lambdas
    learnable but reports fixed values; they are fixed hyper-parameters here.
    """
    return (
        lambda_identity * identity
        + lambda_adversarial * adversarial
        + lambda_classification * (l_c + l_rc)
    )


def mode_seeking_loss(
    out_1: torch.Tensor, out_2: torch.Tensor, noise_1: torch.Tensor, noise_2: torch.Tensor
) -> torch.Tensor:
    """Mode-seeking regulariser (Mao et al., CVPR 2019): ``mean|z1 - z2| / mean|G(z1) - G(z2)|``.

    Two noise draws for the same source and class must give different outputs: minimising
    the ratio pushes the generator to use its noise, so that repeated translations of one
    utterance spread over the class region instead of collapsing onto one point next to
    the source. Not part of the paper's Eq. 5 (``lambda_diversity`` weighs it).
    """
    spread = (out_1 - out_2).abs().mean()
    return (noise_1 - noise_2).abs().mean() / (spread + 1e-5)


# --------------------------------------------------------------------------------------------
# The container
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------- networks
def _mlp(n_in: int, hidden: int, n_out: int, *, slope: float = 0.2) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden),
        nn.LeakyReLU(slope),
        nn.Linear(hidden, hidden),
        nn.LeakyReLU(slope),
        nn.Linear(hidden, n_out),
    )


class ResidualGenerator(nn.Module):
    """Generator over all modalities at once: ``G(x, Z, eps) = x + Delta(x, Z, eps)``.

    Parameters
    ----------
    widths : sequence of int
        Width of each modality block, in column order (their sum is the feature count).
    n_classes : int
        Size of the emotion one-hot ``Z``; 0 builds the unconditional ``G_S->T``.
    hidden_size : int
        Width of the shared trunk.
    latent_size : int
        Size of the Gaussian noise input ``eps`` (0: deterministic generator).

    Notes
    -----
    The generator is residual and its output heads start at zero, so at initialisation it is
    the identity map: the identity loss (Eq. 4) starts at 0 and training only has to learn the
    class-conditional displacement. This keeps the cycle-GAN stable without tuning.
    """

    def __init__(
        self, widths: Sequence[int], n_classes: int, hidden_size: int, latent_size: int
    ) -> None:
        super().__init__()
        self.widths = [int(w) for w in widths]
        self.n_classes = int(n_classes)
        self.latent_size = int(latent_size)
        n_in = sum(self.widths) + self.n_classes + self.latent_size
        self.trunk = nn.Sequential(
            nn.Linear(n_in, hidden_size),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, hidden_size),
            nn.LeakyReLU(0.2),
        )
        # One head per modality (ModuleList, not ModuleDict: modality names may contain dots).
        self.heads = nn.ModuleList(nn.Linear(hidden_size, w) for w in self.widths)
        for head in self.heads:
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(
        self, x: torch.Tensor, z: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Translate ``x`` (n, n_features) given the one-hot ``z`` (n, n_classes) and noise.

        ``noise=None`` feeds zeros (the deterministic, "noise-free" translation).
        """
        parts = [x]
        if self.n_classes:
            if z is None:
                raise ValueError("This generator is conditioned on Z: pass the emotion one-hot.")
            parts.append(z.to(x.dtype))
        if self.latent_size:
            if noise is None:
                noise = x.new_zeros(x.shape[0], self.latent_size)
            parts.append(noise)
        h = self.trunk(torch.cat(parts, dim=1))
        return x + torch.cat([head(h) for head in self.heads], dim=1)


class ModalityDiscriminator(nn.Module):
    """``D_T,F`` for one modality: an MLP giving the logit that a block is real (Eq. 3)."""

    def __init__(self, width: int, hidden_size: int) -> None:
        super().__init__()
        self.net = _mlp(int(width), hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


class EmotionClassifier(nn.Module):
    """``EC_s``: an MLP over all (standardised) modalities giving emotion logits.

    Pre-trained on the real data (see ``EmoGANSampler``), then frozen: it only scores the
    generators' outputs in Eq. 1-2 and filters the synthetic candidates.

    Attributes
    ----------
    config : dict
        The constructor arguments as JSON values: ``sklearn_cberl.persistence`` rebuilds
        the module from them and its ``state_dict``.
    """

    def __init__(self, n_features: int, n_classes: int, hidden_size: int, dropout: float = 0.2):
        super().__init__()
        self.config = {
            "n_features": int(n_features),
            "n_classes": int(n_classes),
            "hidden_size": int(hidden_size),
            "dropout": float(dropout),
        }
        self.net = nn.Sequential(
            nn.Linear(int(n_features), hidden_size),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size, int(n_classes)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class EmoGAN(nn.Module):
    """Both generators and the per-modality discriminators, with the Eq. 1-7 computations.

    Parameters
    ----------
    widths : sequence of int
        Width of each modality block, in column order.
    n_classes : int
        Number of emotion classes (size of ``Z``).
    hidden_size : int
        Hidden width of the generators' trunks and of the discriminators.
    latent_size : int
        Noise size of the generators.

    Attributes
    ----------
    config : dict
        The constructor arguments as JSON values: ``sklearn_cberl.persistence`` rebuilds
        the module from them and its ``state_dict``.
    """

    def __init__(
        self, widths: Sequence[int], n_classes: int, hidden_size: int, latent_size: int
    ) -> None:
        super().__init__()
        self.config = {
            "widths": [int(w) for w in widths],
            "n_classes": int(n_classes),
            "hidden_size": int(hidden_size),
            "latent_size": int(latent_size),
        }
        self.widths = [int(w) for w in widths]
        self.n_classes = int(n_classes)
        self.latent_size = int(latent_size)
        self.g_st = ResidualGenerator(self.widths, 0, hidden_size, latent_size)
        self.g_ts = ResidualGenerator(self.widths, self.n_classes, hidden_size, latent_size)
        self.discriminators = nn.ModuleList(
            ModalityDiscriminator(w, hidden_size) for w in self.widths
        )

    # -- helpers -------------------------------------------------------------------------
    def noise(self, x: torch.Tensor) -> torch.Tensor | None:
        """Standard normal generator noise for a batch like ``x`` (same device and dtype)."""
        if not self.latent_size:
            return None
        return torch.randn(x.shape[0], self.latent_size, device=x.device, dtype=x.dtype)

    def one_hot(self, labels: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, self.n_classes).to(like.dtype)

    def translate(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``G_T->S(x, Z_r)`` with fresh noise: the sampling operation."""
        return self.g_ts(x, self.one_hot(labels, x), self.noise(x))

    def _blocks(self, x: torch.Tensor):
        return torch.split(x, self.widths, dim=1)

    def discriminator_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-modality logits of ``D_T,F`` for the rows of ``x``."""
        return [d(block) for d, block in zip(self.discriminators, self._blocks(x))]

    def named_generator_parameters(self):
        """``(name, parameter)`` of both generators: what the Eq. 7 step updates."""
        return [
            *self.g_st.named_parameters(prefix="g_st"),
            *self.g_ts.named_parameters(prefix="g_ts"),
        ]

    def generator_parameters(self):
        return [p for _, p in self.named_generator_parameters()]

    # -- Eq. 6: discriminator objective --------------------------------------------------
    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Eq. 3 (negated) averaged over the modality discriminators; the Eq. 6 update.

        ``fake`` holds the generated rows (detached by the caller): the outputs of both
        ``G_S->T`` (Eq. 3) and ``G_T->S`` (the rows the sampler emits, so they must look real
        too).
        """
        n_real = len(real)
        logits = self.discriminator_logits(torch.cat([real, fake]))  # one pass per modality
        losses = [adversarial_loss(lg[:n_real], lg[n_real:]) for lg in logits]
        return torch.stack(losses).mean()

    # -- Eq. 7: generator objective ------------------------------------------------------
    def generator_loss(
        self,
        classifier: nn.Module,
        s: torch.Tensor,
        y_s: torch.Tensor,
        t: torch.Tensor,
        r: torch.Tensor,
        *,
        lambda_identity: float,
        lambda_adversarial: float,
        lambda_classification: float,
        lambda_diversity: float = 0.0,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Compute Eq. 5 for one minibatch.

        Parameters
        ----------
        classifier : Module
            The frozen ``EC_s``.
        s, y_s : Tensor (n, d), LongTensor (n,)
            Source utterances ``S_k`` and their labels ``y_k``.
        t, r : Tensor (m, d), LongTensor (m,)
            Utterances ``T_i`` to translate and the requested classes ``r`` (Eq. 2).

        Returns
        -------
        total : Tensor
            ``L_EmoGAN`` (Eq. 5).
        terms : dict of str -> Tensor
            ``identity``, ``adversarial``, ``classification`` (L_C), ``target_classification``
            (L_RC) and ``diversity`` (the mode-seeking term), each detached.
        fake : Tensor
            The generated rows (``G_S->T(S)`` and ``G_T->S(T, Z_r)``), for the discriminator.
        """
        n, m = len(s), len(t)
        z_s = self.one_hot(y_s, s)
        # Same generator calls batched together (fewer, larger matrix products):
        # G_S->T(S) with noise and G_S->T(T) noise-free for Eq. 4, in one pass ...
        x_st = torch.cat([s, t])
        noise_st = self.noise(x_st)
        if noise_st is not None:
            noise_st[n:] = 0.0
        st_all = self.g_st(x_st, None, noise_st)
        st, g_st_of_t = st_all[:n], st_all[n:]
        # ... then one G_T->S pass for the cycle G_T->S(G_S->T(S_k), Z_k), the translation
        # G_T->S(S_k, Z_k), the requested G_T->S(T_i, Z_r) (with noise) and, for Eq. 4,
        # the noise-free translation of S_k to its own class.
        # A second noise draw of the requested translations feeds the mode-seeking term.
        z_r = self.one_hot(r, t)
        x_ts = torch.cat([st, s, t, s, t])
        z_ts = torch.cat([z_s, z_s, z_r, z_s, z_r])
        noise_ts = self.noise(x_ts)
        if noise_ts is not None:
            noise_ts[2 * n + m : 3 * n + m] = 0.0
        ts_all = self.g_ts(x_ts, z_ts, noise_ts)
        to_r, g_ts_of_s = ts_all[2 * n : 2 * n + m], ts_all[2 * n + m : 3 * n + m]
        if noise_ts is not None and lambda_diversity:
            diversity = mode_seeking_loss(
                to_r, ts_all[3 * n + m :], noise_ts[2 * n : 2 * n + m], noise_ts[3 * n + m :]
            )
        else:
            diversity = s.new_zeros(())

        # Eq. 4 with zero noise: the noise-free translation of an utterance to its own class
        # (and the unconditional G_S->T) must be the identity; the noise input stays free to
        # add diversity to the sampled rows.
        identity = identity_loss(g_ts_of_s, s, g_st_of_t, t)
        fake = torch.cat([st, to_r], dim=0)
        adversarial = torch.stack(
            [generator_adversarial_loss(f) for f in self.discriminator_logits(fake)]
        ).mean()
        logits = classifier(ts_all[: 2 * n + m])
        l_c = classification_loss(logits[:n], logits[n : 2 * n], y_s)
        l_rc = target_classification_loss(logits[2 * n :], r)
        total = (
            total_generator_loss(
                identity,
                adversarial,
                l_c,
                l_rc,
                lambda_identity=lambda_identity,
                lambda_adversarial=lambda_adversarial,
                lambda_classification=lambda_classification,
            )
            + lambda_diversity * diversity
        )
        terms = {
            "identity": identity.detach(),
            "adversarial": adversarial.detach(),
            "classification": l_c.detach(),
            "target_classification": l_rc.detach(),
            "diversity": diversity.detach(),
        }
        return total, terms, fake
