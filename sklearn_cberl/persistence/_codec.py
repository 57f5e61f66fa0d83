"""The JSON codec of :mod:`sklearn_cberl.persistence`: allowlisted names, values, estimators.

Estimators are written as their parameters (``get_params``) and fitted attributes (the
rest of their pickle state); arrays and tensors go to the file's tensor table; torch modules
and the classifier's skorch net are handled by :mod:`._torch_state`.
"""

from __future__ import annotations

import numpy as np
import torch

from ._archive import TENSOR_DTYPES
from ._arrays import ARRAY_DTYPES, SCALAR_TEXT, decode_array, decode_objects, decode_scalar
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
    "sklearn_cberl.classifier._net.collate_dialogues",
    "torch.utils.data.dataloader.DataLoader",
)

#: The private attribute names an estimator may carry in a file (dunder names never). The one
#: place to change when an estimator needs private state: ``_sklearn_output_config`` is
#: scikit-learn's ``set_output``.
PRIVATE_ATTRS = frozenset({"_sklearn_output_config"})
_TENSOR_DTYPES = frozenset(TENSOR_DTYPES.values())
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
    from ..classifier._net import collate_dialogues
    from ..fusion import DJVAE
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
    allow lists, array and scalar dtypes and shapes by :mod:`._arrays` (against its allow
    lists, the stored tensor's element count or the number of items, and text arrays
    against ``text_budget`` bytes). With ``dry=True`` torch modules are only built on the ``meta``
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

    def scalar(self, dtype, item):
        return decode_scalar(dtype, item)

    def ndarray(self, value):
        return decode_array(value, self.tensor(value["__ndarray__"]))

    def objects(self, value):
        return decode_objects(value, self, self.text_budget)

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
        if not (isinstance(pair, list) and len(pair) == 2):
            raise _InvalidFile(f"The entry of {name!r} is malformed.")
        key = pair[0]
        # Dunder names could swap the object's class or dict; private names other than the
        # few the estimators use are never written by save().
        if not isinstance(key, str) or (key.startswith("_") and key not in PRIVATE_ATTRS):
            raise _InvalidFile(f"The entry of {name!r} has a forbidden attribute {key!r}.")


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key
