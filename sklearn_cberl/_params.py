"""Helpers over estimators' parameters and fit signatures (no torch, no estimator imports).

Used by :mod:`sklearn_cberl.pipeline` and :mod:`sklearn_cberl.experiments` alike, which is
why they live apart from both.
"""

from __future__ import annotations

import inspect
import zlib

__all__ = ["accepts_validation_data", "learns_from_labels", "set_random_states"]


def accepts_validation_data(estimator) -> bool:
    """Whether ``estimator.fit`` takes a ``validation_data`` argument."""
    fit = getattr(estimator, "fit", None)
    return fit is not None and "validation_data" in inspect.signature(fit).parameters


def learns_from_labels(estimator) -> bool:
    """Whether ``estimator.fit`` needs ``y`` (scikit-learn's ``target_tags.required``), e.g. a
    feature extractor trained on the emotions."""
    from sklearn.utils import get_tags

    return get_tags(estimator).target_tags.required


def set_random_states(estimator, seed: int):
    """Set every ``random_state`` parameter of a (nested) estimator to a seed-derived value.

    Steps get distinct seeds so that, e.g., a sampler and a classifier in one pipeline do not
    share a random stream by accident. A step's seed depends only on ``seed`` and the
    parameter's name (``seed * 1000 + crc32(name) % 1000``), not on which other steps the
    pipeline has: the classifier of ``make_cberl_pipeline(augment=False, random_state=0)``
    gets the seed it has in the full pipeline.

    Parameters
    ----------
    estimator : estimator
    seed : int

    Returns
    -------
    estimator
        ``estimator``, with its ``random_state`` parameters set.
    """
    keys = [k for k in estimator.get_params(deep=True) if k.endswith("random_state")]
    estimator.set_params(**{k: seed * 1000 + zlib.crc32(k.encode()) % 1000 for k in keys})
    return estimator
