"""Arrays and scalars in a :func:`~sklearn_cberl.persistence.save` file: the dtype allow lists
and the checks of each dtype and shape a file claims, made before anything is allocated.

A numeric array is a tensor of the file's tensor table plus its numpy dtype and shape; a
text or object array is a JSON list of items plus its dtype and shape; a scalar is a dtype
and a JSON value. Each claim is checked against an allow list and against what the file
actually stores (the tensor's dtype and element count, the number of items), and a text
array against a byte budget proportional to the file's JSON document.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from ._archive import MAX_DIMS
from ._torch_state import _InvalidFile

#: numpy dtypes a numeric array or scalar of a file may claim -> the dtype of the tensor that
#: stores it (torch has no general uint16/32/64: those are stored as int64).
ARRAY_DTYPES = {
    np.dtype(code).str: torch.int64 if code in ("u2", "u4", "u8") else dtype
    for code, dtype in [
        ("?", torch.bool), ("i1", torch.int8), ("i2", torch.int16), ("i4", torch.int32),
        ("i8", torch.int64), ("u1", torch.uint8), ("u2", None), ("u4", None), ("u8", None),
        ("f2", torch.float16), ("f4", torch.float32), ("f8", torch.float64),
    ]
}  # fmt: skip
#: The JSON value types a scalar of each numeric kind may have.
_JSON_TYPES = {"b": (bool,), "i": (int,), "u": (int,), "f": (int, float)}
#: Text dtypes (numpy unicode, native byte order) of scalars and text arrays.
SCALAR_TEXT = re.compile(r"[<=|]U\d{1,9}")


def decode_scalar(dtype, item):
    """A numpy scalar of an allowed dtype, whose JSON value has the matching type."""
    if isinstance(dtype, str) and dtype in ARRAY_DTYPES:
        kind = np.dtype(dtype).kind
        if type(item) in _JSON_TYPES[kind]:
            return np.dtype(dtype).type(item)
    elif isinstance(dtype, str) and SCALAR_TEXT.fullmatch(dtype) and isinstance(item, str):
        return np.str_(item)
    raise _InvalidFile(
        f"A scalar of the file claims dtype {dtype!r} (value {type(item).__name__}); "
        f"allowed: {sorted(ARRAY_DTYPES)} and text."
    )


def decode_array(value: dict, stored: torch.Tensor) -> np.ndarray:
    """A numeric array: an allowed dtype, the stored tensor's dtype, its element count."""
    dtype = value.get("dtype")
    if not isinstance(dtype, str) or dtype not in ARRAY_DTYPES:
        raise _InvalidFile(
            f"An array of the file claims dtype {dtype!r}; allowed: {sorted(ARRAY_DTYPES)}."
        )
    shape = check_shape(value.get("shape"), stored.numel())
    if stored.dtype != ARRAY_DTYPES[dtype]:
        raise _InvalidFile(
            f"An array of the file claims dtype {dtype!r} but is stored as {stored.dtype}."
        )
    data = stored.numpy()
    target = np.dtype(dtype)
    if target.kind == "u" and target.itemsize > 1 and data.size:
        if data.min() < 0 or data.max() > np.iinfo(target).max:
            raise _InvalidFile(f"An array of the file holds values outside {target}.")
    return data.astype(target, copy=False).reshape(shape)


def decode_objects(value: dict, decode, text_budget: int) -> np.ndarray:
    """An object array (items decoded by ``decode``) or a text array of at most
    ``text_budget`` bytes; either with as many items as its shape claims."""
    dtype, items = value.get("dtype"), value["__objects__"]
    if not isinstance(items, list):
        raise _InvalidFile("An object array of the file is malformed.")
    shape = check_shape(value.get("shape"), len(items))
    if dtype == "|O":
        out = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):  # element-wise: items may be tuples
            out[i] = decode(item)
        return out.reshape(shape)
    if not (isinstance(dtype, str) and SCALAR_TEXT.fullmatch(dtype)):
        raise _InvalidFile(
            f"An object array of the file claims dtype {dtype!r}; allowed: '|O' and text."
        )
    if not all(isinstance(item, str) for item in items):
        raise _InvalidFile(f"A text array of the file ({dtype}) holds non-text items.")
    nbytes = np.dtype(dtype).itemsize * len(items)
    if nbytes > text_budget:
        raise _InvalidFile(
            f"A text array of the file claims {nbytes} bytes ({len(items)} x {dtype}), out "
            "of proportion to the file."
        )
    return np.array(items, dtype=dtype).reshape(shape)


def check_shape(shape, count: int) -> tuple:
    """A shape claimed by the file, checked against the number of elements actually stored."""
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(type(n) is int and n >= 0 for n in shape)
        or math.prod(shape) != count
    ):
        raise _InvalidFile(
            f"An array of the file claims shape {str(shape)[:80]} for {count} stored elements."
        )
    return tuple(shape)
