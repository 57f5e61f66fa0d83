"""Torch thread count: what a machine shared with other busy processes can take.

Kept free of a module-level torch import: the ``cberl`` command sizes torch's thread pool
before torch loads (``OMP_NUM_THREADS``), so that ``--help`` and file errors stay fast.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["free_cores", "torch_threads"]


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


@contextlib.contextmanager
def torch_threads(n="auto"):
    """Run the block with ``n`` torch intra-op threads, then restore the previous number.

    torch's default is one thread per core, whatever else runs on the machine: with other
    busy processes the threads spin against each other (the 2-core demo fit took 157 s next
    to three busy processes instead of 13 s). ``"auto"`` uses :func:`free_cores`.

    Parameters
    ----------
    n : int or "auto", default="auto"

    Examples
    --------
    >>> from sklearn_cberl import torch_threads
    >>> with torch_threads(1):
    ...     pass  # fit / predict here
    """
    if n == "auto" or n is None:
        n = free_cores()
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r}: expected a positive number of threads or 'auto'.")
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)
