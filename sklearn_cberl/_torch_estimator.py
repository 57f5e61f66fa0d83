"""What every torch-backed estimator shares: device, seeding, pickles, and the skorch toolkit.

One home for the machinery around the networks (no estimator is imported here):

* **device and seeding** - :func:`resolve_device` (the ``device`` parameter),
  :func:`seed_from` and :func:`torch_seed` (``random_state`` reproduces a fit without
  touching the user's global RNG);
* **pickles** - :class:`TorchEstimatorMixin` / :func:`cpu_state`: a model fitted on CUDA
  unpickles on a CPU-only machine;
* **training** - every network trains through skorch (:class:`~skorch.NeuralNet`):
  :func:`training_callbacks` gives the one set of callbacks (finite-loss check, early
  stopping on the validation quantity, progress) and :func:`fitted_history` /
  :func:`kept_epoch` turn a trained net into the fitted attributes every estimator exposes
  (``history_``, ``n_iter_``, ``best_epoch_``); :class:`TermsNet` is the net of losses that
  are a sum of named terms (each recorded per epoch), :class:`RowDataset` serves rows of
  tensors a batch at a time; :data:`TRAINING_CONSTRAINTS` is the one vocabulary of the
  training parameters;
* **progress** of loops that are not epochs (:func:`progress`) and skorch's epoch table
  without colour codes in a log (:class:`PlainPrintLog`).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import re
import sys
import threading
import time
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, PassthroughScoring, PrintLog, ProgressBar
from skorch.dataset import unpack_data
from skorch.utils import to_tensor

from .exceptions import TrainingDivergedError

__all__ = [
    "user_stacklevel",
    "TRAINING_CONSTRAINTS",
    "FiniteLoss",
    "PlainPrintLog",
    "RowDataset",
    "TermsNet",
    "TorchEstimatorMixin",
    "check_finite_loss",
    "cpu_state",
    "evaluate",
    "fitted_history",
    "is_terminal",
    "kept_epoch",
    "progress",
    "rows_as_batch",
    "resolve_device",
    "seed_from",
    "torch_seed",
    "training_callbacks",
]


# --------------------------------------------------------------------------- device, seeds
def user_stacklevel() -> int:
    """``warnings.warn``'s ``stacklevel`` that points at the user's call: the first frame
    outside this package and the libraries whose wrappers sit between (scikit-learn's fit
    context, imbalanced-learn's ``fit_resample``, skorch, joblib, torch's and contextlib's
    decorators), however many there are.

    A fixed number breaks whenever a decorator is added (the thread policy added one).
    Python 3.12's ``skip_file_prefixes`` does the same; the package supports 3.10.
    """
    import imblearn
    import joblib
    import sklearn
    import skorch

    internal = tuple(
        os.path.dirname(module.__file__)
        for module in (sklearn, imblearn, skorch, joblib, torch)  # torch: no_grad decorators
    ) + (os.path.dirname(os.path.abspath(__file__)), contextlib.__file__)
    frame, level = sys._getframe(1), 1  # the function that warns
    while frame is not None and frame.f_code.co_filename.startswith(internal):
        frame, level = frame.f_back, level + 1
    return level


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` (or None) means CUDA when available, else CPU. An explicit CUDA device on a
    machine without CUDA is a ``ValueError`` naming the parameter, not a torch traceback.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device: expected 'auto', 'cpu', 'cuda' or "
            "'cuda:<index>'."
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available on this machine; "
            "use device='cpu' or device='auto'."
        )
    return resolved


def seed_from(random_state) -> int:
    """Draw a 31-bit integer seed from ``random_state`` (int, RandomState or None)."""
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


#: Held while a seeded block runs: torch's generator is process-wide, so two fits in two
#: threads would otherwise interleave their draws (and restore each other's state).
_SEEDED = threading.RLock()


@contextlib.contextmanager
def torch_seed(seed: int, device: torch.device | None = None):
    """Seed torch inside the block and restore the caller's global RNG state afterwards.

    ``fit`` must be reproducible under ``random_state`` without changing the user's global
    torch RNG, hence ``torch.random.fork_rng`` (which also forks the CUDA generators when the
    estimator trains on CUDA). Seeded blocks of different threads run one after the other
    (a process-wide lock), so fits in threads give the results of sequential fits; torch
    still parallelises each fit over its intra-op threads.
    """
    devices = []
    if device is not None and torch.device(device).type == "cuda":
        index = torch.device(device).index
        devices = [torch.cuda.current_device() if index is None else index]
    with _SEEDED, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# --------------------------------------------------------------------------- pickles
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
        device = resolve_device(self.device)
        if device != getattr(self, self._device_attr):
            getattr(self, self._module_attr).to(device)
            setattr(self, self._device_attr, device)


# --------------------------------------------------------------------------- training
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


def check_finite_loss(loss, *, estimator: str, epoch: int, term: str = "loss", hint: str = ""):
    """Raise :class:`~sklearn_cberl.exceptions.TrainingDivergedError` when ``loss`` (tensor or
    float) is NaN/inf; return it as a float."""
    value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"{estimator}: the {term} became {value} at epoch {epoch}; training diverged. "
            + (hint or "Try a lower lr, or standardise the input features.")
        )
    return value


class FiniteLoss(Callback):
    """skorch callback: a NaN/inf epoch loss is a clear error, not a silently useless model.

    Checks every per-epoch value of the history whose key ends in ``loss`` (``train_loss``,
    ``valid_loss`` and an estimator's own terms) after each epoch.

    Parameters
    ----------
    estimator : str
        Name used in the message.
    hint : str, default=""
        What to try (default: a lower lr, standardised features).
    """

    def __init__(self, estimator: str, hint: str = ""):
        self.estimator = estimator
        self.hint = hint

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        for key, value in row.items():
            if key.endswith("loss") and isinstance(value, (int, float)):
                term = key.replace("_", " ")
                check_finite_loss(
                    value, estimator=self.estimator, epoch=row["epoch"], term=term, hint=self.hint
                )


def training_callbacks(
    *,
    estimator: str,
    validating: bool,
    early_stopping,
    patience: int,
    verbose,
    monitor: str = "valid_loss",
    hint: str = "",
) -> list:
    """The skorch callbacks of every network's training, as ``(name, callback)`` pairs.

    Parameters
    ----------
    estimator : str
        Name in divergence messages.
    validating : bool
        Whether there is a validation set (early stopping needs one).
    early_stopping : str or None
        The estimator's ``early_stopping`` parameter: None trains ``max_epochs`` epochs and
        keeps the last weights; otherwise stop after ``patience`` epochs without improvement
        of ``monitor`` and restore the best epoch's weights in memory (never checkpoint
        files, so parallel fits never share one).
    patience : int
    verbose : int
        ``verbose > 1`` adds skorch's per-batch progress bar in a terminal (the epoch table
        of ``verbose >= 1`` is the net's ``print_log``, see :class:`PlainPrintLog`).
    monitor : str, default="valid_loss"
        History key of the monitored quantity; ``valid_loss`` is minimised, any other key
        (a validation score such as ``valid_waf1``) maximised.
    hint : str, default=""
        :class:`FiniteLoss`'s hint.
    """
    callbacks = [("finite_loss", FiniteLoss(estimator, hint))]
    if validating and early_stopping is not None:
        stopper = EarlyStopping(
            monitor=monitor,
            lower_is_better=monitor.endswith("loss"),
            patience=int(patience),
            load_best=True,
            sink=_to_stderr if verbose else _silent,  # skorch calls a non-print sink always
        )
        callbacks.append(("early_stopping", stopper))
    if verbose and verbose > 1 and is_terminal():
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks


def kept_epoch(net) -> int:
    """The epoch whose weights the trained ``net`` holds: the best validated one when early
    stopping restored it, else the last epoch run."""
    stopper = dict(getattr(net, "callbacks_", [])).get("early_stopping")
    best = int(stopper.best_epoch_) if stopper is not None else 0
    return best if best >= 1 else len(net.history)


def fitted_history(net) -> dict:
    """The fitted attributes every torch estimator exposes, from its trained skorch net.

    Returns
    -------
    dict
        ``history_`` (one dict per epoch: ``epoch``, ``train_loss``, ``valid_loss`` when
        validating, ``dur`` and the estimator's own per-epoch terms; skorch's per-batch
        records and its ``*_best`` flags are left out), ``n_iter_`` (epochs run) and
        ``best_epoch_`` (:func:`kept_epoch`).
    """
    history = [
        {
            k: v
            for k, v in row.items()
            if k != "batches" and not k.endswith(("_best", "_batch_count"))
        }
        for row in net.history
    ]
    return {"history_": history, "n_iter_": len(history), "best_epoch_": kept_epoch(net)}


class RowDataset(torch.utils.data.Dataset):
    """Rows of arrays (a dict of them, or one) and optional targets, fetched a batch at a time.

    ``DataLoader`` calls ``__getitems__`` with a whole batch of indices: one fancy index per
    array and batch instead of skorch's default of one ``__getitem__`` per row and a collate
    (which cost more than the step itself for the small MLPs trained here). Use it with
    ``collate_fn=rows_as_batch``.

    Parameters
    ----------
    X : ndarray, Tensor or dict of them
        Arrays with one row per sample.
    y : ndarray or Tensor, default=None
        Targets (a placeholder of zeros when None).
    """

    def __init__(self, X, y=None):
        self.X = {k: torch.as_tensor(v) for k, v in X.items()} if isinstance(X, dict) else X
        if not isinstance(self.X, dict):
            self.X = torch.as_tensor(X)
        first = next(iter(self.X.values())) if isinstance(self.X, dict) else self.X
        self.n = len(first)
        self.y = torch.zeros(self.n) if y is None else torch.as_tensor(y)

    def __len__(self):
        return self.n

    def __getitems__(self, indices):
        index = torch.as_tensor(indices, dtype=torch.long)
        if isinstance(self.X, dict):
            return {k: v[index] for k, v in self.X.items()}, self.y[index]
        return self.X[index], self.y[index]

    def __getitem__(self, i):
        return self.__getitems__([i])


def rows_as_batch(batch):
    """The collate function of :class:`RowDataset`: its batches arrive assembled."""
    return batch


class TermsNet(NeuralNet):
    """A skorch net whose loss is a sum of named terms, each recorded per epoch.

    Subclasses implement :meth:`loss_terms`, returning a dict of 0-d tensors: ``"loss"`` is
    minimised, every other key listed in :attr:`terms` is recorded per batch as
    ``train_<name>`` / ``valid_<name>`` and averaged per epoch (weighted by batch size) into
    the history. Inputs reach :meth:`loss_terms` on the net's device. Training, validation,
    callbacks and early stopping are skorch's own.
    """

    #: Names of the terms recorded besides ``loss``.
    terms: tuple = ()

    def __init__(self, module, *args, criterion=None, **kwargs):
        # The loss is computed by loss_terms: no criterion module unless one is given.
        super().__init__(module, criterion, *args, **kwargs)

    def initialize_criterion(self):
        if self.criterion is None:
            self.criterion_ = None
            return self
        return super().initialize_criterion()

    def get_default_callbacks(self):
        scoring = [
            (f"{prefix}_{name}", PassthroughScoring(f"{prefix}_{name}", on_train=train))
            for name in self.terms
            for prefix, train in (("train", True), ("valid", False))
        ]
        return [*super().get_default_callbacks(), *scoring]

    def loss_terms(self, X, y, training: bool) -> dict:
        """The loss terms of one batch; ``X`` and ``y`` on the net's device."""
        raise NotImplementedError

    def _step(self, batch, training: bool) -> dict:
        Xi, yi = unpack_data(batch)
        terms = self.loss_terms(
            to_tensor(Xi, device=self.device), to_tensor(yi, device=self.device), training
        )
        prefix = "train" if training else "valid"
        for name in self.terms:
            self.history.record_batch(f"{prefix}_{name}", float(terms[name].detach()))
        return terms

    def train_step_single(self, batch, **fit_params):
        self._set_training(True)
        terms = self._step(batch, training=True)
        terms["loss"].backward()
        return {"loss": terms["loss"], "y_pred": None}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            terms = self._step(batch, training=False)
        return {"loss": terms["loss"], "y_pred": None}


def evaluate(module, compute):
    """``compute()`` with ``module`` in eval mode (no dropout: no random draws) and without
    autograd, then back in its previous mode."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return compute()
    finally:
        module.train(was_training)


# --------------------------------------------------------------------------- progress
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def is_terminal(stream=None) -> bool:
    """Whether ``stream`` (default: stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(getattr(stream, "isatty", lambda: False)())


class _PlainProgress:
    """tqdm's iteration interface (``for``, ``set_postfix``) printing plain lines."""

    def __init__(self, iterable, desc, total):
        self.iterable, self.desc = iterable, desc
        self.total = total if total is not None else len(iterable)
        self.postfix = ""

    def set_postfix(self, **values):
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def __iter__(self):
        start = time.perf_counter()
        every = max(1, self.total // 10)
        for i, item in enumerate(self.iterable, 1):
            yield item
            if i % every == 0 or i == self.total:
                postfix = f" ({self.postfix})" if self.postfix else ""
                elapsed = time.perf_counter() - start
                print(
                    f"{self.desc}: {i}/{self.total} {elapsed:.0f}s{postfix}",
                    file=sys.stderr,
                    flush=True,
                )


class _Silent:
    def __init__(self, iterable):
        self.iterable = iterable

    def set_postfix(self, **values):
        pass

    def __iter__(self):
        return iter(self.iterable)


def progress(iterable, *, desc: str, verbose, total=None):
    """Wrap a loop that is not an epoch loop (inference batches, candidate rounds): silent
    when ``verbose`` is falsy, a tqdm bar in a terminal, else about ten plain lines on
    stderr (tqdm's redraws turn a log file into escape codes)."""
    if not verbose:
        return _Silent(iterable)
    if is_terminal():
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total)
    return _PlainProgress(iterable, desc, total)


def _to_stderr(text):
    print(text, file=sys.stderr, flush=True)


def _silent(text):
    pass


class PlainPrintLog(PrintLog):
    """skorch's epoch table on stderr, titled, without colour codes off a terminal.

    Progress goes to stderr like every other progress line of the package (stdout stays
    for results); the title names the network being trained (a pipeline trains several).

    Parameters
    ----------
    name : str
        Title printed before the table.
    **kwargs
        :class:`skorch.callbacks.PrintLog` parameters.
    """

    def __init__(self, name: str = "", **kwargs):
        kwargs.setdefault("sink", _to_stderr)
        super().__init__(**kwargs)
        self.name = name

    def on_train_begin(self, net, **kwargs):
        if self.name:
            self._sink(f"{self.name}: up to {net.max_epochs} epochs", net.verbose)
        return super().on_train_begin(net, **kwargs)

    def _sink(self, text, verbose):
        if verbose:  # skorch's own check lets any sink but print through at verbose=0
            self.sink(text)

    def format_row(self, row, key, color):
        value = super().format_row(row, key, color)
        if isinstance(value, str) and not is_terminal():
            return _ANSI.sub("", value)
        return value
