"""The full CBERL system as one imbalanced-learn Pipeline: augment -> fuse -> classify."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Real

import numpy as np
from imblearn.pipeline import Pipeline

from .paper import PAPER_AUGMENTATION  # re-exported: Table VI's counts live in paper.py

__all__ = [
    "AddPerClass",
    "CBERLPipeline",
    "EMOTION_ALIASES",
    "PAPER_AUGMENTATION",
    "UpToRatio",
    "make_cberl_pipeline",
]


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


class CBERLPipeline(Pipeline):
    """imbalanced-learn's :class:`~imblearn.pipeline.Pipeline` that can route a validation set.

    ``fit(X, y, validation_data=(X_val, y_val))`` fits the steps as ``Pipeline.fit`` does and
    hands the final step ``validation_data`` with ``X_val`` sent through the *fitted*
    earlier transformers (samplers are skipped, as at predict time), so the classifier
    selects its epoch on validation features of the same kind as its training features.
    ``clf__validation_data=...`` (the final step's name) is accepted as a synonym. Everything
    else (steps, ``memory``, ``verbose``, ``set_params``, ``GridSearchCV``) is the parent's.

    A plain Pipeline cannot do this: fit parameters reach a step untransformed, so raw
    validation features would meet a classifier trained on fused ones. scikit-learn's
    ``transform_input`` does it only under global metadata routing and transforms every
    element of a tuple, the labels included.
    """

    def fit(self, X, y=None, *, validation_data=None, **params):
        """Fit the pipeline; ``validation_data=(X_val, y_val)`` reaches the final step
        transformed by the fitted earlier steps.

        Parameters
        ----------
        X, y
            Training data, as for :meth:`imblearn.pipeline.Pipeline.fit`.
        validation_data : tuple (X_val, y_val), default=None
            Raw validation data in the pipeline's *input* format.
        **params
            Step parameters ``<step>__<param>``.

        Returns
        -------
        self
        """
        if validation_data is not None:
            key = f"{self.steps[-1][0]}__validation_data"
            if key in params:
                raise TypeError(f"Pass either validation_data or {key}, not both.")
            params[key] = validation_data
        return super().fit(X, y, **params)

    def _get_metadata_for_step(self, *, step_idx, step_params, all_params):
        # The hook Pipeline.fit uses to transform fit parameters (``transform_input``) before
        # they reach a step: here it transforms the X of the final step's validation_data.
        step_params = super()._get_metadata_for_step(
            step_idx=step_idx, step_params=step_params, all_params=all_params
        )
        fit_params = step_params.get("fit", {})
        if step_idx != len(self.steps) - 1 or fit_params.get("validation_data") is None:
            return step_params
        validation_data = fit_params["validation_data"]
        if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
            raise TypeError("validation_data must be a tuple (X_val, y_val).")
        X_val, y_val = validation_data
        for _, step in self.steps[:step_idx]:
            if step is None or step == "passthrough" or hasattr(step, "fit_resample"):
                continue  # samplers act only on training data
            X_val = step.transform(X_val)
        fit_params["validation_data"] = (X_val, y_val)
        return step_params


def make_cberl_pipeline(
    *,
    augment=True,
    fuse=True,
    sampling_strategy=None,
    device="auto",
    random_state=None,
    verbose=0,
    **params,
) -> CBERLPipeline:
    """Build ``CBERLPipeline([("aug", EmoGANSampler), ("fuse", DJVAE), ("clf", CBERLClassifier)])``.

    Every component starts at the paper's hyper-parameters (Sec. V-D); every ablation of
    Tables III-V is a parameter or a ``"passthrough"`` step, so ``GridSearchCV`` can produce
    the ablation tables::

        {"aug": ["passthrough", EmoGANSampler(), SMOTE()],
         "fuse": ["passthrough", DJVAE()],
         "clf__gamma": [0, 3], "clf__mask_rate": [0, 0.2],
         "clf__ensemble": ["mlp", "adaboost"]}

    Parameters
    ----------
    augment : bool, default=True
        Include the EmoGAN over-sampler (else the ``aug`` step is ``"passthrough"``).
    fuse : bool, default=True
        Include DJVAE fusion (else ``fuse`` is ``"passthrough"``: the classifier sees the
        concatenated modalities, the paper's "without feature fusion" ablation).
    sampling_strategy : str, float, dict or callable, default=None
        The sampler's strategy (None: the sampler's default);
        ``AddPerClass(PAPER_AUGMENTATION["meld"])`` reproduces Table VI.
    device, random_state, verbose
        Passed to every step.
    **params
        Step parameters in pipeline syntax, e.g. ``clf__gamma=0``, ``fuse__n_components=64``.
    """
    from .classifier import CBERLClassifier
    from .fusion import DJVAE
    from .over_sampling import EmoGANSampler

    common = {"device": device, "verbose": verbose}
    strategy = {} if sampling_strategy is None else {"sampling_strategy": sampling_strategy}
    pipe = CBERLPipeline(
        [
            (
                "aug",
                EmoGANSampler(**common).set_params(**strategy) if augment else "passthrough",
            ),
            ("fuse", DJVAE(**common) if fuse else "passthrough"),
            ("clf", CBERLClassifier(**common)),
        ]
    )
    if random_state is not None:
        from .experiments import set_random_states

        set_random_states(pipe, int(random_state))
    return pipe.set_params(**params)
