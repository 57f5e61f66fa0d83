"""Progress output that reads well in a terminal and in a log file.

In a terminal: tqdm bars (one line redrawn in place). Redirected to a file or a pipe: plain
lines, about ten per loop, with no carriage returns or colour codes (tqdm's redraws and
skorch's coloured "best" values turned logs into unreadable streams of escape codes).
"""

from __future__ import annotations

import re
import sys
import time

from skorch.callbacks import PrintLog

__all__ = ["progress", "is_terminal", "PlainPrintLog"]

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


def progress(iterable, *, desc: str, verbose, total=None):
    """Wrap a loop: silent when ``verbose`` is falsy, a tqdm bar in a terminal, else plain
    lines on stderr."""
    if not verbose:
        return _Silent(iterable)
    if is_terminal():
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total)
    return _PlainProgress(iterable, desc, total)


class _Silent:
    def __init__(self, iterable):
        self.iterable = iterable

    def set_postfix(self, **values):
        pass

    def __iter__(self):
        return iter(self.iterable)


class PlainPrintLog(PrintLog):
    """skorch's epoch table without colour codes when stdout is not a terminal."""

    def format_row(self, row, key, color):
        value = super().format_row(row, key, color)
        if isinstance(value, str) and not is_terminal(sys.stdout):
            return _ANSI.sub("", value)
        return value
