"""Sampling-strategy callables: how many synthetic rows each class gets.

imbalanced-learn samplers accept a callable ``y -> {class: target count}`` as
``sampling_strategy``; these two express the counts CBERL's experiments need. No torch here:
the samplers and the pipeline both import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import numpy as np

__all__ = ["EMOTION_ALIASES", "AddPerClass", "UpToRatio"]


#: Spellings of the same emotion across corpora and feature releases (IEMOCAP pickles use
#: ``hap``, ``neu``, ...), so that the paper's counts find the class whatever its spelling.
EMOTION_ALIASES = (
    ("happy", "hap", "happiness"),
    ("sad", "sadness"),
    ("neutral", "neu"),
    ("angry", "ang", "anger"),
    ("excited", "exc", "excitement"),
    ("frustrated", "fru", "frustration"),
    ("fear", "fea", "fearful"),
    ("disgust", "dis", "disgusted"),
    ("surprise", "sur", "surprised"),
    ("joy", "joyful"),
)


def _resolve_label(name, labels):
    """The label of ``labels`` that ``name`` denotes: itself, else a case-insensitive alias."""
    if name in labels:
        return name
    key = str(name).lower()
    group = next((g for g in EMOTION_ALIASES if key in g), (key,))
    matches = [label for label in labels if str(label).lower() in group]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(
        f"The sampling counts name class {name!r}, which is not in y (classes: "
        f"{sorted(labels, key=str)}); known spellings of it: {list(group)}."
    )


class AddPerClass:
    """A ``sampling_strategy`` callable that adds a fixed number of samples per class.

    imbalanced-learn's dict strategy asks for *target* counts; the paper's Table VI lists
    *additions*. This callable converts one into the other on the training labels it is given
    (so it stays right inside cross-validation folds). Class names are matched exactly, else
    through :data:`EMOTION_ALIASES` (``"happy"`` finds ``"hap"``; case-insensitive); a name
    that matches no class of ``y`` is an error rather than a silently skipped count.

    Parameters
    ----------
    additions : dict of label -> int
        Number of synthetic samples to add to each class.
    reference_size : int, default=None
        Training-set size the ``additions`` refer to; when given, they are scaled by
        ``len(y) / reference_size`` (Table VI counts are for the full MELD / IEMOCAP training
        sets, a cross-validation fold or a subsample needs proportionally fewer).
    """

    def __init__(self, additions: Mapping, reference_size: int | None = None):
        self.additions = dict(additions)
        self.reference_size = reference_size

    def __call__(self, y) -> dict:
        labels, counts = np.unique(np.asarray(y), return_counts=True)
        current = dict(zip(labels.tolist(), counts.tolist()))
        scale = 1.0 if self.reference_size is None else len(y) / self.reference_size
        targets = {}
        for name, n in self.additions.items():
            label = _resolve_label(name, list(current))
            if label in targets:
                raise ValueError(f"Two sampling counts name class {label!r}.")
            add = int(round(n * scale))
            if add > 0:
                targets[label] = current[label] + add
        return targets

    def __repr__(self) -> str:
        return f"AddPerClass({self.additions!r}, reference_size={self.reference_size!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, AddPerClass) and (other.additions, other.reference_size) == (
            self.additions,
            self.reference_size,
        )

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.additions.items(), key=repr)), self.reference_size))


class UpToRatio:
    """A ``sampling_strategy`` callable: raise every class below ``ratio`` x the majority.

    Each class with fewer than ``ratio * n_majority`` samples is over-sampled up to that
    count; larger classes are left alone. For two classes this is imbalanced-learn's float
    strategy (minority / majority after resampling), except that a minority already above
    the ratio is left alone rather than an error. ``EmoGANSampler(sampling_strategy=ratio)``
    uses it for any number of classes; wrap other samplers' counts with it to compare like
    with like, e.g. ``SMOTE(sampling_strategy=UpToRatio(0.5))``.

    Parameters
    ----------
    ratio : float in (0, 1]
        Target size of the small classes relative to the largest one (1 = balance).
    """

    def __init__(self, ratio: float):
        self.ratio = ratio

    def __call__(self, y) -> dict:
        ratio = self.ratio
        if isinstance(ratio, bool) or not isinstance(ratio, Real) or not 0 < ratio <= 1:
            raise ValueError(f"ratio={ratio!r}: expected a float in (0, 1].")
        labels, counts = np.unique(np.asarray(y), return_counts=True)
        target = int(np.floor(ratio * counts.max()))
        return {label: target for label, n in zip(labels.tolist(), counts.tolist()) if n < target}

    def __repr__(self) -> str:
        return f"UpToRatio({self.ratio!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, UpToRatio) and other.ratio == self.ratio

    def __hash__(self) -> int:
        return hash(("UpToRatio", self.ratio))
