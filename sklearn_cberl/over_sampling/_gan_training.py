"""EmoGAN training and generation loops (paper Eq. 5-7 and the sampling step).

Kept apart from the estimator (:mod:`._emogan`), which validates data, standardises and
assembles the output. Two optimisers alternate inside one minibatch (discriminators, then
generators); the loop is written by hand because skorch's ``NeuralNet`` trains one module
with one optimiser per step.
"""

from __future__ import annotations

import warnings

import torch

from .._torch_base import BestEpoch
from .._torch_estimator import check_finite_loss, evaluate, progress
from ..exceptions import SyntheticRowsWarning, TrainingDivergedError
from ._sources import CrossFittedJudges, train_emotion_classifier

__all__ = [
    "MAX_FILTER_ROUNDS",
    "fit_judges",
    "SyntheticRowsWarning",
    "generate",
    "pretrain_emotion_classifier",
    "train_gan",
]

#: Candidate rounds drawn per class before the filter falls back to the best candidates.
MAX_FILTER_ROUNDS = 10
NAME = "EmoGANSampler"
HINT = (
    "Lower `lr` (currently {lr}) or `lambda_adversarial`, or check the input features for "
    "extreme values."
)
#: Loss terms recorded per GAN epoch (``history_``), in :meth:`EmoGAN.generator_loss` names.
TERMS = ("identity", "adversarial", "classification", "target_classification", "diversity")


def pretrain_emotion_classifier(X_t, y_t, n_classes, *, history, verbose, **train):
    """``EC_s`` (:func:`._sources.train_emotion_classifier`) with progress and checked losses.

    ``history`` receives ``{"epoch", "loss"}`` per epoch (``classifier_history_``); a
    non-finite loss raises :class:`TrainingDivergedError` naming the epoch.
    """
    bar = progress(range(train["epochs"]), desc="EC_s", verbose=verbose)
    steps = iter(bar)

    def on_epoch(epoch, loss):
        value = check_finite_loss(
            loss,
            estimator=NAME,
            epoch=epoch,
            term="EC_s pre-training loss",
            hint=HINT.format(lr=train["lr"]),
        )
        history.append({"epoch": epoch, "loss": value})
        bar.set_postfix(loss=f"{value:.3f}")
        next(steps, None)

    next(steps, None)
    return train_emotion_classifier(X_t, y_t, n_classes, on_epoch=on_epoch, **train)


def fit_judges(X_t, y_t, n_classes, *, history, verbose, filter_folds, seed, **train):
    """``EC_s`` (all real rows, frozen: the classifier of Eq. 1-2 the generator trains on)
    and, with ``filter_folds``, the filter's cross-fitted judges (else None)."""
    ec = pretrain_emotion_classifier(X_t, y_t, n_classes, history=history, verbose=verbose, **train)
    if not filter_folds:
        return ec, None
    # The filter's judges never saw the source of the candidate they judge.
    return ec, CrossFittedJudges(X_t, y_t, n_classes, filter_folds, seed % (2**31), **train)


def _validation_loss(gan, ec, valid, sources, targets, X_t, lambdas, seed) -> float:
    """The non-adversarial part of Eq. 5 (identity + L_C + L_RC) on validation rows.

    The adversarial term is left out: it is measured against a discriminator that changes
    every epoch, so it does not compare across epochs. Its draws (requested classes,
    translation sources, noise) come from a generator reseeded every epoch inside a forked
    RNG: epochs compare like with like and the training stream is untouched.
    """
    s, y_s = valid
    device = s.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        r = targets[torch.randint(len(targets), (len(s),), device=device)]
        t = X_t[sources.draw(r)]
        _, terms, _ = evaluate(gan, lambda: gan.generator_loss(ec, s, y_s, t, r, **lambdas))
    classification = terms["classification"] + terms["target_classification"]
    total = lambdas["lambda_identity"] * terms["identity"]
    return float(total + lambdas["lambda_classification"] * classification)


def train_gan(
    gan, ec, X_t, y_t, sources, targets, *, history, max_epochs, batch_size, lr, lambdas, verbose,
    valid=None, patience=None, seed=0, batch_rows=None,
) -> int:  # fmt: skip
    """Alternate generator (Eq. 7, total loss Eq. 5) and discriminator (Eq. 6) steps.

    Parameters
    ----------
    gan : EmoGAN
        The networks, trained in place.
    ec : EmotionClassifier
        The frozen ``EC_s`` of ``L_C`` / ``L_RC`` (Eq. 1-2).
    X_t, y_t : Tensor
        Standardised real rows and their class codes.
    sources : SourceSampler
        Draws the utterances ``T`` translated into the requested classes.
    targets : Tensor
        Class codes being over-sampled (the requested classes ``r`` are drawn from them).
    max_epochs, batch_size, lr, verbose
        As the sampler's parameters.
    lambdas : dict
        ``lambda_identity``, ``lambda_adversarial``, ``lambda_classification``,
        ``lambda_diversity`` (weights of Eq. 5 and the mode-seeking term).
    history : list
        Receives one record per finished epoch (mean loss terms, ``total``,
        ``discriminator``); filled as training goes, so a diverged fit keeps the epochs
        that completed.
    valid, patience, seed
        ``(rows, labels)`` held out: ``valid_loss`` per epoch (:func:`_validation_loss`);
        with ``patience``, early stopping with the best epoch's networks restored.
    batch_rows : LongTensor, default=None
        The rows minibatches are drawn from (None: all).

    Returns
    -------
    best_epoch : int
    """
    # beta1 = 0.5: the usual Adam momentum for GANs (DCGAN); 0.9 oscillates more.
    g_opt = torch.optim.Adam(gan.generator_parameters(), lr=lr, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(gan.discriminators.parameters(), lr=lr, betas=(0.5, 0.999))
    keys = [*TERMS, "total", "discriminator"]
    device = X_t.device
    # Minibatches come from `batch_rows` (all rows, or all but the held-out validation rows);
    # translation sources index the full X_t.
    rows = torch.arange(len(y_t), device=device) if batch_rows is None else batch_rows
    n = len(rows)
    tracker = BestEpoch(gan, patience)
    gan.train()
    bar = progress(range(max_epochs), desc=NAME, verbose=verbose)
    for epoch in bar:
        sums = X_t.new_zeros(len(keys))
        for idx in torch.split(rows[torch.randperm(n, device=device)], int(batch_size)):
            s, y_s = X_t[idx], y_t[idx]
            # Eq. 2: requested classes r (the classes to over-sample) and utterances T
            # drawn as at sampling time (class r and its nearest classes).
            r = targets[torch.randint(len(targets), (len(idx),), device=device)]
            t = X_t[sources.draw(r)]

            gan.discriminators.requires_grad_(False)
            total, terms, fake = gan.generator_loss(ec, s, y_s, t, r, **lambdas)
            g_opt.zero_grad(set_to_none=True)
            total.backward()
            g_opt.step()
            gan.discriminators.requires_grad_(True)

            d_loss = gan.discriminator_loss(torch.cat([s, t]), fake.detach())
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()

            values = [*(terms[k] for k in TERMS), total.detach(), d_loss.detach()]
            sums += torch.stack(values) * len(idx)
        record = {"epoch": epoch + 1}
        for key, value in zip(keys, (sums / n).tolist()):
            record[key] = check_finite_loss(
                value, estimator=NAME, epoch=epoch + 1, term=f"{key} loss", hint=HINT.format(lr=lr)
            )
        history.append(record)
        bar.set_postfix(total=f"{record['total']:.3f}", d=f"{record['discriminator']:.3f}")
        if valid is not None:
            record["valid_loss"] = _validation_loss(
                gan, ec, valid, sources, targets, X_t, lambdas, seed
            )
        if tracker.update(epoch + 1, record.get("valid_loss")):
            break
    tracker.restore()
    return tracker.kept_epoch


def generate(gan, judges, X_t, sources, code: int, count: int, *, label, lr):
    """``count`` synthetic rows of class ``code`` (standardised) and their sources.

    Vectorised rounds of candidates ``G_T->S(x, Z_r)``. With ``judges`` (the filter) a
    candidate is kept only when the cross-fitted judge that never saw its source row
    assigns it to ``code``; rounds draw twice the missing count, and after
    :data:`MAX_FILTER_ROUNDS` the remainder is filled with the rejected candidates of
    highest judged probability (a :class:`SyntheticRowsWarning` says how many).
    Non-finite candidates are never kept.

    Returns
    -------
    rows, sources : ndarray
        The synthetic rows and the index of the real row each was translated from.
    stats : dict
        ``requested``, ``candidates``, ``accepted``, ``filled`` (``filter_stats_``).
    acceptance : dict
        Share accepted: ``all``, ``same_class``, ``neighbour_class`` (``acceptance_rate_``).
    """
    device = X_t.device
    kept_x, kept_src = [], []
    best_x = X_t.new_zeros((0, X_t.shape[1]))
    best_src = torch.zeros(0, dtype=torch.long, device=device)
    best_p = X_t.new_zeros(0)
    # candidates and accepted ones by source kind: [same class, neighbour class]
    tried = torch.zeros(2, dtype=torch.long, device=device)
    passed = torch.zeros(2, dtype=torch.long, device=device)
    remaining, drawn, rounds = count, 0, 0
    while remaining > 0 and rounds < MAX_FILTER_ROUNDS:
        rounds += 1
        m = max(2 * remaining, 32) if judges is not None else remaining
        r = torch.full((m,), code, dtype=torch.long, device=device)
        src = sources.draw(r)
        x = gan.translate(X_t[src], r)
        drawn += m
        finite = torch.isfinite(x).all(dim=1)
        x = torch.where(finite[:, None], x, torch.zeros_like(x))
        ok = finite
        if judges is not None:
            proba = judges.proba(x, src)
            ok = ok & (proba.argmax(dim=1) == code)
        kind = (sources.labels[src] != code).long()  # 0 same class, 1 neighbour
        tried += torch.bincount(kind, minlength=2)
        passed += torch.bincount(kind[ok], minlength=2)
        accepted = torch.nonzero(ok).squeeze(1)[:remaining]
        kept_x.append(x[accepted])
        kept_src.append(src[accepted])
        remaining -= len(accepted)
        if judges is not None:
            # Keep the best `remaining` rejected candidates for the fallback fill.
            rejected = torch.nonzero(finite & ~ok).squeeze(1)
            best_x = torch.cat([best_x, x[rejected]])
            best_src = torch.cat([best_src, src[rejected]])
            best_p = torch.cat([best_p, proba[rejected, code]])
            top = torch.argsort(best_p, descending=True, stable=True)[:count]
            best_x, best_src, best_p = best_x[top], best_src[top], best_p[top]
    filled = 0
    if remaining > 0:
        if len(best_p) < remaining:
            raise TrainingDivergedError(
                f"{NAME}: the generator produced non-finite rows for class {label!r}. "
                + HINT.format(lr=lr)
            )
        kept_x.append(best_x[:remaining])
        kept_src.append(best_src[:remaining])
        filled = remaining
        warnings.warn(
            f"{NAME}: only {count - filled} of {count} synthetic rows of class {label!r} "
            f"passed the filter in {drawn} candidates; the other {filled} are the "
            "rejected candidates the judges rated most likely of that class. See "
            "acceptance_rate_; more GAN epochs or filter_synthetic=False change this.",
            SyntheticRowsWarning,
            stacklevel=4,
        )
    stats = {"requested": count, "candidates": drawn, "accepted": count - filled, "filled": filled}
    tried, passed = tried.tolist(), passed.tolist()
    acceptance = {
        "all": sum(passed) / max(sum(tried), 1),
        "same_class": passed[0] / tried[0] if tried[0] else float("nan"),
        "neighbour_class": passed[1] / tried[1] if tried[1] else float("nan"),
    }
    rows = torch.cat(kept_x).cpu().numpy()
    return rows, torch.cat(kept_src).cpu().numpy(), stats, acceptance
