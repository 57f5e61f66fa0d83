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
  the classes in :data:`SAFE_CLASSES` (estimators) and :data:`SAFE_MODULES` (torch modules,
  rebuilt from their ``config`` and ``state_dict``) can be instantiated. Covers the three
  estimators, :class:`~sklearn_cberl.over_sampling.ConversationSampler` and
  imbalanced-learn / scikit-learn pipelines of them.

Why not skops: skops (on PyPI) has no support for torch tensors; ``skops.io.dump`` of a
fitted ``DJVAE`` fails inside ``Tensor.__reduce__`` (checked with skops 0.16.0).

The value codec is :mod:`._codec`, the torch state (modules, the skorch net, the layout of
format versions 1-2) :mod:`._torch_state`. Read more in ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import pickle
import warnings
from collections import OrderedDict
from pathlib import Path

import torch

from .._torch_estimator import cpu_state
from ._codec import (
    RENAMED_CLASSES,
    RENAMED_PARAMS,
    SAFE_CALLABLES,
    SAFE_CLASSES,
    Decoder,
    Encoder,
    registry,
)
from ._torch_state import SAFE_MODULES, _InvalidFile

__all__ = [
    "SAFE_CLASSES",
    "SAFE_CALLABLES",
    "SAFE_MODULES",
    "FORMAT",
    "FORMAT_VERSION",
    "RENAMED_CLASSES",
    "RENAMED_PARAMS",
    "cpu_state",
    "save",
    "load",
]

#: The ``format`` marker of a :func:`save` file.
FORMAT = "sklearn-cberl"
#: Version of the file layout; :func:`load` refuses newer files. Version 2: the estimators'
#: parameter names of the redesign (version-1 names are renamed on load, RENAMED_PARAMS).
#: Version 3: every torch module stored as class + config + state_dict (versions 1-2 stored
#: per-estimator sizes; they still load).
FORMAT_VERSION = 3


def save(estimator, path) -> Path:
    """Write a (fitted or unfitted) estimator or pipeline to ``path`` without pickle.

    The file is a :func:`torch.save` archive of a dict holding the format marker, a JSON
    document (parameters, fitted attributes, each torch module's class and constructor
    arguments) and the tensors (network weights and numeric arrays). :func:`load` reads it
    with ``torch.load(weights_only=True)``, so no code stored in the file can run.

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
        estimator class, an arbitrary callable, a torch module outside
        :data:`SAFE_MODULES`, ...).

    Notes
    -----
    ``ConversationSampler.sampler_`` (the fitted wrapped sampler, unused after
    ``fit_resample``) is not stored: :func:`load` gives an unfitted clone. A
    ``CBERLClassifier``'s optimizer state and training callbacks are not stored either
    (``fit`` builds new ones); its history is.
    """
    encoder = Encoder(registry())
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
    rest is JSON, and only the classes of :data:`SAFE_CLASSES` and :data:`SAFE_MODULES` are
    instantiated. Every torch module is rebuilt on the CPU; inference moves it to the device
    the estimator's ``device`` parameter names (``"auto"``: CUDA when available). Files of
    every format version up to :data:`FORMAT_VERSION` load.

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
        :data:`SAFE_CLASSES` or :data:`SAFE_MODULES`, a dunder or unknown private
        attribute, sizes that do not match the stored weights.
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
    version = int(payload.get("version", 0))
    if version > FORMAT_VERSION:
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
    return Decoder(registry(), tensors, version)(document)
