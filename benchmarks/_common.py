"""Shared pieces of the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import threading
import time

import psutil

__all__ = ["PeakRSS"]


class PeakRSS:
    """Context manager: peak resident-set-size increase (MiB) while the block runs.

    ``tracemalloc`` misses torch's C++ allocations, and ``ru_maxrss`` is a process-lifetime
    maximum, so a background thread samples the RSS instead (5 ms period).
    """

    def __init__(self, period=0.005):
        self.period = period
        self.process = psutil.Process()

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.period)

    def __enter__(self):
        self.base = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        self.mib = (self.peak - self.base) / 2**20
