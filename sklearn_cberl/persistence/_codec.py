"""The JSON codec of :mod:`sklearn_cberl.persistence`: allowlisted names, values, estimators.

Estimators are written as their parameters (``get_params``) and fitted attributes (the
rest of their pickle state); arrays and tensors go to the file's tensor table; torch modules
and the classifier's skorch net are handled by :mod:`._torch_state`.
"""

from __future__ import annotations

import numpy as np
import torch

from ._torch_state import (
    MODULE_REF,
    ModuleTable,
    _InvalidFile,
    decode_modules,
    decode_net,
    encode_net,
    resolve_ref,
    upgrade_entry,
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

#: Class names of earlier releases -> their current name (files keep loading across moves).
RENAMED_CLASSES = {
    "sklearn_cberl.sampler.EmoGANSampler": "sklearn_cberl.over_sampling.EmoGANSampler",
    "sklearn_cberl.sampler.ConversationSampler": "sklearn_cberl.over_sampling.ConversationSampler",
    "sklearn_cberl.pipeline.AddPerClass": "sklearn_cberl.strategies.AddPerClass",
    "sklearn_cberl.pipeline.UpToRatio": "sklearn_cberl.strategies.UpToRatio",
    "sklearn_cberl.classifier.collate_dialogues": "sklearn_cberl.classifier._net.collate_dialogues",
}
#: Parameter names of version-1 files -> their current name, per class (CHANGELOG.md).
RENAMED_PARAMS = {
    "sklearn_cberl.fusion.DJVAE": {"n_epochs": "max_epochs", "hidden_sizes": "hidden_layer_sizes"},
    "sklearn_cberl.over_sampling.EmoGANSampler": {
        "n_epochs": "max_epochs",
        "classifier_epochs": "classifier_max_epochs",
    },
}

#: Private attribute names an estimator may carry in a file (dunder names never).
_PRIVATE_ATTRS = frozenset({"_columns", "_seed", "_sklearn_output_config"})
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
        self.refs: dict[int, dict] = {}  # the current estimator's modules (ModuleTable)

    def tensor(self, tensor: torch.Tensor) -> str:
        tensor = tensor.detach().cpu()
        if tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
            tensor = tensor.clone()  # a view: torch.save would write its whole storage
        key = f"t{len(self.tensors)}"
        self.tensors[key] = tensor.contiguous()
        return key

    def state_dict(self, module: torch.nn.Module) -> dict:
        return {name: self.tensor(t) for name, t in module.state_dict().items()}

    def __call__(self, value, where: str):
        if value is None or isinstance(value, (bool, str)) or type(value) in (int, float):
            return value
        if isinstance(value, np.generic):
            return {"__np__": value.dtype.str, "value": self(value.item(), where)}
        if isinstance(value, np.ndarray):
            return self.array(value, where)
        if isinstance(value, torch.Tensor):
            return {"__tensor__": self.tensor(value)}
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
        if value.dtype.kind in "biuf" and value.dtype.itemsize <= 8:
            data = value
            if value.dtype.kind == "u" and value.dtype.itemsize > 1:
                # torch has no general uint16/32/64 support: store as int64
                if value.size and value.max() > np.iinfo(np.int64).max:
                    raise TypeError(f"{where}: uint64 values beyond int64 cannot be stored.")
                data = value.astype(np.int64)
            key = self.tensor(torch.from_numpy(np.ascontiguousarray(data)))
            return {"__ndarray__": key, "dtype": value.dtype.str, "shape": shape}
        if value.dtype.kind in "OUS":
            items = [self(v, f"{where}[{i}]") for i, v in enumerate(value.ravel().tolist())]
            return {"__objects__": items, "dtype": value.dtype.str, "shape": shape}
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
    """JSON document + tensors of a file -> Python values; builds allowlisted classes only."""

    def __init__(self, names, tensors, version: int):
        self.names = names
        self.tensors = tensors
        self.version = version
        self.modules: dict = {}  # the current estimator's rebuilt modules

    def state_dict(self, keys: dict) -> dict:
        return {name: self.tensors[key] for name, key in keys.items()}

    def lookup(self, name, allowed=SAFE_CLASSES):
        name = RENAMED_CLASSES.get(name, name) if isinstance(name, str) else name
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
            return np.dtype(value["__np__"]).type(self(value["value"]))
        if "__ndarray__" in value:
            data = self.tensors[value["__ndarray__"]].numpy()
            return data.astype(np.dtype(value["dtype"]), copy=False).reshape(value["shape"])
        if "__objects__" in value:
            items = [self(v) for v in value["__objects__"]]
            dtype = np.dtype(value["dtype"])
            if dtype.kind != "O":
                return np.array(items, dtype=dtype).reshape(value["shape"])
            out = np.empty(len(items), dtype=object)
            for i, item in enumerate(items):  # element-wise: items may be tuples
                out[i] = item
            return out.reshape(value["shape"])
        if "__tensor__" in value:
            return self.tensors[value["__tensor__"]]
        if "__device__" in value:
            return torch.device(value["__device__"])
        if "__slice__" in value:
            return slice(*self(value["__slice__"]))
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {_hashable(self(k)): self(v) for k, v in value["__dict__"]}
        if "__random_state__" in value:
            state = np.random.RandomState()
            state.set_state(self(value["__random_state__"]))
            return state
        if MODULE_REF in value:
            return resolve_ref(value, self.modules)
        if "__callable__" in value:
            return self.lookup(value["__callable__"], SAFE_CALLABLES)
        if "__object__" in value:
            cls = self.lookup(value["__object__"], tuple(_STRATEGY_INIT))
            name = RENAMED_CLASSES.get(value["__object__"], value["__object__"])
            init = self(value["init"])
            if not isinstance(init, dict) or set(init) - set(_STRATEGY_INIT[name]):
                raise _InvalidFile(f"The entry of {name!r} is malformed.")
            return cls(**init)
        if "__estimator__" in value:
            return self.estimator(value)
        raise _InvalidFile(f"Unknown entry in the file: keys {sorted(value)}.")

    def estimator(self, value):
        cls = self.lookup(value["__estimator__"])
        name = RENAMED_CLASSES.get(value["__estimator__"], value["__estimator__"])
        if self.version < 3:
            value = upgrade_entry(name, value)
        outer, self.modules = self.modules, {}
        try:
            params = self(value["params"])  # never modules: decoded with an empty table
            torch_part = value.get("torch")
            if name != _NET_OWNER:
                self.modules = decode_modules(torch_part, self.tensors)
            attrs = self(value["attrs"])
        finally:
            self.modules = outer
        if not isinstance(params, dict) or not isinstance(attrs, dict):
            raise _InvalidFile(f"The entry of {name!r} is malformed.")
        for key in [*params, *attrs]:
            # Dunder names could swap the object's class or dict; private names other than
            # the few the estimators use are never written by save().
            if not isinstance(key, str) or (key.startswith("_") and key not in _PRIVATE_ATTRS):
                raise _InvalidFile(f"The entry of {name!r} has a forbidden attribute {key!r}.")
        renamed = RENAMED_PARAMS.get(name, {})  # a version-1 file: the old parameter names
        params = {renamed.get(k, k): v for k, v in params.items()}
        est = cls(**params)
        for key, attr in attrs.items():
            setattr(est, key, attr)
        if name == _NET_OWNER and torch_part is not None:
            est.net_ = decode_net(torch_part, self)
        if name == _SAMPLER_OWNER and est.sampler is not None and hasattr(est, "sample_indices_"):
            from sklearn.base import clone

            est.sampler_ = clone(est.sampler)
        return est


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key
