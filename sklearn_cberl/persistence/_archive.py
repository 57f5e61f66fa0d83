"""The container of a :func:`~sklearn_cberl.persistence.save` file, read without ``torch.load``.

A save file is what :func:`torch.save` writes: a zip archive of uncompressed members, one
pickle (``data.pkl``) holding the payload dict, and one raw record per tensor
(``data/<key>``). ``torch.load(weights_only=True)`` runs no pickled code, but it trusts the
archive: it never verifies the members' CRCs (a flipped byte in a weight loads silently), and
the byte counts the pickle claims for each tensor are not compared with the records.

:func:`read_archive` therefore reads the file with Python's :mod:`zipfile` and a restricted
unpickler, checking every claim against the file before anything is allocated:

* the archive: uncompressed members only, none larger than the file, all of them together no
  larger than the file, no duplicate names, every member's CRC-32 verified by reading it;
* the pickle: parsed first without running it, so that no length or memo index it claims
  makes the unpickler allocate; then only the names ``torch.save`` uses for tensors are
  resolvable, and they resolve
  to inert claims (no torch or user code runs); a tensor claim must name an existing record
  and an allowed dtype (:data:`TENSOR_DTYPES`), and its byte count, shape and strides must
  describe that record exactly (contiguous, from offset 0, each record used once);
* :func:`materialize` turns a claim into a tensor only after the record's SHA-256 digest
  (recorded by :func:`tensor_digest` at save time) matched.

The result holds at most one copy of each record, so reading allocates about the file's
size plus the payload's JSON text.
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
import pickletools
import re
import sys
import zipfile
from collections import OrderedDict

import torch

from ._torch_state import _InvalidFile

#: Tensor dtypes a file may hold (the numeric kinds the estimators use), by the name of the
#: storage class ``torch.save`` writes for them.
TENSOR_DTYPES = {
    "BoolStorage": torch.bool,
    "ByteStorage": torch.uint8,
    "CharStorage": torch.int8,
    "ShortStorage": torch.int16,
    "IntStorage": torch.int32,
    "LongStorage": torch.int64,
    "HalfStorage": torch.float16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
}
#: Most dimensions a stored tensor may claim.
MAX_DIMS = 32
_MAX_MEMBERS = 100_000
_RECORD = re.compile(r"data/\w+")


class _Damaged(_InvalidFile):
    """The archive does not hold what ``save`` wrote (truncated, corrupted, or forged)."""


def tensor_digest(dtype: torch.dtype, shape, data) -> str:
    """SHA-256 of a tensor's dtype, shape and raw (little-endian, contiguous) bytes."""
    digest = hashlib.sha256(f"{dtype}{tuple(int(n) for n in shape)}".encode())
    digest.update(data)
    return digest.hexdigest()


def digest_of(tensor: torch.Tensor) -> str:
    """:func:`tensor_digest` of a contiguous CPU tensor (what ``save`` stores)."""
    raw = tensor.reshape(-1).view(torch.uint8) if tensor.numel() else torch.empty(0)
    return tensor_digest(tensor.dtype, tensor.shape, raw.numpy().tobytes())


# --------------------------------------------------------------------------- archive
def read_archive(path) -> dict:
    """The payload of a save file, its tensors as unchecked claims (see :func:`materialize`).

    Raises
    ------
    _InvalidFile
        For an archive that is not what ``save`` writes, damaged members (CRC), or a pickle
        that refers to anything but the payload's plain values and tensors.
    """
    with open(path, "rb") as handle:
        size = handle.seek(0, io.SEEK_END)
        handle.seek(0)
        try:
            archive = zipfile.ZipFile(handle)
        except Exception as exc:  # BadZipFile, but a damaged directory can raise others
            raise _Damaged(
                "it is not a zip archive as sklearn_cberl.persistence.save writes (truncated, "
                "damaged, or another kind of file)."
            ) from exc
        with archive:
            records = _read_members(archive, size)
    pickled = records.pop("data.pkl", None)
    if pickled is None:
        raise _Damaged("the archive holds no data.pkl record.")
    order = records.pop("byteorder", None)
    if order is not None and bytes(order) != sys.byteorder.encode():
        raise _Damaged(
            f"it was written in {bytes(order)[:10]!r} byte order; this machine's is "
            f"{sys.byteorder}."
        )
    pickled = bytes(pickled)
    _check_pickle(pickled)
    unpickler = _Unpickler(pickled, records)
    del pickled
    try:
        return unpickler.load()
    except _InvalidFile:
        raise
    except Exception as exc:  # a malformed pickle of any kind
        raise _Damaged(f"its data.pkl record is malformed ({type(exc).__name__}: {exc}).") from exc


def _read_members(archive: zipfile.ZipFile, size: int) -> dict:
    """Name (without the archive's top folder) -> bytes of every member, CRCs verified."""
    infos = archive.infolist()
    if not infos or len(infos) > _MAX_MEMBERS:
        raise _Damaged(f"its archive has {len(infos)} members.")
    names = [info.filename for info in infos]
    prefix = names[0].split("/", 1)[0] + "/"
    if len(set(names)) != len(names) or not all(n.startswith(prefix) for n in names):
        raise _Damaged("its archive has duplicate or stray member names.")
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise _Damaged(f"its member {info.filename!r} is compressed or encrypted.")
        if info.compress_size != info.file_size or info.file_size > size:
            raise _Damaged(f"its member {info.filename!r} claims more bytes than the file has.")
        total += info.file_size
    if total > size:
        raise _Damaged("its members claim more bytes than the file has.")
    records = {}
    for info in infos:
        name = info.filename[len(prefix) :]
        buffer = bytearray(info.file_size)  # the claim is bounded by the file (checked above)
        try:
            with archive.open(info) as member:
                view, filled = memoryview(buffer), 0
                while filled < len(buffer):
                    chunk = member.read(min(1 << 20, len(buffer) - filled))
                    if not chunk:
                        break
                    view[filled : filled + len(chunk)] = chunk
                    filled += len(chunk)
                if filled != len(buffer) or member.read(1):
                    raise _Damaged(f"its member {info.filename!r} is truncated.")
        except _InvalidFile:
            raise
        except Exception as exc:  # bad CRC, bad local header, unsupported flags, ...
            raise _Damaged(f"its member {info.filename!r} is damaged ({exc}).") from exc
        if name == "data.pkl" or name == "byteorder" or _RECORD.fullmatch(name):
            records[name] = buffer
    return records


# --------------------------------------------------------------------------- pickle
_MEMO_PUTS = {"PUT", "BINPUT", "LONG_BINPUT"}


def _check_pickle(data: bytes) -> None:
    """Parse the pickle without running it (:func:`pickletools.genops`, pure Python): every
    length it claims must lie within the data, and every memo index must be the next one.

    Why: the C unpickler allocates before it reads. A memo index (``LONG_BINPUT``) makes it
    grow its memo table to twice that index - 11 bytes claiming index 2**31 would take 32
    GiB - and a counted ``BINBYTES8`` reserves its claimed length first.
    """
    puts = 0
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in _MEMO_PUTS:
                if type(arg) is not int or not 0 <= arg <= puts:
                    raise _Damaged(f"its pickle claims memo index {arg!r} after {puts} entries.")
                puts += 1
            elif opcode.name == "MEMOIZE":
                puts += 1
    except _InvalidFile:
        raise
    except Exception as exc:  # truncated, an unknown opcode, a length beyond the data
        raise _Damaged(f"its data.pkl record is malformed ({exc}).") from exc


class _StorageType(tuple):
    """What the pickle's storage class names resolve to: the dtype, nothing callable."""

    __slots__ = ()


class _Storage(tuple):
    """A record as claimed by the pickle: (key, dtype, bytes)."""

    __slots__ = ()


class Claim(tuple):
    """A tensor as claimed by the pickle: the arguments of ``torch._utils._rebuild_tensor_v2``
    (immutable: the pickle cannot alter it after it is made)."""

    __slots__ = ()


def _rebuild_tensor(*args):
    return Claim(args)


def _ordered_dict(*args):
    if args:
        raise _Damaged("its pickle builds an OrderedDict from data, which save never writes.")
    return OrderedDict()


class _Unpickler(pickle.Unpickler):
    """Resolves only the names ``torch.save`` uses for tensors, to inert stand-ins."""

    def __init__(self, data: bytes, records: dict):
        super().__init__(io.BytesIO(data))
        self.records = records

    def find_class(self, module, name):
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return _ordered_dict
        if module == "torch" and name in TENSOR_DTYPES:
            return _StorageType((TENSOR_DTYPES[name],))
        raise _InvalidFile(
            f"its pickle refers to {module}.{name}, which a save file never holds (it was not "
            "imported or run)."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Damaged("its pickle holds a malformed storage reference.")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, _StorageType) or not isinstance(key, str):
            raise _Damaged("its pickle holds a malformed storage reference.")
        data = self.records.get(f"data/{key}")
        if data is None:
            raise _Damaged(f"its pickle refers to a tensor record {key!r} it does not hold.")
        dtype = kind[0]
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if type(numel) is not int or numel * itemsize != len(data):
            raise _Damaged(
                f"its tensor record {key!r} holds {len(data)} bytes, but the pickle claims "
                f"{numel!r} elements of {dtype}."
            )
        return _Storage((key, dtype, data))


# --------------------------------------------------------------------------- tensors
def materialize(claim, digest, used: set) -> torch.Tensor:
    """The tensor a :class:`Claim` describes, after checking it against its record and the
    record against ``digest``; ``used`` collects the record keys (each may back one tensor)."""
    if not isinstance(claim, Claim) or len(claim) not in (6, 7):
        raise _InvalidFile("its tensor table holds something other than tensors.")
    storage, offset, shape, stride, requires_grad, hooks, *metadata = claim
    if not isinstance(storage, _Storage):
        raise _Damaged("a tensor of the file has a malformed storage.")
    key, dtype, data = storage
    if key in used:
        raise _Damaged(f"its tensor record {key!r} backs more than one tensor.")
    used.add(key)
    if not (
        isinstance(shape, tuple)
        and isinstance(stride, tuple)
        and len(shape) == len(stride) <= MAX_DIMS
        and all(type(n) is int and n >= 0 for n in (*shape, *stride, offset))
    ):
        raise _Damaged(f"the tensor of record {key!r} claims a malformed shape.")
    itemsize = torch.empty(0, dtype=dtype).element_size()
    if offset != 0 or math.prod(shape) * itemsize != len(data) or stride != _strides(shape):
        raise _Damaged(
            f"the tensor of record {key!r} claims shape {shape} (strides {stride}, offset "
            f"{offset}), which does not cover its {len(data)} bytes of {dtype} exactly."
        )
    plain = isinstance(requires_grad, bool) and hooks == OrderedDict()
    if not plain or metadata not in ([], [None]):
        raise _Damaged(f"the tensor of record {key!r} has unexpected attributes.")
    if not isinstance(digest, str) or tensor_digest(dtype, shape, data) != digest:
        raise _Damaged(
            f"the tensor of record {key!r} does not match the digest recorded when it was "
            "saved (the file was altered after saving)."
        )
    if not data:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(data, dtype=dtype).reshape(shape)  # shares the record's memory


def _strides(shape: tuple) -> tuple:
    """The strides of a contiguous tensor of ``shape`` (as torch computes them)."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))
