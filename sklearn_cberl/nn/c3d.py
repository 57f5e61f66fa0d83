"""The visual front-end's 3D-CNN (paper Sec. III) and its training loop (cross-entropy on
the utterance labels), with optional early stopping."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._torch_base import BestEpoch
from .._torch_estimator import check_finite_loss, evaluate, progress

__all__ = ["C3DNet", "train_c3d"]


class C3DNet(nn.Module):
    """Three blocks of (Conv3d-ReLU-Conv3d-ReLU-MaxPool3d), then an MLP (paper Sec. III).

    Input ``(batch, 3, frames, height, width)``; ``features`` returns the hidden layer.
    """

    def __init__(self, channels=(32, 64, 128), hidden=512, n_classes=2, dropout=0.5):
        super().__init__()
        blocks, c_in = [], 3
        for c in channels:
            blocks += [
                nn.Conv3d(c_in, c, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv3d(c, c, kernel_size=3, padding=1),
                nn.ReLU(),
                # ceil_mode: tiny clips (2-frame remainders) still pool instead of vanishing.
                nn.MaxPool3d(kernel_size=2, ceil_mode=True),
            ]
            c_in = c
        self.conv = nn.Sequential(*blocks)
        # Global average pooling makes the MLP independent of the clip size.
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(c_in, hidden), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def features(self, x):
        return self.hidden(self.pool(self.conv(x)))

    def forward(self, x):
        return self.head(self.features(x))


def _as_float(clips: torch.Tensor, device) -> torch.Tensor:
    return clips.to(device).to(torch.float32) / 255.0 - 0.5


def train_c3d(
    net, clips, target, valid, *, max_epochs, batch_size, lr, weight_decay, patience, verbose
):
    """Adam on the cross-entropy, in place; ``clips`` are uint8 on the CPU.

    ``valid=(clips, target)`` (or None): cross-entropy recorded after every epoch (eval mode:
    no dropout, no random draws) and, with ``patience``, monitored for early stopping.

    Returns
    -------
    loss_curve, validation_loss_curve : list of float
    best_epoch, n_iter : int
    """
    device = next(net.parameters()).device
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    # tqdm in a terminal, plain lines in a log (the project's one progress helper).
    epochs = progress(range(max_epochs), desc="VideoC3D", verbose=verbose)
    n = clips.shape[0]
    tracker, losses, valid_losses = BestEpoch(net, patience), [], []
    net.train()
    for epoch in epochs:
        perm = torch.randperm(n)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            loss = F.cross_entropy(net(_as_float(clips[idx], device)), target[idx].to(device))
            check_finite_loss(loss, estimator="VideoC3D", epoch=epoch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / n)
        valid_loss = None
        if valid is not None:
            valid_loss = evaluate(net, lambda: _mean_cross_entropy(net, *valid, batch_size, device))
            valid_losses.append(valid_loss)
        if tracker.update(epoch + 1, valid_loss):
            break
    tracker.restore()
    return losses, valid_losses, tracker.kept_epoch, tracker.epoch


def _mean_cross_entropy(net, clips, target, batch_size, device) -> float:
    total = sum(
        float(F.cross_entropy(
            net(_as_float(clips[i : i + batch_size], device)),
            target[i : i + batch_size].to(device), reduction="sum",
        ))
        for i in range(0, len(target), batch_size)
    )  # fmt: skip
    return total / len(target)
