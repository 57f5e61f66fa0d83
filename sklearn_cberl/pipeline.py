"""The full CBERL system as one imbalanced-learn Pipeline: augment -> fuse -> classify."""

from __future__ import annotations

from imblearn.pipeline import Pipeline

from ._params import accepts_validation_data, set_random_states

__all__ = ["FUSIONS", "CBERLPipeline", "kept_step_params", "make_cberl_pipeline"]


class CBERLPipeline(Pipeline):
    """imbalanced-learn's :class:`~imblearn.pipeline.Pipeline` that can route a validation set.

    ``fit(X, y, validation_data=(X_val, y_val))`` fits the steps as ``Pipeline.fit`` does and
    hands the final step ``validation_data`` with ``X_val`` sent through the *fitted*
    earlier transformers (samplers are skipped, as at predict time), so the classifier
    selects its epoch on validation features of the same kind as its training features.
    Earlier steps whose ``fit`` takes ``validation_data`` (:class:`~sklearn_cberl.DJVAE`)
    receive it too, transformed by the steps before them.
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
            # Earlier steps that can use it (DJVAE: validation loss, early stopping) too.
            for name, step in self.steps[:-1]:
                if accepts_validation_data(step):
                    params.setdefault(f"{name}__validation_data", validation_data)
        return super().fit(X, y, **params)

    def _get_metadata_for_step(self, *, step_idx, step_params, all_params):
        # The hook Pipeline.fit uses to transform fit parameters (``transform_input``) before
        # they reach a step: here it transforms the X of the final step's validation_data.
        step_params = super()._get_metadata_for_step(
            step_idx=step_idx, step_params=step_params, all_params=all_params
        )
        fit_params = step_params.get("fit", {})
        if fit_params.get("validation_data") is None:
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


def kept_step_params(pipe, params: dict) -> dict:
    """The ``<step>__<param>`` entries of ``params`` whose step ``pipe`` keeps (not
    ``"passthrough"``): shared settings such as ``fuse__max_epochs`` apply to the
    configurations that have the step and are ignored by the others."""
    kept = {name for name, step in pipe.steps if step != "passthrough"}
    return {k: v for k, v in (params or {}).items() if k.split("__")[0] in kept}


#: ``make_cberl_pipeline(fusion=...)`` values: where the modalities are fused.
FUSIONS = ("separate", "end_to_end", None)


def make_cberl_pipeline(
    *,
    augment=True,
    fusion="end_to_end",
    sampling_strategy=None,
    device="auto",
    random_state=None,
    verbose=0,
    **params,
) -> CBERLPipeline:
    """Build ``CBERLPipeline([("aug", EmoGANSampler), ("fuse", ...), ("clf", CBERLClassifier)])``.

    Every component starts at its defaults (the paper's hyper-parameters where they were not
    measured to be worse, Sec. V-D); every ablation of Tables III-V is a parameter or a
    ``"passthrough"`` step, so ``GridSearchCV`` can produce the ablation tables::

        {"aug": ["passthrough", EmoGANSampler(), SMOTE()],
         "clf__fusion": [None, DJVAE()],  # or "fuse" on a fusion="separate" pipeline
         "clf__gamma": [0, 3], "clf__mask_rate": [0, 0.2],
         "clf__ensemble": ["mlp", "adaboost"]}

    Parameters
    ----------
    augment : bool, default=True
        Include the EmoGAN over-sampler (else the ``aug`` step is ``"passthrough"``).
    fusion : {"end_to_end", "separate", None}, default="end_to_end"
        Where the modalities are fused. ``"end_to_end"``: no ``fuse`` step, the classifier
        trains a DJVAE inside its network (``CBERLClassifier(fusion=DJVAE(),
        pretrain_fusion=True)``: the DJVAE is fitted alone first, then trained with the
        network as a whole); ``"separate"``: a DJVAE step (``fuse``) before the classifier,
        whose latent the classifier sees (the paper's two-stage reading); None: the
        classifier sees the concatenated modalities (the paper's "without feature fusion"
        ablation). ``"end_to_end"`` is the default because it scored at least as well as
        the other two on the validation splits of every data set measured
        (docs/fusion.md).
    sampling_strategy : str, float, dict or callable, default=None
        The sampler's strategy (None: the sampler's default);
        ``AddPerClass(PAPER_AUGMENTATION["meld"])`` reproduces Table VI.
    device, random_state, verbose
        Passed to every step (``random_state``: a seed per step that depends only on the
        seed and the step, so a configuration gets the same seeds whatever steps it has;
        ``verbose``: also the pipeline's line with each step's time).
    **params
        Step parameters in pipeline syntax, e.g. ``clf__gamma=0``,
        ``clf__fusion__n_components=64`` (``fuse__n_components=64`` with ``"separate"``).
    """
    from .classifier import CBERLClassifier
    from .fusion import DJVAE
    from .over_sampling import EmoGANSampler

    if fusion not in FUSIONS:
        raise ValueError(f"fusion={fusion!r}: expected one of {list(FUSIONS)}.")
    common = {"device": device, "verbose": verbose}
    strategy = {} if sampling_strategy is None else {"sampling_strategy": sampling_strategy}
    classifier = CBERLClassifier(**common)
    if fusion == "end_to_end":
        classifier.set_params(fusion=DJVAE(**common), pretrain_fusion=True)
    pipe = CBERLPipeline(
        [
            (
                "aug",
                EmoGANSampler(**common).set_params(**strategy) if augment else "passthrough",
            ),
            ("fuse", DJVAE(**common) if fusion == "separate" else "passthrough"),
            ("clf", classifier),
        ],
        verbose=bool(verbose),  # with the steps' epoch lines, each step's time
    )
    if random_state is not None:
        set_random_states(pipe, int(random_state))
    return pipe.set_params(**params)
