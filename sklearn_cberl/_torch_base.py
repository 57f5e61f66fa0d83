"""What the torch-backed estimators share (no import of any estimator): CPU pickles and
device moves, the training parameters' constraints, and the loops' validation bookkeeping.

:func:`cpu_state` lives here rather than in :mod:`sklearn_cberl.persistence` so that the
estimators' ``__getstate__`` does not import the module that imports the estimators.
"""

from __future__ import annotations

import copy
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

__all__ = [
    "TRAINING_CONSTRAINTS",
    "BestEpoch",
    "TorchEstimatorMixin",
    "cpu_state",
    "evaluate",
    "hold_out",
]


def _off_cpu(value) -> bool:
    """True when ``value`` holds a torch tensor that is not on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.device.type != "cpu"
    if isinstance(value, torch.nn.Module):
        tensors = [*value.parameters(), *value.buffers()]
        return any(t.device.type != "cpu" for t in tensors)
    if isinstance(value, dict):
        return any(_off_cpu(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_off_cpu(v) for v in value)
    return False


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, torch.nn.Module):
        return value.cpu()  # in place: keeps aliases (gan_.g_ts is generator_) shared
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_cpu(v) for v in value)
    return value


def cpu_state(state: dict, *, device_key: str | None = None) -> dict:
    """Copy of an estimator's pickle state with every torch module and tensor on the CPU.

    Used by ``__getstate__`` so that a model fitted on CUDA unpickles on a CPU-only
    machine. The estimator itself is not touched: the attributes that hold torch state off
    the CPU are deep-copied together (one ``deepcopy`` memo, so attributes that alias each
    other stay aliases) and the copies are moved. CPU-only state is returned as is.

    Parameters
    ----------
    state : dict
        The ``__dict__``-like state (``BaseEstimator.__getstate__()``).
    device_key : str, default=None
        Attribute naming the device the torch state lives on; set to ``cpu`` in the copy
        when something was moved.
    """
    keys = [k for k, v in state.items() if _off_cpu(v)]
    if not keys:
        return state
    moved = copy.deepcopy({k: state[k] for k in keys})
    state = dict(state)
    for key, value in moved.items():
        state[key] = _to_cpu(value)
    if device_key is not None and device_key in state:
        state[device_key] = torch.device("cpu")
    return state


class TorchEstimatorMixin:
    """CPU pickles and device moves for an estimator holding torch state in fitted attributes.

    A model fitted on CUDA must unpickle on a CPU-only machine; the estimator itself is
    not touched (:func:`cpu_state`). ``_device_attr`` names the fitted attribute that
    records the device (set to CPU in the pickled copy), or None; ``_module_attr`` the
    fitted module that :meth:`_sync_device` moves.
    """

    _device_attr: str | None = None
    _module_attr = "module_"

    def __getstate__(self):
        return cpu_state(super().__getstate__(), device_key=self._device_attr)

    def _sync_device(self):
        """Move the fitted module to the device of the ``device`` parameter, now.

        Lets a fitted model change device with ``set_params(device=...)`` and lets a
        pickle (always on the CPU) return to CUDA with ``device="auto"``.
        """
        from ._utils import resolve_device

        device = resolve_device(self.device)
        if device != getattr(self, self._device_attr):
            getattr(self, self._module_attr).to(device)
            setattr(self, self._device_attr, device)


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


def evaluate(module, compute):
    """``compute()`` with ``module`` in eval mode (no dropout: no random draws) and without
    autograd, then back in train mode: the validation pass of every training loop."""
    module.eval()
    try:
        with torch.no_grad():
            return compute()
    finally:
        module.train()


def hold_out(n: int, fraction: float, seed: int):
    """Sorted indices ``(kept, held)``: ``fraction`` of ``n`` rows (at least one) held out
    for validation, drawn with ``seed``; the split of the loops' early stopping."""
    order = np.random.RandomState(seed % (2**32)).permutation(n)
    n_held = max(1, int(round(fraction * n)))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


#: Constraints of the training parameters every torch estimator shares (one vocabulary).
TRAINING_CONSTRAINTS: dict = {
    "max_epochs": [Interval(Integral, 1, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "lr": [Interval(Real, 0, None, closed="neither")],
    "early_stopping": [StrOptions({"loss"}), None],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "patience": [Interval(Integral, 1, None, closed="left")],
    "device": [str, torch.device, None],
    "random_state": ["random_state"],
    "verbose": ["verbose"],
}
