"""DJVAE's training and chunked inference loops (Eq. 12), on the modules of :mod:`.vae`.

Written by hand rather than as a skorch ``NeuralNet``: the batches carry a modality mask
next to the features and the loss is the masked ELBO; moving this loop to skorch (with
validation and early stopping) is planned in the redesign and must keep results within noise.
"""

from __future__ import annotations

import numpy as np
import torch

from .._torch_base import BestEpoch, evaluate
from .vae import DJVAEModule, gaussian_kl, reconstruction_loss, reparameterize

__all__ = ["INFERENCE_CHUNK", "decode_latent", "encode_mean", "negative_elbo_sum", "train_djvae"]


def train_djvae(
    module: DJVAEModule,
    x_all: torch.Tensor,
    p_all: torch.Tensor,
    weights: torch.Tensor,
    *,
    history: list,
    max_epochs: int,
    batch_size: int,
    lr: float,
    beta: float,
    beta_warmup: int,
    verbose=0,
    valid=None,
    patience: int | None = None,
    seed: int = 0,
) -> int:
    """Minimise the Eq. 12 loss (reconstruction + ``beta`` x KL) with Adam, in place.

    ``history`` receives one record per finished epoch (``epoch``, ``reconstruction``,
    ``kl``, ``beta``, ``loss``: means per utterance), so a diverged fit keeps the epochs that
    completed. The KL weight ramps up linearly over the first ``beta_warmup`` epochs.

    ``valid=(values, present)`` (standardised NumPy arrays) adds ``valid_loss``, the Eq. 12
    loss per utterance at the full ``beta`` (one Monte Carlo draw from a generator seeded
    with ``seed`` every epoch, so epochs compare like with like and the training draws are
    untouched). With ``patience`` training stops after that many epochs without a lower
    validation loss and the best epoch's weights are restored.

    Returns
    -------
    best_epoch : int
        The epoch whose weights the module holds (the last one without early stopping).
    """
    from .._progress import progress
    from .._utils import check_finite_loss

    n = x_all.shape[0]
    device = x_all.device
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    generator = torch.Generator(device=device)
    tracker = BestEpoch(module, patience)
    epochs = progress(range(1, max_epochs + 1), desc="DJVAE", verbose=verbose)
    module.train()
    for epoch in epochs:
        ramp = min(1.0, epoch / beta_warmup) if beta_warmup else 1.0
        beta_e = float(beta) * ramp
        total_rec = torch.zeros((), device=device)
        total_kl = torch.zeros((), device=device)
        perm = torch.randperm(n, device=device)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            xb, pb = x_all[idx], p_all[:, idx]
            x_hat, mu, logvar = module(xb, pb)
            rec = reconstruction_loss(x_hat, xb, module.blocks, pb, weights)
            kl = gaussian_kl(mu, logvar)
            loss = rec.mean() + beta_e * kl.mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_rec += rec.detach().sum()
            total_kl += kl.detach().sum()
        hint = f"Try a lower lr (now {lr!r})."
        rec_e = check_finite_loss(
            total_rec / n, estimator="DJVAE", epoch=epoch, term="reconstruction loss", hint=hint
        )
        kl_e = check_finite_loss(
            total_kl / n, estimator="DJVAE", epoch=epoch, term="KL term", hint=hint
        )
        record = {
            "epoch": epoch,
            "reconstruction": rec_e,
            "kl": kl_e,
            "beta": beta_e,
            "loss": rec_e + beta_e * kl_e,
        }
        history.append(record)
        epochs.set_postfix(reconstruction=f"{rec_e:.4g}", kl=f"{kl_e:.4g}")
        if valid is not None:
            generator.manual_seed(seed)
            total = evaluate(
                module, lambda: negative_elbo_sum(module, *valid, weights, beta, generator)
            )
            record["valid_loss"] = check_finite_loss(
                total / valid[0].shape[0], estimator="DJVAE", epoch=epoch,
                term="validation loss", hint=hint,
            )  # fmt: skip
        if tracker.update(epoch, record.get("valid_loss")):
            break
    tracker.restore()
    module.eval()
    return tracker.kept_epoch


# ------------------------------------------------------------------ chunked inference
#: Rows encoded/decoded per chunk at inference: bounds memory, independent of batch_size.
INFERENCE_CHUNK = 8192


def _row_chunks(n: int, chunk: int):
    return (slice(start, start + chunk) for start in range(0, n, chunk))


@torch.no_grad()
def encode_mean(module: DJVAEModule, values, present, device, chunk: int = INFERENCE_CHUNK):
    """Posterior means ``mu`` (Eq. 8 ``f``) of standardised rows, chunk by chunk (NumPy out).

    ``values`` is (n, features) and ``present`` the (M, n) modality mask, as NumPy arrays.
    """
    out = [
        module.encode(
            torch.as_tensor(values[rows], device=device),
            torch.as_tensor(present[:, rows], device=device),
        )[0]
        .cpu()
        .numpy()
        for rows in _row_chunks(values.shape[0], chunk)
    ]
    return np.concatenate(out) if out else np.empty((0, module.n_components), np.float32)


@torch.no_grad()
def decode_latent(module: DJVAEModule, Z, device, chunk: int = INFERENCE_CHUNK):
    """Standardised reconstructions (Eq. 8 ``g``) of latent rows ``Z``, chunk by chunk."""
    # torch.tensor copies: Z may be a read-only view of the caller's frame.
    out = [
        module.decode(torch.tensor(Z[rows], dtype=torch.float32, device=device)).cpu().numpy()
        for rows in _row_chunks(Z.shape[0], chunk)
    ]
    return np.concatenate(out) if out else np.empty((0, module.blocks[-1].stop))


@torch.no_grad()
def negative_elbo_sum(
    module: DJVAEModule, values, present, weights, beta, generator, chunk: int = INFERENCE_CHUNK
) -> float:
    """Sum over rows of the Eq. 12 loss (one-sample Monte Carlo reconstruction, exact KL)."""
    device = weights.device
    total = 0.0
    for rows in _row_chunks(values.shape[0], chunk):
        xb = torch.as_tensor(values[rows], device=device)
        pb = torch.as_tensor(present[:, rows], device=device)
        mu, logvar = module.encode(xb, pb)
        x_hat = module.decode(reparameterize(mu, logvar, generator))
        rec = reconstruction_loss(x_hat, xb, module.blocks, pb, weights)
        total += float((rec + float(beta) * gaussian_kl(mu, logvar)).sum())
    return total
