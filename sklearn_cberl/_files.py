"""Writing files safely: atomic replacement and file identity (standard library only).

* :func:`atomic_write` writes to a temporary file in the target's directory and renames it
  over the target with :func:`os.replace`, so a write that fails midway (disk full, an
  exception in the writer, Ctrl-C) leaves the previous file intact and no temporary file
  behind. The rename also means a hard link to the target keeps its old content: writing
  never reaches another name of the same file.
* :func:`same_file` compares files by identity (device and inode), which sees hard links
  and symbolic links that comparing resolved path strings misses.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from contextlib import suppress
from pathlib import Path

__all__ = ["atomic_write", "same_file"]


def same_file(a, b) -> bool:
    """Whether paths ``a`` and ``b`` name the same existing file (hard and symbolic links
    included); False when either does not exist."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # missing, or unreadable: then it cannot be overwritten through `a` either
        return False


def atomic_write(path, write, *, text=False, encoding="utf-8"):
    """Create or replace ``path`` with what ``write(handle)`` writes, all or nothing.

    Parameters
    ----------
    path : str or path-like
        The target. A symbolic link is followed (the file it points to is replaced and the
        link kept); a hard link is replaced by a new file (its other names keep the old
        content).
    write : callable
        Called with an open file handle (binary, or text when ``text=True``).
    text : bool, default=False
    encoding : str, default="utf-8"
        Of the text handle.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileNotFoundError
        When the target's directory does not exist (naming the directory).
    IsADirectoryError
        When ``path`` is a directory.
    Exception
        Whatever ``write`` raises; the previous file is then unchanged and the temporary file
        removed.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    directory = target.parent
    if not directory.is_dir():
        raise FileNotFoundError(
            errno.ENOENT, f"cannot write {path}: no such directory {directory}", str(directory)
        )
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory, not a file", str(path))
    temp, fd = _create_temp(directory, target.name)
    try:
        with suppress(FileNotFoundError):  # keep the permissions of a file being replaced
            os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
        options = {"mode": "w", "encoding": encoding, "newline": ""} if text else {"mode": "wb"}
        with os.fdopen(fd, **options) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())  # the data is on disk before the name points to it
        os.replace(temp, target)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise
    _sync_directory(directory)
    return path


def _create_temp(directory: Path, name: str):
    """A new, exclusively created temporary file next to the target (the umask applies, as
    for any new file; tempfile's would be private to the user)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temp = directory / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return temp, os.open(temp, flags, 0o666)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(directory))


def _sync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); best effort, as not every file system allows it."""
    if os.name != "posix":
        return
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
