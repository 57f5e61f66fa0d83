"""Helpers that forge ``persistence.save`` files the way an attacker (or a damaged disk) can.

A forger can read a save file with ``torch.load``, edit it and write it back with
``torch.save``; the digests are public, so a deliberate forger recomputes them
(``rehash=True``) and only the load-time claim checks stand in the way.
"""

import hashlib
import json

import torch

from sklearn_cberl.persistence import FORMAT, FORMAT_VERSION
from sklearn_cberl.persistence._archive import digest_of


def read_payload(path) -> dict:
    return torch.load(path, weights_only=True)


def rehash(payload) -> dict:
    """The payload with digests that match its (edited) JSON and tensors."""
    payload["sha256"] = {
        "json": hashlib.sha256(payload["json"].encode()).hexdigest(),
        "tensors": {key: digest_of(t) for key, t in payload["tensors"].items()},
    }
    return payload


def write_payload(payload, out, recompute=True):
    torch.save(rehash(payload) if recompute else payload, out)
    return out


def forge(saved_path, out, edit, recompute=True):
    """Rewrite a save file's JSON document with ``edit(document)``."""
    payload = read_payload(saved_path)
    document = json.loads(payload["json"])
    edit(document)
    payload["json"] = json.dumps(document)
    return write_payload(payload, out, recompute)


def write_document(out, document, tensors=None, version=FORMAT_VERSION):
    """A save file holding ``document`` (and ``tensors``), digests included."""
    payload = {
        "format": FORMAT,
        "version": version,
        "json": json.dumps(document),
        "tensors": dict(tensors or {}),
    }
    return write_payload(payload, out)


def find(node, predicate):
    """The first dict in a JSON document for which ``predicate`` holds."""
    if isinstance(node, dict):
        if predicate(node):
            return node
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = find(item, predicate)
            if found is not None:
                return found
    return None
