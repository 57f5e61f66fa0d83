"""Package configuration: how many CPU threads torch may use (scikit-learn's config style).

:func:`set_config`, :func:`get_config` and :func:`config_context` work as scikit-learn's
functions of the same names (thread-local, a context manager that restores the previous
value). Every torch-backed ``fit``, ``fit_resample``, ``predict``, ``transform``, ... runs
with the configured number of torch intra-op threads and restores torch's own setting
afterwards (:func:`uses_torch_threads`).

Why one thread by default (``n_threads=1``):

* **Reproducible results.** With the same ``random_state``, a fit on one thread gives the
  same model on every machine, whatever its core count or load. Torch's CPU kernels split
  their reductions by thread, so a fit on two threads differs in the last digits, and those
  differences grow through training (measured: predicted probabilities differ by up to 3e-3
  after 15 epochs on the demo data).
* **No over-subscription.** torch's own default is one thread per core, whatever else runs:
  next to other busy processes the threads wait for each other (the demo classifier fit took
  74 s on two threads and 7 s on one on a 2-core machine with other jobs), and inside joblib /
  dask workers every worker would claim every core.
* The networks here are small, so one thread loses little: the classifier trained an epoch
  over 7.2k utterances in 1.63 s on one thread and 1.25 s on two
  (``benchmarks/results/classifier_speed_issue22_after.md`` and ``classifier_speed.md``).
  Use ``n_threads="free"`` (the cores other processes leave free) or a number for one large
  fit on an idle machine with many cores.

Kept free of a module-level torch import: the ``cberl`` command sizes torch's thread pool
before torch loads (``OMP_NUM_THREADS``), so that ``--help`` and file errors stay fast.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading

__all__ = [
    "config_context",
    "free_cores",
    "get_config",
    "resolve_threads",
    "set_config",
    "torch_threads",
    "uses_torch_threads",
]

_DEFAULTS = {"n_threads": 1}
_local = threading.local()


def _config() -> dict:
    if not hasattr(_local, "config"):
        _local.config = dict(_DEFAULTS)
    return _local.config


def get_config() -> dict:
    """The current configuration (a copy): ``{"n_threads": ...}``."""
    return dict(_config())


def _check_threads(n):
    if n == "free":
        return n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n_threads={n!r}: expected a positive number of threads or 'free'.")
    return n


def set_config(*, n_threads=None) -> None:
    """Set the package configuration (in this thread).

    Parameters
    ----------
    n_threads : int or "free", default=None
        Torch intra-op threads of every fit and prediction: a number, or ``"free"`` (the
        cores other processes leave free, :func:`free_cores`; results may then differ in the
        last digits between machines and loads). The default is 1 (see the module
        docstring). None leaves the setting unchanged.
    """
    if n_threads is not None:
        _config()["n_threads"] = _check_threads(n_threads)


@contextlib.contextmanager
def config_context(*, n_threads=None):
    """Run the block with a temporary configuration (:func:`set_config`'s parameters).

    Examples
    --------
    >>> import sklearn_cberl
    >>> with sklearn_cberl.config_context(n_threads=2):
    ...     sklearn_cberl.get_config()["n_threads"]
    2
    """
    old = get_config()
    set_config(n_threads=n_threads)
    try:
        yield get_config()
    finally:
        _config().update(old)


def free_cores() -> int:
    """Cores this process may use that other processes are not already busy on.

    The cores of the process's CPU affinity minus the 1-minute load average (rounded), at
    least 1: on a 2-core machine with two other busy processes this is 1.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def resolve_threads(n=None) -> int:
    """The number of threads ``n`` stands for (None: the configured ``n_threads``)."""
    n = _check_threads(get_config()["n_threads"] if n is None else n)
    return free_cores() if n == "free" else n


@contextlib.contextmanager
def torch_threads(n=None):
    """Run the block with ``n`` torch intra-op threads, then restore the previous number.

    Parameters
    ----------
    n : int, "free" or None, default=None
        None: the configured ``n_threads`` (:func:`set_config`).

    Examples
    --------
    >>> from sklearn_cberl import torch_threads
    >>> with torch_threads(1):
    ...     pass  # fit / predict here
    """
    n = resolve_threads(n)
    import torch

    previous = torch.get_num_threads()
    if previous != n:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def uses_torch_threads(method):
    """Decorate an estimator method that runs torch: it runs with the configured threads
    (:func:`torch_threads`) and leaves torch's global setting as it found it."""

    @functools.wraps(method)
    def run(*args, **kwargs):
        with torch_threads():
            return method(*args, **kwargs)

    return run
