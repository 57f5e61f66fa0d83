"""Torch state in a :func:`~sklearn_cberl.persistence.save` file.

* Torch modules (:data:`SAFE_MODULES`): the class name, the constructor arguments the module
  records in its ``config`` attribute and its ``state_dict``. :func:`decode_modules` checks
  the sizes on the ``meta`` device, builds the module and loads the weights. An estimator's
  modules are stored once each; attributes holding them or their submodules (aliases such
  as ``generator_ is gan_.g_ts``, dicts such as ``discriminators_``) refer to them.
* The skorch net of ``CBERLClassifier``: its public parameters, the weights of its module
  and loss, and its history (:func:`encode_net`, :func:`decode_net`).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import partial

import torch

#: Torch module classes a file may rebuild (from their ``config`` and ``state_dict``).
SAFE_MODULES = (
    "sklearn_cberl.nn.vae.DJVAEModule",
    "sklearn_cberl.nn.gan.EmoGAN",
    "sklearn_cberl.nn.gan.EmotionClassifier",
)
#: Marker of a reference to a stored module (or one of its submodules) in the JSON document.
MODULE_REF = "__torch_module__"


class _InvalidFile(ValueError):
    """A reason :func:`~sklearn_cberl.persistence.load` refuses a file (shown as is)."""


def _module_classes() -> dict:
    from ..nn.gan import EmoGAN, EmotionClassifier
    from ..nn.vae import DJVAEModule

    return dict(zip(SAFE_MODULES, (DJVAEModule, EmoGAN, EmotionClassifier), strict=True))


def _class_name(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


# --------------------------------------------------------------------------- writing
def _find_modules(value, found: dict) -> dict:
    """The torch modules in ``value`` and its dicts, lists and tuples, by id, in order."""
    if isinstance(value, torch.nn.Module):
        found.setdefault(id(value), value)
    elif isinstance(value, dict):
        for item in value.values():
            _find_modules(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _find_modules(item, found)
    return found


class ModuleTable:
    """The torch modules among an estimator's attributes, each stored once.

    A module that is not a submodule of another one is stored (``entries``, keys ``m0``,
    ``m1``, ...); every module or submodule met in the attributes is written as a
    reference to its stored module and path (``refs``), so aliases stay aliases on load.
    """

    def __init__(self, attrs: dict, tensor, where: str):
        modules = list(_find_modules(attrs, {}).values())
        inside = {id(sub) for module in modules for sub in list(module.modules())[1:]}
        self.entries: dict[str, dict] = {}
        self.refs: dict[int, dict] = {}
        for module in modules:
            if id(module) in inside:
                continue
            key = f"m{len(self.entries)}"
            self.entries[key] = _module_entry(module, tensor, where)
            for path, sub in module.named_modules():
                self.refs.setdefault(id(sub), {MODULE_REF: key, "path": path})


def _module_entry(module, tensor, where: str) -> dict:
    name, config = _class_name(module), getattr(module, "config", None)
    if name not in SAFE_MODULES or not isinstance(config, dict):
        raise TypeError(
            f"{where} holds a {name} module, which sklearn_cberl.persistence.save cannot "
            f"store: storable modules are {list(SAFE_MODULES)} (rebuilt from their config)."
        )
    return {
        "module": name,
        "config": config,
        "state": {key: tensor(value) for key, value in module.state_dict().items()},
        "training": [path for path, sub in module.named_modules() if sub.training],
        "frozen": [path for path, p in module.named_parameters() if not p.requires_grad],
    }


# --------------------------------------------------------------------------- reading
def _check_sizes(factory, state: dict, what: str) -> torch.nn.Module:
    """Check sizes read from the file before a module is built from them.

    The module is built on the ``meta`` device (no memory) and its parameter shapes are
    compared with the weights stored in the file: a forged size can neither make
    :func:`~sklearn_cberl.persistence.load` allocate more than the file holds nor load
    mismatched weights.
    """
    try:
        with _registration_budget(4 * len(state) + 64, what), torch.device("meta"):
            probe = factory()
        expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
    except _InvalidFile:
        raise
    except Exception as exc:  # any failure here means sizes the modules cannot take
        raise _InvalidFile(f"The {what} sizes in the file are invalid ({exc}).") from exc
    stored = {k: tuple(v.shape) for k, v in state.items()}
    if expected != stored:
        raise _InvalidFile(f"The {what} sizes in the file do not match the weights it holds.")
    return probe


@contextmanager
def _registration_budget(limit: int, what: str):
    """Stop building a module once it registers more than ``limit`` parameters, buffers and
    submodules (in this thread).

    The ``meta`` device spares the tensors' memory, not the module objects: a config list of
    20,000 hidden sizes (60 kB of JSON) took 12 s and 340 MB to build on ``meta``. A module
    whose state dict must equal ``len(state)`` stored tensors has no use for more.
    """
    thread, count = threading.get_ident(), [0]

    def hook(*args):
        if threading.get_ident() == thread:
            count[0] += 1
            if count[0] > limit:
                raise _InvalidFile(
                    f"The {what} sizes in the file describe a larger network than the weights "
                    "it holds."
                )

    hooks = [
        torch.nn.modules.module.register_module_parameter_registration_hook(hook),
        torch.nn.modules.module.register_module_buffer_registration_hook(hook),
        torch.nn.modules.module.register_module_module_registration_hook(hook),
    ]
    try:
        yield
    finally:
        for handle in hooks:
            handle.remove()


def _build_checked(factory, state: dict, what: str, dry: bool = False):
    """:func:`_check_sizes`, then build the module on the CPU and load the weights (with
    ``dry``: the module built on the ``meta`` device, without weights)."""
    from .._torch_estimator import torch_seed

    probe = _check_sizes(factory, state, what)
    if dry:
        return probe
    with torch_seed(0):  # construction draws initial weights: keep the user's RNG intact
        module = factory()
    module.load_state_dict(state)
    return module


def _plain(value) -> bool:
    """Whether a config value is plain JSON (no markers the decoder would act on)."""
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _names(entry: dict, key: str, allowed) -> set:
    names = entry.get(key, [])
    if not isinstance(names, list) or not set(names) <= set(allowed):
        raise _InvalidFile(f"The {key!r} list of a module entry is malformed.")
    return set(names)


def decode_modules(table, tensors: dict, dry: bool = False) -> dict:
    """Build the modules of an estimator's module table; key -> module (on the CPU, or on
    the ``meta`` device with ``dry``)."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise _InvalidFile("The torch entry of an estimator is malformed.")
    classes, modules = _module_classes(), {}
    for key, entry in table.items():
        if not isinstance(entry, dict) or not {"module", "config", "state"} <= set(entry):
            raise _InvalidFile(
                f"The torch entry {key!r} is not a module (class, config of sizes, weights)."
            )
        name, config, state = entry["module"], entry["config"], entry["state"]
        if not isinstance(name, str) or name not in SAFE_MODULES:
            raise _InvalidFile(
                f"The file names {name!r}, which is not among the modules "
                "sklearn_cberl.persistence.load may build."
            )
        if not isinstance(config, dict) or not all(
            isinstance(k, str) and k.isidentifier() and not k.startswith("_") and _plain(v)
            for k, v in config.items()
        ):
            raise _InvalidFile(f"The config of the {name!r} entry is malformed.")
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and v in tensors for k, v in state.items()
        ):
            raise _InvalidFile(f"The weights of the {name!r} entry are malformed.")
        state = {k: tensors[v] for k, v in state.items()}
        factory = partial(classes[name], **config)
        module = _build_checked(factory, state, name.rsplit(".", 1)[1], dry)
        subs, params = dict(module.named_modules()), dict(module.named_parameters())
        training, frozen = _names(entry, "training", subs), _names(entry, "frozen", params)
        for path, sub in subs.items():  # per submodule, as saved (train() would recurse)
            sub.training = path in training
        for path in frozen:
            params[path].requires_grad_(False)
        modules[key] = module
    return modules


def resolve_ref(ref: dict, modules: dict):
    """The module (or submodule) a :data:`MODULE_REF` entry points to."""
    key, path = ref.get(MODULE_REF), ref.get("path", "")
    subs = dict(modules[key].named_modules()) if key in modules else {}
    if not isinstance(path, str) or path not in subs:
        raise _InvalidFile(f"A module reference of the file is dangling ({key!r}, {path!r}).")
    return subs[path]


# --------------------------------------------------------------------------- skorch net
#: skorch net parameters that are inference-relevant and plain values (the rest - the
#: callbacks, the training data loader options - only matter while training).
_NET_SKIP = {"module", "criterion", "optimizer", "callbacks", "train_split", "dataset"}
#: Data-loader options that would let a file start processes or swap the sampling at
#: inference (a forged ``iterator_valid__num_workers=10000``); save never writes them.
_LOADER_SKIP = {
    "num_workers", "worker_init_fn", "multiprocessing_context", "persistent_workers",
    "prefetch_factor", "pin_memory", "pin_memory_device", "generator", "sampler",
    "batch_sampler", "timeout",
}  # fmt: skip
#: Net parameters a file may only hold at these values (compiling, or loading further
#: files, is not for a model file to switch on).
_NET_FIXED = {"compile": False, "torch_load_kwargs": None}


def encode_net(net, enc, where: str) -> dict:
    """A skorch net as its public parameters, module and loss weights and history."""
    params = {
        k: v
        for k, v in net.get_params(deep=False).items()
        if not k.startswith("_") and k not in _NET_SKIP and not k.startswith("callbacks")
    }
    return {
        "params": enc(params, f"{where}.net_"),
        "module": enc.state_dict(net.module_),
        "criterion": enc.state_dict(net.criterion_),
        "history": enc(list(net.history), f"{where}.net_.history"),
    }


def decode_net(info, dec, dry: bool = False):
    """Rebuild the classifier's skorch net from :func:`encode_net`'s entry (with ``dry``:
    check it, build nothing and return None).

    Why not a module config as for the other estimators: skorch builds the net's MGNN from
    the net's own ``module__`` parameters (set by ``build_net``, which needs the training
    data and cannot be rerun), and those are public, stored since format version 1. So the
    net is rebuilt the way skorch documents (its parameters, ``initialize()``, then the
    weights), after the module it would build has been size-checked on the meta device.
    """
    from skorch.history import History

    from .._torch_estimator import torch_seed
    from ..classifier._net import CBERLNet
    from ..nn.mgnn import MGNN, CBERLLoss

    if not isinstance(info, dict) or not {"params", "module", "criterion", "history"} <= set(info):
        raise _InvalidFile("The classifier's network entry is malformed.")
    params = dec(info["params"])
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise _InvalidFile("The classifier's network parameters are malformed.")
    forbidden = [k for k in params if k in _NET_SKIP or not k.split("__")[0].isidentifier()]
    forbidden += [k for k in params if k.startswith(("callbacks", "_"))]
    forbidden += [k for k in params if k.rsplit("__", 1)[-1] in _LOADER_SKIP]
    forbidden += [k for k, v in _NET_FIXED.items() if k in params and params[k] != v]
    if forbidden:
        raise _InvalidFile(f"The classifier entry has forbidden net parameters {forbidden}.")
    params["device"] = "cpu"  # inference moves it to the `device` parameter's device
    net = CBERLNet(module=MGNN, criterion=CBERLLoss, optimizer=torch.optim.Adam, **params)
    state = dec.state_dict(info["module"])
    criterion_state = dec.state_dict(info["criterion"])
    history = dec(info["history"])
    module_kwargs = net.get_params_for("module")
    _check_sizes(lambda: MGNN(**module_kwargs), state, "classifier network")
    if dry:
        return None
    with torch_seed(0):
        net.initialize()
    net.module_.load_state_dict(state)
    net.criterion_.load_state_dict(criterion_state)
    net.history = History(history)
    return net
