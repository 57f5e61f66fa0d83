"""Shared pieces of the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from pathlib import Path

import psutil

__all__ = ["CACHE", "PeakRSS", "RESULTS", "machine", "write_results"]

#: Where every benchmark writes its JSON / Markdown results.
RESULTS = Path(__file__).resolve().parent / "results"
#: Embeddings and prepared data sets shared between runs (not committed).
CACHE = RESULTS / ".cache"


def machine() -> dict:
    """Where a benchmark ran: platform and cores, torch build, OpenMP wait policy."""
    import torch

    return {
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
    }


def write_results(name: str, quick: bool, payload: dict, markdown: str) -> None:
    """Write ``results/<name>[_quick].json`` and ``.md`` (quick runs are not committed) and
    print the markdown."""
    stem = RESULTS / f"{name}{'_quick' if quick else ''}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
    stem.with_suffix(".md").write_text(markdown)
    print(markdown)


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
