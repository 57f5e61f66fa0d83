"""EmoGAN loss terms (paper Eq. 1-5) and the mode-seeking term; each returns a 0-d tensor.

The networks and the per-minibatch loss computations are in :mod:`.gan`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "adversarial_loss",
    "generator_adversarial_loss",
    "identity_loss",
    "classification_loss",
    "target_classification_loss",
    "total_generator_loss",
    "mode_seeking_loss",
]


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
