"""Saving fitted estimators: device-agnostic pickles and a pickle-free ``save`` / ``load``.

Two ways to persist a fitted estimator or pipeline:

* ``pickle`` / ``joblib`` (the scikit-learn way). Round trips give identical predictions,
  and the pickles are device-agnostic: ``EmoGANSampler`` and ``DJVAE`` put their torch
  state on the CPU in ``__getstate__`` (:func:`cpu_state`), and ``CBERLClassifier``'s skorch
  net maps its tensors to the CPU on load when CUDA is missing. **Never unpickle a file of
  untrusted origin**: unpickling runs arbitrary code.
* :func:`save` / :func:`load`: one file written with :func:`torch.save` holding the
  parameters and fitted attributes as JSON plus the arrays and network weights as tensors,
  read back with ``torch.load(weights_only=True)`` - no pickle code runs on load, and only
  the classes in :data:`SAFE_CLASSES` can be instantiated. Covers the three estimators,
  :class:`~sklearn_cberl.over_sampling.ConversationSampler` and imbalanced-learn /
  scikit-learn pipelines of them.

Why not skops: skops (on PyPI) has no support for torch tensors; ``skops.io.dump`` of a
fitted ``DJVAE`` fails inside ``Tensor.__reduce__`` (checked with skops 0.16.0).

Read more in ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import pickle
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ._torch_base import cpu_state

__all__ = [
    "SAFE_CLASSES",
    "SAFE_CALLABLES",
    "FORMAT",
    "FORMAT_VERSION",
    "cpu_state",
    "save",
    "load",
]

#: The ``format`` marker of a :func:`save` file.
FORMAT = "sklearn-cberl"
#: Version of the file layout; :func:`load` refuses newer files. Version 2: the estimators'
#: parameter names of the redesign (version-1 names are renamed on load, RENAMED_PARAMS).
FORMAT_VERSION = 2
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


#: Class names of earlier releases -> their current name (files keep loading across moves).
RENAMED_CLASSES = {
    "sklearn_cberl.sampler.EmoGANSampler": "sklearn_cberl.over_sampling.EmoGANSampler",
    "sklearn_cberl.sampler.ConversationSampler": "sklearn_cberl.over_sampling.ConversationSampler",
    "sklearn_cberl.pipeline.AddPerClass": "sklearn_cberl.strategies.AddPerClass",
    "sklearn_cberl.pipeline.UpToRatio": "sklearn_cberl.strategies.UpToRatio",
    "sklearn_cberl.classifier.collate_dialogues": "sklearn_cberl.nn.data.collate_dialogues",
}


#: Parameter names of version-1 files -> their current name, per class (CHANGELOG.md).
RENAMED_PARAMS = {
    "sklearn_cberl.fusion.DJVAE": {"n_epochs": "max_epochs", "hidden_sizes": "hidden_layer_sizes"},
    "sklearn_cberl.over_sampling.EmoGANSampler": {
        "n_epochs": "max_epochs",
        "classifier_epochs": "classifier_max_epochs",
    },
}


class _InvalidFile(ValueError):
    """A reason :func:`load` refuses a file (its message is shown as is)."""


# --------------------------------------------------------------------------- safe format
def _name(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _registry() -> dict:
    """Name -> class or callable for everything a file may name (imported explicitly)."""
    import imblearn.over_sampling as over
    import imblearn.pipeline
    import sklearn.pipeline
    from sklearn.preprocessing import StandardScaler
    from skorch.dataset import Dataset

    from .classifier import CBERLClassifier
    from .fusion import DJVAE
    from .nn.data import collate_dialogues
    from .nn.losses import CBERLLoss
    from .nn.mgnn import MGNN
    from .over_sampling import ConversationSampler, EmoGANSampler
    from .pipeline import CBERLPipeline
    from .strategies import AddPerClass, UpToRatio

    public = [EmoGANSampler, ConversationSampler, DJVAE, CBERLClassifier, AddPerClass]
    public += [UpToRatio, CBERLPipeline]
    public += [imblearn.pipeline.Pipeline, sklearn.pipeline.Pipeline, StandardScaler]
    public += [getattr(over, name.rsplit(".", 1)[1]) for name in SAFE_CLASSES[len(public) :]]
    registry = dict(zip(SAFE_CLASSES, public, strict=True))
    # What the skorch net of CBERLClassifier is built from: written by save() as references,
    # never instantiated from a file by name (_load_classifier builds the net itself, and
    # the decoder hands out only SAFE_CALLABLES as plain references).
    for obj in (MGNN, CBERLLoss, torch.optim.Adam, collate_dialogues, Dataset):
        registry[_name(obj)] = obj
    registry[_name(torch.utils.data.DataLoader)] = torch.utils.data.DataLoader
    return registry


#: Callables a file may *refer to* (never called by the decoder): the skorch net's data
#: loader class and collate function.
SAFE_CALLABLES = (
    "sklearn_cberl.nn.data.collate_dialogues",
    "torch.utils.data.dataloader.DataLoader",
)
#: Private attribute names an estimator may carry in a file (dunder names never).
_PRIVATE_ATTRS = frozenset({"_columns", "_seed", "_sklearn_output_config"})


#: Sampling-strategy callables a file may hold, with their ``__init__`` arguments.
_STRATEGY_INIT = {
    "sklearn_cberl.strategies.AddPerClass": ("additions", "reference_size"),
    "sklearn_cberl.strategies.UpToRatio": ("ratio",),
}


class _Encoder:
    """Python values -> JSON-able structure; arrays and tensors go to ``self.tensors``."""

    def __init__(self, registry):
        self.registry = registry
        self.names = {id(obj): name for name, obj in registry.items()}
        self.tensors: dict[str, torch.Tensor] = {}

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
        attrs = {k: v for k, v in vars(est).items() if k not in params}
        torch_part = None
        dump = _DUMPERS.get(name)
        if dump is not None:
            torch_part, handled = dump(est, self, where)
            attrs = {k: v for k, v in attrs.items() if k not in handled}
        return {
            "__estimator__": name,
            "params": self(params, f"{where}.{type(est).__name__}(params)"),
            "attrs": self(attrs, where),
            "torch": torch_part,
        }


class _Decoder:
    def __init__(self, registry, tensors):
        self.registry = registry
        self.tensors = tensors

    def tensor(self, key) -> torch.Tensor:
        return self.tensors[key]

    def state_dict(self, keys: dict) -> dict:
        return {name: self.tensors[key] for name, key in keys.items()}

    def lookup(self, name, allowed=SAFE_CLASSES):
        name = RENAMED_CLASSES.get(name, name) if isinstance(name, str) else name
        if not isinstance(name, str) or name not in allowed:
            raise _InvalidFile(
                f"The file names {name!r}, which is not among the classes "
                "sklearn_cberl.persistence.load may create."
            )
        return self.registry[name]

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
        params, attrs = self(value["params"]), self(value["attrs"])
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
        load = _LOADERS.get(name)
        if load is not None:
            load(est, value["torch"], self)
        return est


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


# --- torch state of the estimators: weights as tensors, modules rebuilt from their sizes ----
def _check_sizes(factory, state: dict, what: str) -> None:
    """Check sizes read from the file before a module is built from them.

    The module is built on the ``meta`` device (no memory) and its parameter shapes are
    compared with the weights stored in the file: a forged size can neither make
    :func:`load` allocate more than the file holds nor load mismatched weights.
    """
    try:
        with torch.device("meta"):
            probe = factory()
        expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    except Exception as exc:  # any failure here means sizes the modules cannot take
        raise _InvalidFile(f"The {what} sizes in the file are invalid ({exc}).") from exc
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if expected != stored:
        raise _InvalidFile(f"The {what} sizes in the file do not match the weights it holds.")


def _build_checked(factory, state: dict, what: str):
    """:func:`_check_sizes`, then build the module on the CPU and load the weights."""
    from ._utils import torch_seed

    _check_sizes(factory, state, what)
    with torch_seed(0):  # construction draws initial weights: keep the user's RNG intact
        module = factory()
    module.load_state_dict(state)
    return module


def _dump_djvae(est, enc, where):
    if not hasattr(est, "module_"):
        return None, set()
    info = {
        "block_sizes": [len(idx) for idx in est._columns.values()],
        "encoders": [est.encoders_[m] for m in est.modalities_],
        "n_components": int(est.module_.n_components),
        "hidden_sizes": list(est._hidden_layer_sizes()),
        "fusion": est.module_.fusion,
        "state": enc.state_dict(est.module_),
    }
    return info, {"module_"}


def _load_djvae(est, info, dec):
    if info is None:
        return
    from .nn.vae import DJVAEModule

    def factory():
        return DJVAEModule(
            info["block_sizes"],
            info["encoders"],
            info["n_components"],
            tuple(info["hidden_sizes"]),
            fusion=info["fusion"],
        )

    est.module_ = _build_checked(factory, dec.state_dict(info["state"]), "DJVAE").eval()
    est.device_ = torch.device("cpu")


_GAN_ATTRS = {"gan_", "generator_", "discriminators_", "emotion_classifier_"}


def _dump_gan(est, enc, where):
    gan, ec = getattr(est, "gan_", None), getattr(est, "emotion_classifier_", None)
    if gan is None:
        return None, _GAN_ATTRS & set(vars(est))
    info = {
        "widths": list(gan.widths),
        "n_classes": int(gan.n_classes),
        "hidden_size": int(gan.g_ts.trunk[0].out_features),
        "latent_size": int(gan.latent_size),
        "blocks": list(est.discriminators_),
        "gan": enc.state_dict(gan),
        "ec_hidden_size": int(ec.net[0].out_features),
        "ec_dropout": float(ec.net[2].p),
        "emotion_classifier": enc.state_dict(ec),
    }
    return info, _GAN_ATTRS


def _load_gan(est, info, dec):
    for name in _GAN_ATTRS:
        setattr(est, name, None)
    if info is None:
        return
    from .nn.gan import EmoGAN, EmotionClassifier

    gan = _build_checked(
        lambda: EmoGAN(info["widths"], info["n_classes"], info["hidden_size"], info["latent_size"]),
        dec.state_dict(info["gan"]),
        "EmoGAN",
    )
    ec = _build_checked(
        lambda: EmotionClassifier(
            sum(info["widths"]), info["n_classes"], info["ec_hidden_size"], info["ec_dropout"]
        ),
        dec.state_dict(info["emotion_classifier"]),
        "emotion classifier",
    )
    est.gan_ = gan.eval()
    est.generator_ = gan.g_ts
    est.discriminators_ = dict(zip(info["blocks"], gan.discriminators))
    est.emotion_classifier_ = ec.eval().requires_grad_(False)


def _dump_conversation_sampler(est, enc, where):
    # The fitted wrapped sampler (nearest-neighbour trees) is not needed after
    # fit_resample and is not stored; load() gives an unfitted clone as ``sampler_``.
    return None, {"sampler_"}


def _load_conversation_sampler(est, info, dec):
    from sklearn.base import clone

    if est.sampler is not None and hasattr(est, "sample_indices_"):
        est.sampler_ = clone(est.sampler)


#: skorch net parameters that are inference-relevant and plain values (the rest - the
#: callbacks, the training data loader options - only matter while training).
_NET_SKIP = {"module", "criterion", "optimizer", "callbacks", "train_split", "dataset"}


def _dump_classifier(est, enc, where):
    net = getattr(est, "net_", None)
    if net is None:
        return None, set()
    params = {
        k: v
        for k, v in net.get_params(deep=False).items()
        if not k.startswith("_") and k not in _NET_SKIP and not k.startswith("callbacks")
    }
    info = {
        "params": enc(params, f"{where}.net_"),
        "module": enc.state_dict(net.module_),
        "criterion": enc.state_dict(net.criterion_),
        "history": enc(list(net.history), f"{where}.net_.history"),
    }
    return info, {"net_"}


def _load_classifier(est, info, dec):
    if info is None:
        return
    from skorch.history import History

    from ._utils import torch_seed
    from .classifier import _CBERLNet
    from .nn.losses import CBERLLoss
    from .nn.mgnn import MGNN

    params = dec(info["params"])
    forbidden = [k for k in params if k in _NET_SKIP or not k.split("__")[0].isidentifier()]
    forbidden += [k for k in params if k.startswith(("callbacks", "_"))]
    if forbidden:
        raise _InvalidFile(f"The classifier entry has forbidden net parameters {forbidden}.")
    params["device"] = "cpu"  # inference moves it to the `device` parameter's device
    module_kwargs = {k[len("module__") :]: v for k, v in params.items() if k.startswith("module__")}
    state = dec.state_dict(info["module"])
    _check_sizes(lambda: MGNN(**module_kwargs), state, "classifier network")
    net = _CBERLNet(module=MGNN, criterion=CBERLLoss, optimizer=torch.optim.Adam, **params)
    with torch_seed(0):
        net.initialize()
    net.module_.load_state_dict(state)
    net.criterion_.load_state_dict(dec.state_dict(info["criterion"]))
    net.history = History(dec(info["history"]))
    est.net_ = net


_DUMPERS = {
    "sklearn_cberl.fusion.DJVAE": _dump_djvae,
    "sklearn_cberl.over_sampling.EmoGANSampler": _dump_gan,
    "sklearn_cberl.over_sampling.ConversationSampler": _dump_conversation_sampler,
    "sklearn_cberl.classifier.CBERLClassifier": _dump_classifier,
}
_LOADERS = {
    "sklearn_cberl.fusion.DJVAE": _load_djvae,
    "sklearn_cberl.over_sampling.EmoGANSampler": _load_gan,
    "sklearn_cberl.over_sampling.ConversationSampler": _load_conversation_sampler,
    "sklearn_cberl.classifier.CBERLClassifier": _load_classifier,
}


def save(estimator, path) -> Path:
    """Write a (fitted or unfitted) estimator or pipeline to ``path`` without pickle.

    The file is a :func:`torch.save` archive of a dict holding the format marker, a JSON
    document (parameters, fitted attributes, the sizes every torch module is rebuilt from)
    and the tensors (network weights and numeric arrays). :func:`load` reads it with
    ``torch.load(weights_only=True)``, so no code stored in the file can run.

    Parameters
    ----------
    estimator : estimator
        An ``EmoGANSampler``, ``ConversationSampler``, ``DJVAE``, ``CBERLClassifier``, a
        ``StandardScaler``, an imbalanced-learn over-sampler, or a (imbalanced-learn or
        scikit-learn) ``Pipeline`` of those (:data:`SAFE_CLASSES`).
    path : str or path-like
        Output file (conventionally ``*.cberl``).

    Returns
    -------
    Path

    Raises
    ------
    TypeError
        Naming the parameter or attribute whose value cannot be stored safely (another
        estimator class, an arbitrary callable, ...).

    Notes
    -----
    ``ConversationSampler.sampler_`` (the fitted wrapped sampler, unused after
    ``fit_resample``) is not stored: :func:`load` gives an unfitted clone. A
    ``CBERLClassifier``'s optimizer state and training callbacks are not stored either
    (``fit`` builds new ones); its history is.
    """
    registry = _registry()
    encoder = _Encoder(registry)
    document = encoder(estimator, type(estimator).__name__)
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "json": json.dumps(document),
        "tensors": encoder.tensors,
    }
    path = Path(path)
    torch.save(payload, path)
    return path


def load(path):
    """Read an estimator written by :func:`save`; no pickle code runs.

    The tensors are read with ``torch.load(weights_only=True, map_location="cpu")``; the
    rest is JSON, and only the classes of :data:`SAFE_CLASSES` are instantiated. Every
    torch module is rebuilt on the CPU; inference moves it to the device the estimator's
    ``device`` parameter names (``"auto"``: CUDA when available).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    estimator

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        For anything else that is not a valid :func:`save` file: a pickle (its code never
        runs), a truncated or malformed file, a newer format version, a class outside
        :data:`SAFE_CLASSES`, a dunder or unknown private attribute, sizes that do not match
        the stored weights.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {str(path)!r}.")
    try:
        return _load(path)
    except Exception as exc:  # the file's content is the only input: any failure = invalid
        detail = str(exc) if isinstance(exc, _InvalidFile) else f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{path} is not a valid sklearn-cberl model file: {detail}") from exc


def _load(path: Path):
    try:
        with warnings.catch_warnings():
            # torch notes the pickle protocol of a file it is about to refuse anyway.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise _InvalidFile(
            "it is not a file written by sklearn_cberl.persistence.save "
            f"(torch.load(weights_only=True) refused it: {type(exc).__name__}: {exc}). Do "
            "not unpickle it unless you trust its origin."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise _InvalidFile("it is not a file written by sklearn_cberl.persistence.save.")
    if int(payload.get("version", 0)) > FORMAT_VERSION:
        raise _InvalidFile(
            f"format version {payload['version']}; this sklearn-cberl reads versions <= "
            f"{FORMAT_VERSION}: upgrade sklearn-cberl."
        )
    tensors = payload.get("tensors")
    if not isinstance(tensors, dict) or not all(
        isinstance(t, torch.Tensor) for t in tensors.values()
    ):
        raise _InvalidFile("its tensors are malformed.")
    document = json.loads(payload["json"], object_pairs_hook=OrderedDict)
    return _Decoder(_registry(), tensors)(document)
