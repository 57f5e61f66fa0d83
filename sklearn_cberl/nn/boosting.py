"""SAMME (multi-class AdaBoost) weighting and voting for CBERL's weak classifier heads.

The weak classifiers of CBERL's classification stage (paper Sec. IV-A-5) are ``M`` small heads
on the shared graph embedding. This module holds the boosting arithmetic, as in scikit-learn's
``AdaBoostClassifier(algorithm="SAMME")`` (Zhu et al., 2009), in torch so that it runs on the
training device inside the loss:

* :func:`samme_alpha`: a head's vote ``alpha = lr * (log((1 - err) / err) + log(K - 1))``;
  the ``log(K - 1)`` term makes "better than chance" mean ``err < 1 - 1/K`` rather than
  ``err < 1/2``. A head at or below chance gets ``alpha = 0``: no vote and no re-weighting
  (scikit-learn stops boosting there; here the heads keep training, so a weak head can recover
  in a later batch).
* :func:`samme_weights`: the utterance weights each head is trained with. Head 1 uses the
  sample weights; head ``m + 1`` uses head ``m``'s weights multiplied by ``exp(alpha_m)`` on
  the utterances head ``m`` misclassified, renormalised.
* :func:`samme_decision` / :func:`samme_proba`: the alpha-weighted vote and its probability.

scikit-learn's implementation works on fitted numpy estimators one round at a time; the heads
here are trained jointly with the backbone by gradient descent, so the same formulas are
re-implemented on tensors (see ``docs/classifier.md`` for how rounds interleave with training).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["samme_alpha", "samme_weights", "samme_decision", "samme_proba"]

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


def samme_proba(decision: Tensor) -> Tensor:
    """Class probabilities from the SAMME decision: ``softmax(decision / (K - 1))``.

    As scikit-learn's ``AdaBoostClassifier.predict_proba``; with soft voting this is the
    alpha-weighted geometric mean of the heads' probabilities, renormalised.
    """
    n_classes = decision.shape[-1]
    return torch.softmax(decision / max(n_classes - 1, 1), dim=-1)
