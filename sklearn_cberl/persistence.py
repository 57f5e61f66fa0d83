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
  :class:`~sklearn_cberl.sampler.ConversationSampler` and imbalanced-learn /
  scikit-learn pipelines of them.

Why not skops: skops (on PyPI) has no support for torch tensors; ``skops.io.dump`` of a
fitted ``DJVAE`` fails inside ``Tensor.__reduce__`` (checked with skops 0.16.0).

Read more in ``docs/reliability.md``.
"""

from __future__ import annotations

import copy

import torch

__all__ = ["cpu_state"]

FORMAT = "sklearn-cberl"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- pickling
def _off_cpu(value) -> bool:
    """True when ``value`` holds a torch tensor that is not on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.device.type != "cpu"
    if isinstance(value, torch.nn.Module):
        tensors = [*value.parameters(), *value.buffers()]
        return any(t.device.type != "cpu" for t in tensors)
    if isinstance(value, dict):
        return any(_off_cpu(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_off_cpu(v) for v in value)
    return False


def _to_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, torch.nn.Module):
        return value.cpu()  # in place: keeps aliases (gan_.g_ts is generator_) shared
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_cpu(v) for v in value)
    return value


def cpu_state(state: dict, *, device_key: str | None = None) -> dict:
    """Copy of an estimator's pickle state with every torch module and tensor on the CPU.

    Used by ``__getstate__`` so that a model fitted on CUDA unpickles on a CPU-only
    machine. The estimator itself is not touched: the attributes that hold torch state off
    the CPU are deep-copied together (one ``deepcopy`` memo, so attributes that alias each
    other stay aliases) and the copies are moved. CPU-only state is returned as is.

    Parameters
    ----------
    state : dict
        The ``__dict__``-like state (``BaseEstimator.__getstate__()``).
    device_key : str, default=None
        Attribute naming the device the torch state lives on; set to ``cpu`` in the copy
        when something was moved.
    """
    keys = [k for k, v in state.items() if _off_cpu(v)]
    if not keys:
        return state
    moved = copy.deepcopy({k: state[k] for k in keys})
    state = dict(state)
    for key, value in moved.items():
        state[key] = _to_cpu(value)
    if device_key is not None and device_key in state:
        state[device_key] = torch.device("cpu")
    return state
