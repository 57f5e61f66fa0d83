"""EmoGAN training helpers: which real utterances are translated, and who judges the result.

* :class:`SourceSampler` - draws the utterances ``T_i`` that ``G_T->S(T_i, Z_r)`` translates
  into a requested class ``r`` (Eq. 2 and sampling time): from ``r`` itself with probability
  ``self_fraction``, otherwise from its nearest classes.
* :func:`train_emotion_classifier` - ``EC_s`` (class-balanced cross-entropy).
* :class:`CrossFittedJudges` - the filter's judges: ``k`` copies of ``EC_s``, each trained
  without one fold of the real rows. A candidate is judged by the copy that never saw its
  source row. ``EC_s`` itself cannot judge: the generator was trained to satisfy it (``L_RC``,
  Eq. 2) on the very rows it was fitted on, and it accepted 100 % of candidates.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import KFold, StratifiedKFold

from .._torch_base import hold_out
from ..nn.gan import EmotionClassifier

__all__ = [
    "CrossFittedJudges",
    "SourceSampler",
    "nearest_classes",
    "train_emotion_classifier",
    "validation_rows",
]


def nearest_classes(Xs: np.ndarray, y_codes: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    """For each class, the ``k`` other classes with the closest centroid (Euclidean)."""
    k = min(k, n_classes - 1)
    counts = np.bincount(y_codes, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, Xs.shape[1]))
    np.add.at(sums, y_codes, Xs)
    centroids = sums / counts[:, None]
    dist = ((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


class SourceSampler:
    """Draws source utterances for a requested class ``r`` on the training device.

    A fraction ``self_fraction`` of the sources come from class ``r`` itself, the rest
    uniformly from its ``k`` nearest classes (centroid distance in the standardised space);
    inside a class every utterance is equally likely. Tensor ops over the whole request.
    """

    def __init__(self, y_codes, neighbours, device, self_fraction: float = 0.5):
        n_classes = neighbours.shape[0]
        order = np.argsort(y_codes, kind="stable")
        counts = np.bincount(y_codes, minlength=n_classes)
        self.rows = torch.as_tensor(order, device=device)
        self.offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)[:-1]]), device=device)
        self.counts = torch.as_tensor(counts, device=device)
        self.neighbours = torch.as_tensor(neighbours, dtype=torch.long, device=device)
        self.self_fraction = float(self_fraction)
        self.labels = torch.as_tensor(y_codes, dtype=torch.long, device=device)

    def draw(self, r: torch.Tensor) -> torch.Tensor:
        """Row indices of one source utterance per entry of ``r`` (LongTensor of class codes)."""
        device = r.device
        cls = r
        k = self.neighbours.shape[1]
        if k:
            pick = torch.randint(k, r.shape, device=device)
            other = self.neighbours[r, pick]
            use_self = torch.rand(r.shape, device=device) < self.self_fraction
            cls = torch.where(use_self, r, other)
        counts = self.counts[cls]
        within = (torch.rand(r.shape, device=device) * counts).long()
        within = torch.minimum(within, counts - 1)
        return self.rows[self.offsets[cls] + within]


def _batches(n: int, batch_size: int, device):
    return torch.split(torch.randperm(n, device=device), int(batch_size))


def train_emotion_classifier(
    X_t, y_t, n_classes, *, hidden_size, epochs, lr, batch_size, on_epoch=None
):
    """An ``EC_s`` trained with class-balanced cross-entropy, returned frozen.

    Balanced weights (as ``class_weight="balanced"``): a classifier biased to the majority
    would push the rare-class translations of Eq. 2 towards the majority and reject most
    rare-class candidates in the filter. ``on_epoch(epoch, mean_loss)`` is called after each
    epoch (the sampler checks and records the loss there).
    """
    ec = EmotionClassifier(X_t.shape[1], n_classes, hidden_size).to(X_t.device)
    counts = torch.bincount(y_t, minlength=n_classes).to(X_t.dtype)
    weight = counts.sum() / (n_classes * counts.clamp(min=1))
    optimizer = torch.optim.Adam(ec.parameters(), lr=lr, weight_decay=1e-4)
    ec.train()
    for epoch in range(1, epochs + 1):
        total = X_t.new_zeros(())
        for idx in _batches(len(y_t), batch_size, X_t.device):
            loss = F.cross_entropy(ec(X_t[idx]), y_t[idx], weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total = total + loss.detach() * len(idx)
        if on_epoch is not None:
            on_epoch(epoch, total / len(y_t))
    return ec.eval().requires_grad_(False)


class CrossFittedJudges:
    """``k`` emotion classifiers, each fitted without one fold of the real rows.

    Parameters
    ----------
    X_t, y_t : Tensor
        Standardised real rows and their class codes.
    n_classes, n_folds, random_state
        Folds are stratified when every class has at least ``n_folds`` rows.
    **train
        Passed to :func:`train_emotion_classifier`.
    """

    def __init__(self, X_t, y_t, n_classes, n_folds, random_state, **train):
        y = y_t.cpu().numpy()
        stratify = np.bincount(y, minlength=n_classes).min() >= n_folds
        splitter = (StratifiedKFold if stratify else KFold)(
            n_splits=n_folds, shuffle=True, random_state=random_state
        )
        self.fold = torch.empty(len(y), dtype=torch.long, device=y_t.device)
        self.models = []
        for i, (fit_rows, held) in enumerate(splitter.split(np.zeros(len(y)), y)):
            self.fold[torch.as_tensor(held, device=y_t.device)] = i
            rows = torch.as_tensor(fit_rows, device=y_t.device)
            self.models.append(train_emotion_classifier(X_t[rows], y_t[rows], n_classes, **train))

    @torch.no_grad()
    def proba(self, x: torch.Tensor, source_rows: torch.Tensor) -> torch.Tensor:
        """Class probabilities of each candidate by the judge that never saw its source."""
        out = x.new_empty(x.shape[0], self.models[0].net[-1].out_features)
        folds = self.fold[source_rows]
        for i, model in enumerate(self.models):
            rows = folds == i
            if bool(rows.any()):
                out[rows] = torch.softmax(model(x[rows]), dim=1)
        return out


def validation_rows(X_t, y_t, valid, sampler, code_of, seed):
    """The rows the GAN's minibatches use and the validation rows ``(rows, codes)`` or None.

    ``valid``: ``(features, labels)`` given to ``fit_resample`` (standardised here with the
    sampler's scaler). Without it and with ``early_stopping``, ``validation_fraction`` of
    the rows is held out of the minibatches (EC_s, the judges and the translation sources
    still see every row).
    """
    all_rows = torch.arange(len(y_t), device=y_t.device)
    if valid is not None:
        X_val, y_val = valid
        unknown = sorted({label for label in y_val.tolist() if label not in code_of}, key=str)
        if unknown:
            raise ValueError(f"validation_data has labels absent from y: {unknown}.")
        Xs = sampler.scaler_.transform(X_val).astype(np.float32)
        codes = np.array([code_of[label] for label in y_val.tolist()], dtype=np.int64)
        return all_rows, (
            torch.from_numpy(Xs).to(X_t.device),
            torch.from_numpy(codes).to(X_t.device),
        )
    if not sampler.early_stopping:
        return all_rows, None
    kept, held = (
        torch.as_tensor(rows, device=y_t.device)
        for rows in hold_out(len(y_t), sampler.validation_fraction, seed)
    )
    return kept, (X_t[held], y_t[held])
