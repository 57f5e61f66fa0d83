"""CBERL's training losses: focal loss (Eq. 19), masked reconstruction (Eq. 18), total (Eq. 20).

All functions take per-utterance weights so that ``sample_weight`` and the AdaBoost weights
(:mod:`sklearn_cberl.nn.boosting`) multiply each utterance's loss; a weighted *mean* is
returned, so weights only matter relative to each other inside a batch (Eq. 19 averages over
the utterances of the batch). The L2 term of Eq. 19 is the optimiser's ``weight_decay``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "focal_loss",
    "reconstruction_error",
    "masked_reconstruction_loss",
    "total_loss",
    "CBERLLoss",
]


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
