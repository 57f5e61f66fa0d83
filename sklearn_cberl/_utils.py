"""Small helpers shared by the estimators: device resolution, seeding, divergence checks."""

from __future__ import annotations

import contextlib
import math
import threading

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = [
    "TrainingDivergedError",
    "resolve_device",
    "seed_from",
    "torch_seed",
    "check_finite_loss",
]


class TrainingDivergedError(FloatingPointError):
    """A training loss became NaN or infinite.

    Subclasses :class:`FloatingPointError` (itself an ``ArithmeticError``) so callers can
    catch numeric failures generically; the message names the estimator, the epoch, the
    loss term and a hint (usually: lower ``lr``, standardise the features).
    """


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


def check_finite_loss(loss, *, estimator: str, epoch: int, term: str = "loss", hint: str = ""):
    """Raise :class:`TrainingDivergedError` when ``loss`` (tensor or float) is NaN/inf."""
    value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
    if not math.isfinite(value):
        raise TrainingDivergedError(
            f"{estimator}: the {term} became {value} at epoch {epoch}; training diverged. "
            + (hint or "Try a lower lr, or standardise the input features.")
        )
    return value
