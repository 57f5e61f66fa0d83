"""The audio front-end's MLP auto-encoder (paper Sec. III: a 100-d bottleneck over the
openSMILE functionals) and its training loop, with optional early stopping."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._torch_base import BestEpoch
from .._torch_estimator import check_finite_loss, evaluate, progress

__all__ = ["AutoEncoder", "train_autoencoder"]


class AutoEncoder(nn.Module):
    """Symmetric MLP auto-encoder; the bottleneck is the reduced audio feature.

    ``in -> hidden... -> n_components -> ...hidden -> in``, ReLU between layers, linear
    bottleneck and output (the input is z-scored, so unbounded).
    """

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_components: int, dropout: float):
        super().__init__()
        sizes = [n_in, *hidden]
        enc = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            enc += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.encoder = nn.Sequential(*enc, nn.Linear(sizes[-1], n_components))
        back = [n_components, *reversed(hidden)]
        dec = []
        for a, b in zip(back[:-1], back[1:]):
            dec += [nn.Linear(a, b), nn.ReLU()]
        self.decoder = nn.Sequential(*dec, nn.Linear(back[-1], n_in))

    def forward(self, x):
        z = self.encoder(x)
        return z, self.decoder(z)


def train_autoencoder(
    net, Z, Z_val, *, max_epochs, batch_size, lr, weight_decay, patience=None, verbose=0
):
    """Minimise the mean squared reconstruction error with Adam, in place.

    ``Z_val`` (or None): rows whose reconstruction loss is recorded after every epoch and,
    with ``patience``, monitored for early stopping (the best epoch's weights are restored).

    Returns
    -------
    loss_curve, validation_loss_curve : list of float
    best_epoch, n_iter : int
    """
    device = next(net.parameters()).device
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    data = torch.from_numpy(np.ascontiguousarray(Z)).to(device)
    valid = None if Z_val is None else torch.from_numpy(np.ascontiguousarray(Z_val)).to(device)
    n = data.shape[0]
    # tqdm in a terminal, plain lines in a log (the project's one progress helper).
    epochs = progress(range(max_epochs), desc="AudioFeatures auto-encoder", verbose=verbose)
    tracker, losses, valid_losses = BestEpoch(net, patience), [], []
    net.train()
    for epoch in epochs:
        perm = torch.randperm(n, device=device)
        total = 0.0
        for start in range(0, n, batch_size):
            batch = data[perm[start : start + batch_size]]
            _, recon = net(batch)
            loss = nn.functional.mse_loss(recon, batch)
            check_finite_loss(
                loss, estimator="AudioFeatures", epoch=epoch, term="reconstruction loss"
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * batch.shape[0]
        losses.append(total / n)
        valid_loss = None
        if valid is not None:
            valid_loss = evaluate(net, lambda: float(nn.functional.mse_loss(net(valid)[1], valid)))
            valid_losses.append(valid_loss)
        if tracker.update(epoch + 1, valid_loss):
            break
    tracker.restore()
    return losses, valid_losses, tracker.kept_epoch, tracker.epoch
