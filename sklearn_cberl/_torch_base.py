"""The hand-written loops' epoch bookkeeping, until those loops train through skorch.

Transitional: EmoGAN's emotion classifier and judges, the audio auto-encoder and the 3D-CNN
still run their own loops; they move onto skorch (:mod:`sklearn_cberl._torch_estimator`) and
this module goes away.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["BestEpoch", "hold_out"]


class BestEpoch:
    """Epoch bookkeeping and early stopping, shared by the hand-written training loops.

    Call :meth:`update` after every epoch with its validation loss (None without a
    validation set); it returns True when training should stop (``patience`` epochs without
    a lower loss; never with ``patience=None``). :meth:`restore` loads the best epoch's
    weights into ``module`` when early stopping kept them. ``epoch`` is the number of epochs
    run, ``kept_epoch`` the epoch whose weights the module holds after :meth:`restore`.
    """

    def __init__(self, module, patience: int | None):
        self.module, self.patience = module, patience
        self.best_loss, self.best_epoch, self._state = math.inf, 0, None
        self.epoch = self.kept_epoch = 0

    def update(self, epoch: int, loss: float | None = None) -> bool:
        self.epoch = self.kept_epoch = epoch
        if loss is None:
            return False
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            if self.patience is not None:
                state = self.module.state_dict()
                self._state = {k: v.detach().clone() for k, v in state.items()}
        if self.patience is None:
            return False
        self.kept_epoch = self.best_epoch
        return epoch - self.best_epoch >= self.patience

    def restore(self) -> None:
        if self._state is not None:
            self.module.load_state_dict(self._state)


def hold_out(n: int, fraction: float, seed: int):
    """Sorted indices ``(kept, held)``: ``fraction`` of ``n`` rows (at least one) held out
    for validation, drawn with ``seed``; the split of the loops' early stopping."""
    order = np.random.RandomState(seed % (2**32)).permutation(n)
    n_held = max(1, int(round(fraction * n)))
    return np.sort(order[n_held:]), np.sort(order[:n_held])
