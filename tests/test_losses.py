"""Focal loss (Eq. 19), masked reconstruction (Eq. 18) and the total loss (Eq. 20)."""

import math

import pytest
import torch
import torch.nn.functional as F

from sklearn_cberl.nn.mgnn import (
    CBERLLoss,
    focal_loss,
    masked_reconstruction_loss,
    reconstruction_error,
    total_loss,
)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(20, 4, generator=g) * 2, torch.randint(0, 4, (20,), generator=g)


def test_gamma_zero_is_cross_entropy(batch):
    logits, y = batch
    torch.testing.assert_close(focal_loss(logits, y, gamma=0), F.cross_entropy(logits, y))
    w = torch.linspace(0.1, 2.0, 20)
    expected = (F.cross_entropy(logits, y, reduction="none") * w).sum() / w.sum()
    torch.testing.assert_close(focal_loss(logits, y, gamma=0, weight=w), expected)
    alpha = torch.tensor([1.0, 2.0, 0.5, 3.0])
    torch.testing.assert_close(
        focal_loss(logits, y, gamma=0, alpha=alpha, reduction="none"),
        F.cross_entropy(logits, y, weight=alpha, reduction="none"),
    )


def test_focal_matches_formula_and_down_weights_easy_examples():
    # p_y = 0.9 (easy) and p_y = 0.3 (hard), two classes.
    p = torch.tensor([0.9, 0.3])
    logits = torch.stack([torch.log(p), torch.log(1 - p)], dim=1)
    y = torch.zeros(2, dtype=torch.long)
    ce = -torch.log(p)
    fl = focal_loss(logits, y, gamma=3.0, reduction="none")
    torch.testing.assert_close(fl, (1 - p) ** 3 * ce)
    ratio = fl / ce
    assert ratio[0] == pytest.approx(0.1**3, rel=1e-4)  # easy: scaled by 1e-3
    assert ratio[1] == pytest.approx(0.7**3, rel=1e-4)  # hard: kept at 0.34
    assert torch.all(fl <= ce)
    # Larger gamma, stronger down-weighting of the easy example only relative to the hard one.
    fl1 = focal_loss(logits, y, gamma=1.0, reduction="none")
    assert (fl[0] / fl[1]) < (fl1[0] / fl1[1])


def test_focal_is_accurate_for_confident_predictions():
    logits = torch.tensor([[30.0, 0.0]])
    y = torch.tensor([0])
    value = focal_loss(logits, y, gamma=3.0)
    assert torch.isfinite(value) and value >= 0
    assert float(value) < 1e-30


def test_multi_head_weights_per_head(batch):
    logits, y = batch
    heads = torch.stack([logits, -logits], dim=1)  # (n, 2, K)
    w = torch.rand(20, 2, generator=torch.Generator().manual_seed(1))
    got = focal_loss(heads, y, gamma=2.0, weight=w)
    per_head = [focal_loss(heads[:, m], y, gamma=2.0, weight=w[:, m]) for m in range(2)]
    torch.testing.assert_close(got, torch.stack(per_head).mean())
    # A (n,) weight is shared by all heads.
    shared = focal_loss(heads, y, gamma=2.0, weight=w[:, 0])
    per_head = [focal_loss(heads[:, m], y, gamma=2.0, weight=w[:, 0]) for m in range(2)]
    torch.testing.assert_close(shared, torch.stack(per_head).mean())


def test_weights_are_relative_and_zero_weight_batches_are_safe(batch):
    logits, y = batch
    w = torch.rand(20, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(focal_loss(logits, y, weight=w), focal_loss(logits, y, weight=7 * w))
    assert float(focal_loss(logits, y, weight=torch.zeros(20))) == 0.0
    with pytest.raises(ValueError, match="reduction"):
        focal_loss(logits, y, reduction="sum")


def test_masked_reconstruction_is_mse_on_masked_nodes():
    g = torch.Generator().manual_seed(0)
    original = torch.randn(6, 3, generator=g)
    recon = torch.randn(6, 3, generator=g, requires_grad=True)
    mask = torch.tensor([True, False, True, False, False, True])
    error = reconstruction_error(recon, original)
    loss = masked_reconstruction_loss(error, mask)
    torch.testing.assert_close(loss, F.mse_loss(recon[mask], original[mask]))
    loss.backward()
    assert torch.all(recon.grad[~mask] == 0) and torch.any(recon.grad[mask] != 0)
    # Nothing masked: zero, still differentiable.
    none = masked_reconstruction_loss(error, torch.zeros(6, dtype=torch.bool))
    assert float(none.detach()) == 0.0 and none.requires_grad
    # Weights.
    w = torch.tensor([1.0, 5.0, 3.0, 5.0, 5.0, 0.0])
    expected = (error[mask] * w[mask]).sum() / w[mask].sum()
    torch.testing.assert_close(masked_reconstruction_loss(error, mask, w), expected)


def test_total_loss_eq20_and_criterion(batch):
    assert float(total_loss(torch.tensor(2.0), torch.tensor(10.0))) == pytest.approx(7.6)
    assert float(total_loss(torch.tensor(2.0), torch.tensor(10.0), 1.0, 0.0)) == 2.0
    logits, y = batch
    crit = CBERLLoss(gamma=0.0, xi_recon=0.3, xi_focal=0.7)
    error = torch.arange(20, dtype=torch.float32)
    mask = torch.zeros(20, dtype=torch.bool)
    mask[:4] = True
    total, focal, recon = crit(logits.unsqueeze(1), y, error=error, mask=mask)
    torch.testing.assert_close(focal, F.cross_entropy(logits, y))
    assert float(recon) == pytest.approx(1.5)
    assert float(total) == pytest.approx(0.3 * 1.5 + 0.7 * float(focal))
    # Per-class alpha is a buffer (moves with .to(device)).
    weighted = CBERLLoss(alpha=torch.ones(4))
    assert "alpha" in dict(weighted.named_buffers())
    assert math.isfinite(float(weighted(logits, y)[0]))
