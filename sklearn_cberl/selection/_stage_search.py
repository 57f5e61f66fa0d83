"""``CBERLStageSearch``: choose CBERL's stages on validation data, as a scikit-learn search.

No fixed configuration serves every data set (``docs/stages.md``): the sampler helps where
training starves a class and is inert or harmful elsewhere; the fusion helps on some sets and
loses on others. This estimator fits the candidate configurations with scikit-learn's
:class:`~sklearn.model_selection.GridSearchCV` (so ``n_jobs`` and joblib's dask backend
parallelise them), scores them on validation data only, and refits the best one.

The search is greedy, in two grids (the full product of sampler ratios and fusions would
cost about twice as many fits; the greedy order can miss a sampler that pays only without
fusion, or the reverse):

1. **fusion**, without a sampler: the classifier alone, and each of ``fusions``;
2. **sampler**, with the fusion chosen in step 1: EmoGAN at each of ``ratios``.

The best candidate of both grids (ties: the first, i.e. the simpler configuration) is refitted
on the training data. With ``validation_data`` that refit repeats the very fit the search
scored (same data, same seeds): ``GridSearchCV`` does not keep its fitted candidates, so one
fit is done twice (about a sixth of the search's cost).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GridSearchCV, GroupKFold, PredefinedSplit
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import validate_data

from ..conversation import DIALOGUE, check_container
from ..pipeline import FUSIONS, kept_step_params, make_cberl_pipeline
from ..strategies import UpToRatio

__all__ = ["CBERLStageSearch", "describe_config"]


def describe_config(config: dict) -> str:
    """A readable name of a stage configuration (``make_cberl_pipeline`` arguments)."""
    parts = ["classifier"]
    if config.get("augment"):
        parts.append(f"EmoGAN {config['sampling_strategy']}")
    if config.get("fusion") is not None:
        parts.append(f"fusion ({config['fusion'].replace('_', ' ')})")
    return " + ".join(parts)


def _steps(pipeline) -> dict:
    """A grid point that puts a pipeline's steps in place of the template's."""
    return {name: [step] for name, step in pipeline.steps}


def _best_so_far(self):
    return hasattr(self, "best_estimator_")


class CBERLStageSearch(ClassifierMixin, BaseEstimator):
    """Fit the CBERL pipeline whose stages score best on validation data.

    Candidates (each a :func:`~sklearn_cberl.make_cberl_pipeline` configuration): the
    classifier alone; + each fusion of ``fusions``; then, with the best of those, + EmoGAN
    at each ratio of ``ratios``. Each is fitted on the training data and scored on the
    validation data: ``validation_data`` when given (one predefined split; the candidates also
    select their epochs on it, as the honest protocol does), else ``cv`` folds of whole
    dialogues. The best is refitted and used by ``predict``.

    Parameters
    ----------
    ratios : sequence of float, default=(0.1, 0.25, 0.5)
        EmoGAN ``sampling_strategy`` values tried (every class raised to that share of the
        majority); empty: no sampler candidates. A ratio that adds no row to the training
        data (every class already at that share) is not fitted: it is the configuration
        without the sampler.
    fusions : sequence of {"end_to_end", "separate"}, default=("end_to_end",)
        Fusions tried (``make_cberl_pipeline(fusion=...)``); empty: none. ``"separate"``
        is not tried by default: on the validation splits of every data set measured it
        scored below ``"end_to_end"`` (docs/fusion.md), and each candidate costs a fit.
    scoring : str or callable, default="f1_weighted"
        scikit-learn scorer: the weighted F1 (WAF1) by default; ``"f1_macro"`` weighs every
        emotion equally, for users who care most about the rare ones.
    cv : int or cross-validation splitter, default=3
        Folds (by dialogue, :class:`~sklearn.model_selection.GroupKFold`) when ``fit`` gets
        no ``validation_data``.
    n_jobs : int, default=None
        Candidates (and folds) fitted in parallel (joblib); each fit uses the package's
        ``n_threads`` torch threads (1 by default), so ``n_jobs`` = the cores to use.
    params : dict, default=None
        Pipeline parameters applied to every candidate that has the step, e.g.
        ``{"clf__max_epochs": 30, "aug__max_epochs": 10}``.
    device : str, default="auto"
    random_state : int, default=0
        Seeds every candidate (:func:`~sklearn_cberl.make_cberl_pipeline`'s seeds per step:
        a step gets the same seed in every candidate).
    verbose : int, default=0
        1: a line per grid and the choice; passed to the candidates minus one.

    Attributes
    ----------
    best_config_ : dict
        The chosen ``make_cberl_pipeline`` arguments (``augment``, ``sampling_strategy``,
        ``fusion``).
    best_score_ : float
        Its validation score (mean over folds).
    best_estimator_ : CBERLPipeline
        The chosen configuration refitted on the training data; ``predict`` uses it.
    cv_results_ : dict of lists
        One entry per candidate (``GridSearchCV``'s layout for both grids together):
        ``config`` (a readable name), ``params`` (the configuration), ``stage``
        ("fusion" or "sampler"), ``mean_test_score``, ``std_test_score``,
        ``split<i>_test_score``, ``mean_fit_time``, ``rank_test_score``.
    search_time_, refit_time_ : float
        Seconds spent on the grids and on the refit.
    classes_ : ndarray
        The labels, from the refitted model.
    n_features_in_, feature_names_in_ : int, ndarray of str
        Columns of ``X`` seen in ``fit``.
    """

    def __init__(
        self,
        *,
        ratios=(0.1, 0.25, 0.5),
        fusions=("end_to_end",),
        scoring="f1_weighted",
        cv=3,
        n_jobs=None,
        params=None,
        device="auto",
        random_state=0,
        verbose=0,
    ):
        self.ratios = ratios
        self.fusions = fusions
        self.scoring = scoring
        self.cv = cv
        self.n_jobs = n_jobs
        self.params = params
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def candidate(self, config: dict):
        """The unfitted pipeline of a configuration, seeded and configured as in the search:
        ``search.candidate(search.best_config_)`` fitted directly equals ``best_estimator_``.
        """
        verbose = max(0, int(self.verbose) - 1)
        pipe = make_cberl_pipeline(
            **config, device=self.device, random_state=self.random_state, verbose=verbose
        )
        return pipe.set_params(**kept_step_params(pipe, self.params))

    def _check(self):
        bad = [f for f in self.fusions if f not in FUSIONS or f is None]
        if bad:
            raise ValueError(f"fusions={self.fusions!r}: expected values among 'separate', "
                             "'end_to_end'.")  # fmt: skip
        bad = [r for r in self.ratios if not (isinstance(r, (int, float)) and 0 < r <= 1)]
        if bad:
            raise ValueError(f"ratios={self.ratios!r}: expected floats in (0, 1].")
        if not isinstance(self.random_state, (int, np.integer)):
            raise ValueError(
                f"random_state={self.random_state!r}: expected an int (the candidates must "
                "share their seeds for the comparison to be about the stages alone)."
            )

    def _splits(self, X, y, validation_data, groups):
        """Data, splitter, groups and fit parameters of the grids."""
        if validation_data is not None:
            if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                raise TypeError("validation_data must be a tuple (X_val, y_val).")
            X_val, y_val = validation_data
            check_container(X_val)
            if isinstance(X, pd.DataFrame):
                X_all = pd.concat([X, X_val], ignore_index=True)
            else:
                X_all = np.concatenate([np.asarray(X), np.asarray(X_val)])
            y_all = np.concatenate([np.asarray(y), np.asarray(y_val)])
            fold = np.r_[np.full(len(y), -1), np.zeros(len(y_val), dtype=int)]
            return X_all, y_all, PredefinedSplit(fold), None, {"validation_data": validation_data}
        if groups is None:
            groups = X[DIALOGUE] if isinstance(X, pd.DataFrame) and DIALOGUE in X else None
            groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        cv = GroupKFold(self.cv) if isinstance(self.cv, int) else self.cv
        return X, np.asarray(y), cv, groups, {}

    def _grid(self, configs, data, stage):
        X_all, y_all, cv, groups, fit_params = data
        template = self.candidate(configs[0])
        grid = [_steps(self.candidate(config)) for config in configs]
        search = GridSearchCV(
            template, grid, scoring=self.scoring, cv=cv, n_jobs=self.n_jobs, refit=False,
            error_score="raise",
        )  # fmt: skip
        search.fit(X_all, y_all, groups=groups, **fit_params)
        results = search.cv_results_
        n_splits = search.n_splits_
        rows = []
        for i, config in enumerate(configs):
            row = {
                "config": describe_config(config),
                "params": config,
                "stage": stage,
                "mean_test_score": float(results["mean_test_score"][i]),
                "std_test_score": float(results["std_test_score"][i]),
                "mean_fit_time": float(results["mean_fit_time"][i]),
            }
            for k in range(n_splits):
                row[f"split{k}_test_score"] = float(results[f"split{k}_test_score"][i])
            rows.append(row)
            if self.verbose:
                print(
                    f"[CBERLStageSearch] {stage}: {row['config']}: validation "
                    f"{row['mean_test_score']:.4f} ({row['mean_fit_time']:.0f} s)",
                    flush=True,
                )
        return rows

    def fit(self, X, y, validation_data=None, groups=None):
        """Run the two grids on validation data and refit the best configuration.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Training utterances (a conversation frame or a plain table).
        y : array-like of shape (n_samples,)
        validation_data : tuple (X_val, y_val), default=None
            Validation utterances: one predefined split. Without it, ``cv`` folds of the
            training dialogues.
        groups : array-like, default=None
            Dialogue of each row for the folds (default: the ``dialogue_id`` column).

        Returns
        -------
        self
        """
        self._check()
        self.__dict__.pop("best_estimator_", None)
        validate_data(self, check_container(X), skip_check_array=True)
        start = time.perf_counter()
        data = self._splits(X, y, validation_data, groups)
        plain = {"augment": False, "sampling_strategy": None}
        rows = self._grid(
            [{**plain, "fusion": None}, *({**plain, "fusion": f} for f in self.fusions)],
            data,
            "fusion",
        )
        # The first of equal scores wins: the simpler configuration.
        fusion = rows[int(np.argmax([r["mean_test_score"] for r in rows]))]["params"]["fusion"]
        # A ratio that adds no row (every class already at that share of the majority) is
        # the configuration without the sampler, scored above: not fitted again.
        ratios = [float(r) for r in self.ratios if UpToRatio(float(r))(np.asarray(y))]
        if ratios:
            configs = [
                {"augment": True, "sampling_strategy": r, "fusion": fusion} for r in ratios
            ]
            rows += self._grid(configs, data, "sampler")
        self.search_time_ = time.perf_counter() - start
        scores = np.array([r["mean_test_score"] for r in rows])
        best = int(np.argmax(scores))
        self.best_config_ = dict(rows[best]["params"])
        self.best_score_ = float(scores[best])
        ranks = pd.Series(-scores).rank(method="min").astype(int).tolist()
        keys = sorted({k for r in rows for k in r})
        self.cv_results_ = {k: [r.get(k) for r in rows] for k in keys}
        self.cv_results_["rank_test_score"] = ranks
        if self.verbose:
            print(f"[CBERLStageSearch] chose {describe_config(self.best_config_)}", flush=True)
        start = time.perf_counter()
        model = self.candidate(self.best_config_)
        if validation_data is not None:
            model.fit(X, y, validation_data=validation_data)
        else:
            model.fit(X, y)
        self.refit_time_ = time.perf_counter() - start
        self.best_estimator_ = model
        self.classes_ = model.classes_
        return self

    def __sklearn_is_fitted__(self):
        return hasattr(self, "best_estimator_")

    @available_if(_best_so_far)
    def predict(self, X):
        """Labels from the refitted best configuration (input row order)."""
        return self.best_estimator_.predict(X)

    @available_if(_best_so_far)
    def predict_proba(self, X):
        """Class probabilities from the refitted best configuration."""
        return self.best_estimator_.predict_proba(X)
