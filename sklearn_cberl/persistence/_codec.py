"""The JSON codec of :mod:`sklearn_cberl.persistence`: allowlisted names, values, estimators.

Estimators are written as their parameters (``get_params``) and fitted attributes (the
rest of their pickle state); arrays and tensors go to the file's tensor table; torch modules
and the classifier's skorch net are handled by :mod:`._torch_state`.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch

from ._archive import MAX_DIMS, TENSOR_DTYPES
from ._torch_state import (
    MODULE_REF,
    ModuleTable,
    _InvalidFile,
    decode_modules,
    decode_net,
    encode_net,
    resolve_ref,
)

#: Classes (and callables) a :func:`save` file may name; :func:`load` instantiates nothing else.
SAFE_CLASSES = (
    "sklearn_cberl.over_sampling.EmoGANSampler",
    "sklearn_cberl.over_sampling.ConversationSampler",
    "sklearn_cberl.fusion.DJVAE",
    "sklearn_cberl.classifier.CBERLClassifier",
    "sklearn_cberl.strategies.AddPerClass",
    "sklearn_cberl.strategies.UpToRatio",
    "sklearn_cberl.pipeline.CBERLPipeline",
    "imblearn.pipeline.Pipeline",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing.StandardScaler",
    "imblearn.over_sampling.RandomOverSampler",
    "imblearn.over_sampling.SMOTE",
    "imblearn.over_sampling.SMOTEN",
    "imblearn.over_sampling.SMOTENC",
    "imblearn.over_sampling.BorderlineSMOTE",
    "imblearn.over_sampling.SVMSMOTE",
    "imblearn.over_sampling.KMeansSMOTE",
    "imblearn.over_sampling.ADASYN",
)
#: Callables a file may *refer to* (never called by the decoder): the skorch net's data
#: loader class and collate function.
SAFE_CALLABLES = (
    "sklearn_cberl.nn.data.collate_dialogues",
    "torch.utils.data.dataloader.DataLoader",
)

#: The private attribute names an estimator may carry in a file (dunder names never). The one
#: place to change when the estimators drop private state: ``_columns`` and ``_seed`` are
#: DJVAE's, ``_sklearn_output_config`` is scikit-learn's ``set_output``.
PRIVATE_ATTRS = frozenset({"_columns", "_seed", "_sklearn_output_config"})
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
_TENSOR_DTYPES = frozenset(TENSOR_DTYPES.values())
#: Text dtypes (numpy unicode, native byte order) of scalars and text arrays.
SCALAR_TEXT = re.compile(r"[<=|]U\d{1,9}")
#: Sampling-strategy callables a file may hold, with their ``__init__`` arguments.
_STRATEGY_INIT = {
    "sklearn_cberl.strategies.AddPerClass": ("additions", "reference_size"),
    "sklearn_cberl.strategies.UpToRatio": ("ratio",),
}
#: The estimator whose fitted attribute ``net_`` is a skorch net (see ``decode_net``).
_NET_OWNER = "sklearn_cberl.classifier.CBERLClassifier"
#: ``ConversationSampler.sampler_`` (the fitted wrapped sampler: nearest-neighbour trees,
#: unused after ``fit_resample``) is not stored; load gives an unfitted clone.
_SAMPLER_OWNER = "sklearn_cberl.over_sampling.ConversationSampler"


def _name(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def registry() -> dict:
    """Name -> class or callable for everything a file may name (imported explicitly)."""
    import imblearn.over_sampling as over
    import imblearn.pipeline
    import sklearn.pipeline
    from sklearn.preprocessing import StandardScaler

    from ..classifier import CBERLClassifier
    from ..fusion import DJVAE
    from ..nn.data import collate_dialogues
    from ..over_sampling import ConversationSampler, EmoGANSampler
    from ..pipeline import CBERLPipeline
    from ..strategies import AddPerClass, UpToRatio

    public = [EmoGANSampler, ConversationSampler, DJVAE, CBERLClassifier, AddPerClass]
    public += [UpToRatio, CBERLPipeline]
    public += [imblearn.pipeline.Pipeline, sklearn.pipeline.Pipeline, StandardScaler]
    public += [getattr(over, name.rsplit(".", 1)[1]) for name in SAFE_CLASSES[len(public) :]]
    names = dict(zip(SAFE_CLASSES, public, strict=True))
    for obj in (collate_dialogues, torch.utils.data.DataLoader):
        names[_name(obj)] = obj
    return names


class Encoder:
    """Python values -> JSON-able structure; arrays and tensors go to ``self.tensors``."""

    def __init__(self, names):
        self.names = {id(obj): name for name, obj in names.items()}
        self.tensors: dict[str, torch.Tensor] = {}
        self.storages: set[int] = set()  # data pointers of the stored tensors' storages
        self.refs: dict[int, dict] = {}  # the current estimator's modules (ModuleTable)

    def tensor(self, tensor: torch.Tensor, where: str = "a tensor") -> str:
        if tensor.dtype not in _TENSOR_DTYPES:  # load would refuse it: say so now
            raise TypeError(
                f"{where} has dtype {tensor.dtype}; sklearn_cberl.persistence.save stores "
                f"tensors of {sorted(map(str, _TENSOR_DTYPES))}."
            )
        tensor = tensor.detach().cpu()
        storage = tensor.untyped_storage()
        if (
            storage.nbytes() != tensor.numel() * tensor.element_size()  # a view
            or not tensor.is_contiguous()
            or (storage.data_ptr() and storage.data_ptr() in self.storages)  # shared
        ):
            # one record per tensor, exactly its bytes: what load accepts
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        self.storages.add(tensor.untyped_storage().data_ptr())
        key = f"t{len(self.tensors)}"
        self.tensors[key] = tensor
        return key

    def state_dict(self, module: torch.nn.Module) -> dict:
        return {name: self.tensor(t) for name, t in module.state_dict().items()}

    def __call__(self, value, where: str):
        if value is None or isinstance(value, (bool, str)) or type(value) in (int, float):
            return value
        if isinstance(value, np.generic):
            dtype = value.dtype.newbyteorder("=").str
            if dtype not in ARRAY_DTYPES and not SCALAR_TEXT.fullmatch(dtype):
                raise TypeError(f"{where}: numpy scalars of dtype {dtype} cannot be stored.")
            return {"__np__": dtype, "value": self(value.item(), where)}
        if isinstance(value, np.ndarray):
            return self.array(value, where)
        if isinstance(value, torch.Tensor):
            return {"__tensor__": self.tensor(value, where)}
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
        if isinstance(value, slice):
            return {"__slice__": [self(v, where) for v in (value.start, value.stop, value.step)]}
        if isinstance(value, tuple):
            return {"__tuple__": [self(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):  # pairs: keys of any type (class labels) survive
            pairs = [[self(k, where), self(v, f"{where}[{k!r}]")] for k, v in value.items()]
            return {"__dict__": pairs}
        if isinstance(value, np.random.RandomState):
            return {"__random_state__": self(value.get_state(), where)}
        if isinstance(value, torch.nn.Module) and id(value) in self.refs:
            return dict(self.refs[id(value)])
        if id(value) in self.names:
            return {"__callable__": self.names[id(value)]}
        if id(type(value)) in self.names:
            return self.estimator(value, where)
        raise TypeError(
            f"{where} is a {type(value).__module__}.{type(value).__qualname__}, which "
            "sklearn_cberl.persistence.save cannot store safely: use pickle/joblib for such "
            f"objects (trusted files only). Storable classes: {list(SAFE_CLASSES)}."
        )

    def array(self, value: np.ndarray, where: str):
        shape = list(value.shape)
        dtype = value.dtype.newbyteorder("=") if value.dtype.kind in "biufU" else value.dtype
        if dtype.str in ARRAY_DTYPES:
            data = value.astype(dtype, copy=False)
            if dtype.kind == "u" and dtype.itemsize > 1:
                # torch has no general uint16/32/64 support: store as int64
                if value.size and value.max() > np.iinfo(np.int64).max:
                    raise TypeError(f"{where}: uint64 values beyond int64 cannot be stored.")
                data = value.astype(np.int64)
            key = self.tensor(torch.from_numpy(np.ascontiguousarray(data)), where)
            return {"__ndarray__": key, "dtype": dtype.str, "shape": shape}
        if dtype.kind in "OU":
            items = [self(v, f"{where}[{i}]") for i, v in enumerate(value.ravel().tolist())]
            return {"__objects__": items, "dtype": dtype.str, "shape": shape}
        raise TypeError(f"{where}: arrays of dtype {value.dtype} cannot be stored.")

    def estimator(self, est, where: str):
        name = self.names[id(type(est))]
        if name in _STRATEGY_INIT:  # sampling-strategy callables: rebuilt from their init
            init = {key: getattr(est, key) for key in _STRATEGY_INIT[name]}
            return {"__object__": name, "init": self(init, where)}
        params = est.get_params(deep=False)
        # The pickle state, not vars(): the estimator's own rules put its torch state (and the
        # device recorded with it) on the CPU; scikit-learn's version tag is pickle-only.
        state = est.__getstate__()
        attrs = {k: v for k, v in state.items() if k not in params and k != "_sklearn_version"}
        if name == _SAMPLER_OWNER:
            attrs.pop("sampler_", None)
        torch_part = None
        if name == _NET_OWNER and attrs.get("net_") is not None:
            torch_part = encode_net(attrs.pop("net_"), self, where)
        table = ModuleTable(attrs, self.tensor, where)
        if table.entries:
            torch_part = table.entries
        outer, self.refs = self.refs, {}  # parameters never hold modules
        try:
            encoded = self(params, f"{where}.{type(est).__name__}(params)")
            self.refs = table.refs
            attrs = self(attrs, where)
        finally:
            self.refs = outer
        return {"__estimator__": name, "params": encoded, "attrs": attrs, "torch": torch_part}


class Decoder:
    """JSON document + tensors of a file -> Python values; builds allowlisted classes only.

    Every claim of the document is checked before it is acted on: class names against the
    allow lists, dtypes against :data:`ARRAY_DTYPES` / :data:`SCALAR_KINDS`, shapes against the
    stored tensor's element count or the number of items, text arrays against
    ``text_budget`` bytes. With ``dry=True`` torch modules are only built on the ``meta``
    device (no memory) and the classifier's net is only size-checked: a dry pass checks a
    whole document without building anything real.
    """

    def __init__(self, names, tensors, *, text_budget: int, dry: bool = False):
        self.names = names
        self.tensors = tensors
        self.text_budget = text_budget
        self.dry = dry
        self.modules: dict = {}  # the current estimator's rebuilt modules

    def tensor(self, key) -> torch.Tensor:
        if not isinstance(key, str) or key not in self.tensors:
            raise _InvalidFile(f"The file refers to a tensor {key!r} it does not hold.")
        return self.tensors[key]

    def state_dict(self, keys) -> dict:
        if not isinstance(keys, dict):
            raise _InvalidFile("A state dict of the file is malformed.")
        return {name: self.tensor(key) for name, key in keys.items()}

    def lookup(self, name, allowed=SAFE_CLASSES):
        if not isinstance(name, str) or name not in allowed:
            raise _InvalidFile(
                f"The file names {name!r}, which is not among the classes "
                "sklearn_cberl.persistence.load may create."
            )
        return self.names[name]

    def __call__(self, value):
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__np__" in value:
            return self.scalar(value["__np__"], value.get("value"))
        if "__ndarray__" in value:
            return self.ndarray(value)
        if "__objects__" in value:
            return self.objects(value)
        if "__tensor__" in value:
            return self.tensor(value["__tensor__"])
        if "__device__" in value:
            return torch.device(str(value["__device__"]))
        if "__slice__" in value:
            return slice(*self(value["__slice__"]))
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__dict__" in value:
            pairs = value["__dict__"]
            if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 for p in pairs
            ):
                raise _InvalidFile("A dict entry of the file is malformed.")
            return {_hashable(self(k)): self(v) for k, v in pairs}
        if "__random_state__" in value:
            state = np.random.RandomState()
            state.set_state(self(value["__random_state__"]))
            return state
        if MODULE_REF in value:
            return resolve_ref(value, self.modules)
        if "__callable__" in value:
            return self.lookup(value["__callable__"], SAFE_CALLABLES)
        if "__object__" in value:
            name = value["__object__"]
            cls = self.lookup(name, tuple(_STRATEGY_INIT))
            init = self(value.get("init"))
            if not isinstance(init, dict) or set(init) - set(_STRATEGY_INIT[name]):
                raise _InvalidFile(f"The entry of {name!r} is malformed.")
            return cls(**init)
        if "__estimator__" in value:
            return self.estimator(value)
        raise _InvalidFile(f"Unknown entry in the file: keys {sorted(value)}.")

    # ------------------------------------------------------------------ arrays and scalars
    def scalar(self, dtype, item):
        kind = ARRAY_DTYPES.get(dtype)
        if kind is not None and type(item) in (bool, int, float):
            return np.dtype(dtype).type(item)
        if isinstance(dtype, str) and SCALAR_TEXT.fullmatch(dtype) and isinstance(item, str):
            return np.str_(item)
        raise _InvalidFile(
            f"A scalar of the file claims dtype {dtype!r} (value {type(item).__name__}); "
            f"allowed: {sorted(ARRAY_DTYPES)} and text."
        )

    def ndarray(self, value):
        dtype, stored = value.get("dtype"), self.tensor(value["__ndarray__"])
        if dtype not in ARRAY_DTYPES:
            raise _InvalidFile(
                f"An array of the file claims dtype {dtype!r}; allowed: {sorted(ARRAY_DTYPES)}."
            )
        shape = _shape(value.get("shape"), stored.numel())
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

    def objects(self, value):
        dtype, items = value.get("dtype"), value["__objects__"]
        if not isinstance(items, list):
            raise _InvalidFile("An object array of the file is malformed.")
        shape = _shape(value.get("shape"), len(items))
        if dtype == "|O":
            out = np.empty(len(items), dtype=object)
            for i, item in enumerate(items):  # element-wise: items may be tuples
                out[i] = self(item)
            return out.reshape(shape)
        if not (isinstance(dtype, str) and SCALAR_TEXT.fullmatch(dtype)):
            raise _InvalidFile(
                f"An object array of the file claims dtype {dtype!r}; allowed: '|O' and text."
            )
        if not all(isinstance(item, str) for item in items):
            raise _InvalidFile(f"A text array of the file ({dtype}) holds non-text items.")
        nbytes = np.dtype(dtype).itemsize * len(items)
        if nbytes > self.text_budget:
            raise _InvalidFile(
                f"A text array of the file claims {nbytes} bytes ({len(items)} x {dtype}), out "
                "of proportion to the file."
            )
        return np.array(items, dtype=dtype).reshape(shape)

    # ------------------------------------------------------------------ estimators
    def estimator(self, value):
        name = value["__estimator__"]
        cls = self.lookup(name)
        for part in ("params", "attrs"):  # names first: a forbidden one is refused as such
            _check_names(name, value.get(part))
        outer, self.modules = self.modules, {}
        try:
            params = self(value.get("params"))  # never modules: decoded with an empty table
            torch_part = value.get("torch")
            if name != _NET_OWNER:
                self.modules = decode_modules(torch_part, self.tensors, dry=self.dry)
            attrs = self(value.get("attrs"))
        finally:
            self.modules = outer
        if not isinstance(params, dict) or not isinstance(attrs, dict):
            raise _InvalidFile(f"The entry of {name!r} is malformed.")
        est = cls(**params)
        for key, attr in attrs.items():
            setattr(est, key, attr)
        if name == _NET_OWNER and torch_part is not None:
            est.net_ = decode_net(torch_part, self, dry=self.dry)
        if name == _SAMPLER_OWNER and est.sampler is not None and hasattr(est, "sample_indices_"):
            from sklearn.base import clone

            est.sampler_ = clone(est.sampler)
        return est


def _check_names(name: str, entry) -> None:
    """The parameter or attribute names of an estimator entry (``{"__dict__": pairs}``)."""
    if not (isinstance(entry, dict) and isinstance(entry.get("__dict__"), list)):
        raise _InvalidFile(f"The entry of {name!r} is malformed.")
    for pair in entry["__dict__"]:
        key = pair[0] if isinstance(pair, list) and len(pair) == 2 else None
        # Dunder names could swap the object's class or dict; private names other than the
        # few the estimators use are never written by save().
        if not isinstance(key, str) or (key.startswith("_") and key not in PRIVATE_ATTRS):
            raise _InvalidFile(f"The entry of {name!r} has a forbidden attribute {key!r}.")


def _shape(shape, count: int) -> tuple:
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


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key
