"""Shared pieces of the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

__all__ = [
    "CACHE",
    "PeakRSS",
    "RESULTS",
    "machine",
    "provenance",
    "provenance_lines",
    "run_id",
    "run_ids",
    "write_results",
]

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


def provenance(argv=None) -> dict:
    """What produced a result row: the command, the commit and the date.

    ``commit`` is the checked-out commit, suffixed ``+dirty`` when tracked files differ from
    it (the numbers then come from code no commit holds).
    """
    root = Path(__file__).resolve().parents[1]
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve()
    try:
        script = script.relative_to(root)
    except ValueError:
        pass
    command = "python " + " ".join(shlex.quote(str(a)) for a in [script, *argv[1:]])

    def git(*args):
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("rev-parse", "--short=10", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    date = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    return {"command": command, "commit": commit, "date": date}


def run_ids(rows) -> dict:
    """Each distinct provenance among ``rows`` -> its run number (1, 2, ... by date)."""
    seen = {}
    for row in sorted(rows, key=lambda r: r.get("provenance", {}).get("date", "")):
        key = json.dumps(row.get("provenance", {}), sort_keys=True)
        seen.setdefault(key, len(seen) + 1)
    return seen


def run_id(row, ids) -> int:
    return ids[json.dumps(row.get("provenance", {}), sort_keys=True)]


def provenance_lines(rows, label=None) -> list[str]:
    """Markdown lines naming every run the rows come from, with the rows each produced
    (``label(row)`` names a row); rows without a recorded provenance predate it and are
    listed as such."""
    ids = run_ids(rows)
    lines = ["Produced by:", ""]
    for key, number in ids.items():
        prov = json.loads(key)
        what = ""
        if label is not None:
            names = dict.fromkeys(label(r) for r in rows if run_id(r, ids) == number)
            what = f" ({', '.join(map(str, names))})"
        if not prov:
            lines.append(f"* run {number}{what}: from before runs recorded their command")
            continue
        lines.append(
            f"* run {number}{what}: `{prov['command']}` at commit `{prov['commit']}`, "
            f"{prov['date']}"
        )
    return lines


def write_results(name: str, quick: bool, payload: dict, markdown: str) -> None:
    """Write ``results/<name>[_quick].json`` and ``.md`` (quick runs are not committed) and
    print the markdown.

    Every row of ``payload["runs"]`` / ``payload["rows"]`` without a provenance gets this
    run's (command, commit, date), and so does ``payload["meta"]``.
    """
    prov = provenance()
    for key in ("runs", "rows"):
        for row in payload.get(key, []):
            if isinstance(row, dict):
                row.setdefault("provenance", prov)
    payload.setdefault("meta", {}).setdefault("provenance", prov)
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
