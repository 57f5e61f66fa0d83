"""``CBERLStageSearch``: choose CBERL's stages on validation data.

No fixed configuration serves every data set (``docs/stages.md``): the sampler helps where
training starves a class and is inert or harmful elsewhere; the fusion helps on some sets and
loses on others. This estimator fits the candidate configurations (in parallel with joblib, so
``n_jobs`` and joblib's dask backend spread them), scores them on validation data only, and
keeps the simplest one that the validation data cannot tell apart from the best
(:mod:`._rule`).

The search is greedy, in two steps (the full product of sampler ratios and fusions would
cost about twice as many fits; the greedy order can miss a sampler that pays only without
fusion, or the reverse):

1. **fusion**, without a sampler: the classifier alone, and each of ``fusions``;
2. **sampler**, with the fusion chosen in step 1: that configuration (no sampler) and EmoGAN
   at each of ``ratios``.

Why not ``GridSearchCV``: it keeps neither the fitted candidates nor their predictions. The
rule needs the predictions (a paired bootstrap of the gap between two candidates), and with
``validation_data`` the chosen candidate's fit *is* the refit (same data, same seeds), so
keeping it saves one fit - a sixth of the search on MELD text. The splits are scikit-learn's
(``GroupKFold`` by dialogue, or the given validation set), the scores its scorers.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import get_scorer
from sklearn.model_selection import GroupKFold
from sklearn.utils import _safe_indexing
from sklearn.utils.metaestimators import available_if
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import validate_data

from .._config import config_context, get_config
from ..conversation import check_container, dialogue_groups
from ..pipeline import FUSIONS, kept_step_params, make_cberl_pipeline
from ..strategies import UpToRatio
from ._rule import StoredPredictions, choose_within_noise, stored_predictions

__all__ = ["CBERLStageSearch", "describe_config"]


def describe_config(config: dict) -> str:
    """A readable name of a stage configuration (``make_cberl_pipeline`` arguments)."""
    parts = ["classifier"]
    if config.get("augment"):
        parts.append(f"EmoGAN {config['sampling_strategy']}")
    if config.get("fusion") is not None:
        parts.append(f"fusion ({config['fusion'].replace('_', ' ')})")
    return " + ".join(parts)


class _Split(NamedTuple):
    """One training / scoring split of the search."""

    X_fit: object
    y_fit: np.ndarray
    fit_params: dict
    X_scored: object
    y_scored: np.ndarray
    groups_scored: np.ndarray


def _fit_and_predict(model, X, y, fit_params, X_scored, n_threads):
    """Fit one candidate on one split: the fitted model, its outputs on the scored rows and
    the fit time in seconds (a joblib task). ``n_threads``: the caller's package
    configuration, which a worker process would not otherwise see."""
    with config_context(n_threads=n_threads):
        start = time.perf_counter()
        model.fit(X, y, **fit_params)
        seconds = time.perf_counter() - start
        return model, stored_predictions(model, X_scored), seconds


def _pooled(outputs) -> StoredPredictions:
    """One candidate's outputs on every split's scored rows, in split order."""
    probas = [o.proba for o in outputs]
    same = all(p is not None for p in probas) and all(
        np.array_equal(o.classes, outputs[0].classes) for o in outputs
    )
    return StoredPredictions(
        outputs[0].classes,
        np.concatenate([o.predicted for o in outputs]),
        np.concatenate(probas) if same else None,
    )


def _best_so_far(self):
    return hasattr(self, "best_estimator_")


class CBERLStageSearch(ClassifierMixin, BaseEstimator):
    """Fit the CBERL pipeline whose stages earn their place on validation data.

    Candidates (each a :func:`~sklearn_cberl.make_cberl_pipeline` configuration): the
    classifier alone; + each fusion of ``fusions``; then, with the choice of those, + EmoGAN
    at each ratio of ``ratios``. Each is fitted on the training data and scored on the
    validation data: ``validation_data`` when given (one predefined split; the candidates also
    select their epochs on it, as the honest protocol does), else ``cv`` folds of whole
    dialogues. Each step keeps the simplest candidate (in the order above) whose score is
    within ``tolerance`` standard errors of the step's best - a stage must beat the
    validation data's noise to be added. With ``validation_data`` the chosen candidate's fit
    is kept; with folds it is refitted on all the training data. ``predict`` uses it.

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
    tolerance : float, default=1.0
        How many standard errors of the gap to the best (paired bootstrap over validation
        dialogues) a simpler candidate may trail and still be chosen: the one-standard-error
        rule. 0 takes the best score. Fixed a priori, not tuned: docs/selection.md has what
        each rule scored.
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
        1: a line per candidate and per choice; passed to the candidates minus one.

    Attributes
    ----------
    best_config_ : dict
        The chosen ``make_cberl_pipeline`` arguments (``augment``, ``sampling_strategy``,
        ``fusion``).
    best_score_ : float
        Its validation score (mean over folds); not always the highest
        (``tolerance``).
    best_estimator_ : CBERLPipeline
        The chosen configuration fitted on the training data; ``predict`` uses it.
    cv_results_ : dict of lists
        One entry per candidate (``GridSearchCV``'s layout, both steps together):
        ``config`` (a readable name), ``params`` (the configuration), ``stage``
        ("fusion" or "sampler"), ``mean_test_score``, ``std_test_score``,
        ``split<i>_test_score``, ``mean_fit_time``, ``rank_test_score`` (by score alone),
        ``gap_se`` (standard error of its gap to the best of the step that fitted it).
    search_time_, refit_time_ : float
        Seconds spent on the candidates and on the refit (0 with ``validation_data``: the
        search's fit of the choice is kept).
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
        tolerance=1.0,
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
        self.tolerance = tolerance
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
        if not (isinstance(self.tolerance, (int, float)) and self.tolerance >= 0):
            raise ValueError(f"tolerance={self.tolerance!r}: expected a number >= 0.")
        if not isinstance(self.random_state, (int, np.integer)):
            raise ValueError(
                f"random_state={self.random_state!r}: expected an int (the candidates must "
                "share their seeds for the comparison to be about the stages alone)."
            )

    def _splits(self, X, y, validation_data, groups) -> list:
        """The :class:`_Split` list: the validation data when given, else ``cv`` folds of
        whole dialogues."""
        y = np.asarray(y)
        if validation_data is not None:
            if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                raise TypeError("validation_data must be a tuple (X_val, y_val).")
            X_val, y_val = validation_data
            check_container(X_val)
            return [_Split(X, y, {"validation_data": validation_data}, X_val, np.asarray(y_val),
                           dialogue_groups(X_val))]  # fmt: skip
        groups = dialogue_groups(X) if groups is None else np.asarray(groups)
        cv = GroupKFold(self.cv) if isinstance(self.cv, int) else self.cv
        return [
            _Split(_safe_indexing(X, train), y[train], {}, _safe_indexing(X, test), y[test],
                   groups[test])
            for train, test in cv.split(X, y, groups)
        ]  # fmt: skip

    def _fit_candidates(self, configs, splits, stage) -> list:
        """Fit every configuration on every split (joblib, ``n_jobs``); one row each, with
        the fitted models and their outputs on the scored rows."""
        scorer = get_scorer(self.scoring)
        n_threads = get_config()["n_threads"]
        tasks = [(i, split) for i in range(len(configs)) for split in splits]
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_and_predict)(
                self.candidate(configs[i]), split.X_fit, split.y_fit, split.fit_params,
                split.X_scored, n_threads,
            )
            for i, split in tasks
        )  # fmt: skip
        rows = []
        for i, config in enumerate(configs):
            runs = fitted[i * len(splits) : (i + 1) * len(splits)]  # tasks are config-major
            split_scores = [
                scorer(stored, np.arange(len(split.y_scored)), split.y_scored)
                for (_, stored, _), split in zip(runs, splits)
            ]
            row = {
                "config": describe_config(config),
                "params": config,
                "stage": stage,
                "mean_test_score": float(np.mean(split_scores)),
                "std_test_score": float(np.std(split_scores)),
                "mean_fit_time": float(np.mean([seconds for _, _, seconds in runs])),
                **{f"split{k}_test_score": float(s) for k, s in enumerate(split_scores)},
                # Not in cv_results_: the fitted model where it is the choice's final fit
                # (one split: the validation data) and the outputs on every scored row
                # (for the paired bootstrap).
                "_model": runs[0][0] if len(splits) == 1 else None,
                "_outputs": _pooled([stored for _, stored, _ in runs]),
            }
            rows.append(row)
            if self.verbose:
                print(
                    f"[CBERLStageSearch] {stage}: {row['config']}: validation "
                    f"{row['mean_test_score']:.4f} ({row['mean_fit_time']:.0f} s)",
                    flush=True,
                )
        return rows

    def _choose(self, rows, splits, stage) -> dict:
        """The simplest of ``rows`` (in order) within ``tolerance`` standard errors of the
        best (:func:`~._rule.choose_within_noise`); records each row's ``gap_se``."""
        chosen, gap_se = choose_within_noise(
            [row["mean_test_score"] for row in rows], [row["_outputs"] for row in rows],
            np.concatenate([split.y_scored for split in splits]),
            np.concatenate([split.groups_scored for split in splits]),
            self.scoring, self.tolerance, self.random_state,
        )  # fmt: skip
        for row, se in zip(rows, gap_se):
            # The step that fitted the row: the fusion step's choice, compared again in the
            # sampler step as the configuration without a sampler, keeps its first gap.
            row.setdefault("gap_se", float(se))
        if self.verbose:
            print(f"[CBERLStageSearch] {stage}: chose {rows[chosen]['config']}", flush=True)
        return rows[chosen]

    def fit(self, X, y, validation_data=None, groups=None):
        """Fit the candidates, choose on validation data and keep (or refit) the choice.

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
        splits = self._splits(X, y, validation_data, groups)
        plain = {"augment": False, "sampling_strategy": None}
        rows = self._fit_candidates(
            [{**plain, "fusion": None}, *({**plain, "fusion": f} for f in self.fusions)],
            splits,
            "fusion",
        )
        chosen = self._choose(rows, splits, "fusion")
        # A ratio that adds no row (every class already at that share of the majority) is
        # the configuration without the sampler, scored above: not fitted again.
        ratios = [float(r) for r in self.ratios if UpToRatio(float(r))(np.asarray(y))]
        if ratios:
            fusion = chosen["params"]["fusion"]
            configs = [
                {"augment": True, "sampling_strategy": r, "fusion": fusion} for r in ratios
            ]
            sampler_rows = self._fit_candidates(configs, splits, "sampler")
            # Without the sampler (the fusion step's choice) is the simplest candidate.
            chosen = self._choose([chosen, *sampler_rows], splits, "sampler")
            rows += sampler_rows
        self.search_time_ = time.perf_counter() - start
        self.best_config_ = dict(chosen["params"])
        self.best_score_ = chosen["mean_test_score"]
        scores = np.array([r["mean_test_score"] for r in rows])
        ranks = pd.Series(-scores).rank(method="min").astype(int).tolist()
        public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
        keys = sorted({k for r in public for k in r})
        self.cv_results_ = {k: [r.get(k) for r in public] for k in keys}
        self.cv_results_["rank_test_score"] = ranks
        if self.verbose:
            print(f"[CBERLStageSearch] chose {describe_config(self.best_config_)}", flush=True)
        if validation_data is not None:
            # The search's fit of the choice is the refit: same data, same seeds.
            model, self.refit_time_ = chosen["_model"], 0.0
        else:
            start = time.perf_counter()
            model = self.candidate(self.best_config_).fit(X, y)
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
