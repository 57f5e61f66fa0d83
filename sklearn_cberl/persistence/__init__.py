"""Saving fitted estimators: device-agnostic pickles and a pickle-free ``save`` / ``load``.

Two ways to persist a fitted estimator or pipeline:

* ``pickle`` / ``joblib`` (the scikit-learn way). Round trips give identical predictions,
  and the pickles are device-agnostic: ``EmoGANSampler`` and ``DJVAE`` put their torch
  state on the CPU in ``__getstate__`` (:func:`cpu_state`), and ``CBERLClassifier``'s skorch
  net maps its tensors to the CPU on load when CUDA is missing. **Never unpickle a file of
  untrusted origin**: unpickling runs arbitrary code.
* :func:`save` / :func:`load`: one file in :func:`torch.save`'s zip layout holding the
  parameters and fitted attributes as JSON plus the arrays and network weights as tensors,
  with a SHA-256 digest of each. :func:`load` reads it without ``torch.load`` and without
  unpickling anything: it verifies the archive (CRCs, sizes) and every digest, checks each
  size, dtype and shape the file claims against an allow list and against the bytes the file
  holds before allocating, and instantiates only the classes in :data:`SAFE_CLASSES`
  (estimators) and :data:`SAFE_MODULES` (torch modules, rebuilt from their ``config`` and
  ``state_dict``). Covers the three estimators,
  :class:`~sklearn_cberl.over_sampling.ConversationSampler` and imbalanced-learn /
  scikit-learn pipelines of them.

Why not skops: skops (on PyPI) has no support for torch tensors; ``skops.io.dump`` of a
fitted ``DJVAE`` fails inside ``Tensor.__reduce__`` (checked with skops 0.16.0).

The container is :mod:`._archive`, the value codec :mod:`._codec`, the torch state (modules
and the skorch net) :mod:`._torch_state`. Read more in ``docs/reliability.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path

import torch

from .._files import atomic_write
from .._torch_estimator import cpu_state
from ._archive import TENSOR_DTYPES, _Damaged, digest_of, materialize, read_archive
from ._codec import (
    ARRAY_DTYPES,
    PRIVATE_ATTRS,
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
    "ARRAY_DTYPES",
    "TENSOR_DTYPES",
    "PRIVATE_ATTRS",
    "FORMAT",
    "FORMAT_VERSION",
    "cpu_state",
    "save",
    "load",
]

#: The ``format`` marker of a :func:`save` file.
FORMAT = "sklearn-cberl"
#: Version of the file layout; :func:`load` reads this version only. Version 3: every torch
#: module stored as class + config + state_dict. Version 4: a SHA-256 digest of the JSON
#: document and of every tensor, verified on load.
FORMAT_VERSION = 4


def save(estimator, path) -> Path:
    """Write a (fitted or unfitted) estimator or pipeline to ``path`` without pickle.

    The file is a :func:`torch.save` archive of a dict holding the format marker, a JSON
    document (parameters, fitted attributes, each torch module's class and constructor
    arguments), the tensors (network weights and numeric arrays) and a SHA-256 digest of the
    document and of each tensor. The file is written atomically: to a temporary file in the
    target's directory, then renamed over ``path``; if writing fails, an existing file at
    ``path`` is left as it was and no temporary file remains.

    Parameters
    ----------
    estimator : estimator
        An ``EmoGANSampler``, ``ConversationSampler``, ``DJVAE``, ``CBERLClassifier``, a
        ``StandardScaler``, an imbalanced-learn over-sampler, or a (imbalanced-learn or
        scikit-learn) ``Pipeline`` of those (:data:`SAFE_CLASSES`).
    path : str or path-like
        Output file (conventionally ``*.cberl``). Its directory must exist.

    Returns
    -------
    Path

    Raises
    ------
    TypeError
        Naming the parameter or attribute whose value cannot be stored safely (another
        estimator class, an arbitrary callable, a torch module outside
        :data:`SAFE_MODULES`, a tensor dtype outside :data:`TENSOR_DTYPES`, ...).
    FileNotFoundError
        When the directory of ``path`` does not exist (the message names it).
    IsADirectoryError
        When ``path`` is a directory.

    Notes
    -----
    ``ConversationSampler.sampler_`` (the fitted wrapped sampler, unused after
    ``fit_resample``) is not stored: :func:`load` gives an unfitted clone. A
    ``CBERLClassifier``'s optimizer state and training callbacks are not stored either
    (``fit`` builds new ones); its history is.
    """
    encoder = Encoder(registry())
    document = json.dumps(encoder(estimator, type(estimator).__name__))
    payload = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "json": document,
        "tensors": encoder.tensors,
        "sha256": {
            "json": _text_digest(document),
            "tensors": {key: digest_of(t) for key, t in encoder.tensors.items()},
        },
    }
    path = Path(path)
    atomic_write(path, lambda handle: torch.save(payload, handle))
    return path


def load(path):
    """Read an estimator written by :func:`save`; no pickle code runs.

    Nothing in the file is trusted until checked, in this order:

    1. the archive: uncompressed members no larger than the file, every member's CRC-32;
    2. the pickled payload, read by a restricted unpickler that resolves nothing but the
       names ``torch.save`` uses for tensors (to inert stand-ins; no torch or user code
       runs): format marker, :data:`FORMAT_VERSION`, each tensor's dtype
       (:data:`TENSOR_DTYPES`), byte count, shape and strides against its record, and each
       tensor's SHA-256 digest;
    3. the JSON document, checked as a whole without building anything: class names
       (:data:`SAFE_CLASSES`, :data:`SAFE_MODULES`), attribute names, array dtypes
       (:data:`ARRAY_DTYPES`) and shapes against the stored element counts, text arrays
       against the document's size, torch module sizes on the ``meta`` device; then its
       SHA-256 digest;
    4. only then the estimators and modules are built, on the CPU. Inference moves them to
       the device the estimator's ``device`` parameter names (``"auto"``: CUDA when
       available).

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
        For anything else that is not a valid :func:`save` file, with one line saying why:
        a directory, a pickle or another kind of file (its code never runs), a truncated,
        damaged or altered file, a file of another format version, a class outside the allow
        lists, a dunder or unknown private attribute, sizes, dtypes or shapes that do not
        match what the file holds.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a model file.")
    if not path.is_file():
        if path.exists():
            raise ValueError(f"{path} is not a regular file, not a model file.")
        raise FileNotFoundError(f"No model file at {str(path)!r}.")
    try:
        return _load(path)
    except Exception as exc:  # the file's content is the only input: any failure = invalid
        detail = str(exc) if isinstance(exc, _InvalidFile) else f"{type(exc).__name__}: {exc}"
        raise ValueError(f"{path} is not a valid sklearn-cberl model file: {detail}") from exc


def _load(path: Path):
    payload = read_archive(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise _InvalidFile("it is not a file written by sklearn_cberl.persistence.save.")
    version = payload.get("version")
    if type(version) is not int:
        raise _InvalidFile("its format version is malformed.")
    if version < FORMAT_VERSION:
        raise _InvalidFile(
            f"model file format version {version} was written by an older sklearn-cberl; "
            f"this release reads version {FORMAT_VERSION}: refit and save again."
        )
    if version > FORMAT_VERSION:
        raise _InvalidFile(
            f"format version {version}; this sklearn-cberl reads version {FORMAT_VERSION}: "
            "upgrade sklearn-cberl."
        )
    text, claims, digests = payload.get("json"), payload.get("tensors"), payload.get("sha256")
    if not isinstance(text, str) or not isinstance(claims, dict):
        raise _InvalidFile("its JSON document or tensor table is missing or malformed.")
    if not isinstance(digests, dict) or not isinstance(digests.get("tensors"), dict):
        raise _Damaged("its digests are missing or malformed.")
    if set(digests["tensors"]) != set(claims):
        raise _Damaged("its digests do not cover its tensors.")
    used: set = set()
    tensors = {key: materialize(claims[key], digests["tensors"][key], used) for key in claims}
    document = json.loads(text, object_pairs_hook=OrderedDict)
    budget = 4 * len(text) + 2**21  # text arrays: 4 bytes a character, plus 2 MiB
    names = registry()
    # Every claim is checked before the document's digest, so that a forged file is refused
    # for what it claims; the digest then catches any other edit.
    Decoder(names, tensors, text_budget=budget, dry=True)(document)
    if digests.get("json") != _text_digest(text):
        raise _Damaged(
            "its JSON document does not match the digest recorded when it was saved (the file "
            "was altered after saving)."
        )
    return Decoder(names, tensors, text_budget=budget)(document)


def _text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


