"""The protocol itself: fit with validation, select on validation, test once per seed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from .._params import accepts_validation_data, set_random_states  # set_random_states: re-exported
from ..metrics import emotion_report, weighted_f1

__all__ = [
    "ProtocolResult",
    "fit_with_validation",
    "make_run",
    "run_protocol",
    "select_on_validation",
    "set_random_states",
]


def fit_with_validation(estimator, X, y, X_valid, y_valid):
    """Fit, letting the final classifier select its epoch on ``(X_valid, y_valid)``.

    A Pipeline is fitted as a :class:`~sklearn_cberl.pipeline.CBERLPipeline` over the same
    step objects (so ``estimator`` itself ends up fitted): the validation split reaches the
    final step through the fitted earlier transformers. Estimators without
    ``validation_data`` are fitted normally.

    Parameters
    ----------
    estimator : estimator or Pipeline
    X, y : training data
    X_valid, y_valid : validation data

    Returns
    -------
    estimator
        ``estimator``, fitted.
    """
    from ..pipeline import CBERLPipeline

    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    if not accepts_validation_data(final):
        return estimator.fit(X, y)
    if steps and not isinstance(estimator, CBERLPipeline):
        # No cloning without memory: fitting this view fits estimator's own steps.
        CBERLPipeline(steps, verbose=estimator.verbose).fit(
            X, y, validation_data=(X_valid, y_valid)
        )
        return estimator
    return estimator.fit(X, y, validation_data=(X_valid, y_valid))


def select_on_validation(
    candidates: Iterable, X, y, X_valid, y_valid, *, on_fit: Callable | None = None
) -> tuple:
    """Fit every candidate (:func:`fit_with_validation`); keep the best validation WAF1.

    Parameters
    ----------
    candidates : iterable of (key, estimator)
        Unfitted estimators, fitted in order (a generator builds each one only when its turn
        comes); ``key`` names it in the result (e.g. its grid parameters).
    X, y : training data
    X_valid, y_valid : validation data
    on_fit : callable, default=None
        Called as ``on_fit(key, score, fit_time)`` after each fit (progress lines).

    Returns
    -------
    tuple
        ``(score, key, estimator, fit_time)`` of the best candidate; the first one wins a tie.
        ``score`` is the validation WAF1 as a fraction, ``fit_time`` in seconds.
    """
    best = None
    for key, model in candidates:
        start = time.perf_counter()
        fit_with_validation(model, X, y, X_valid, y_valid)
        fit_time = time.perf_counter() - start
        score = weighted_f1(y_valid, model.predict(X_valid))
        if on_fit is not None:
            on_fit(key, score, fit_time)
        if best is None or score > best[0]:
            best = (score, key, model, fit_time)
    return best


def make_run(seed, y_test, y_pred, labels, *, params, valid_waf1, fit_time, model=None) -> dict:
    """One seed's record in :attr:`ProtocolResult.runs` (the test report computed here).

    Parameters
    ----------
    seed : int
    y_test, y_pred : array-like
        Test labels and the single test prediction of the chosen model.
    labels : sequence
        Classes of the report.
    params : dict
        Parameters of the chosen model.
    valid_waf1 : float or None
        Its validation WAF1 in %, None where no selection was made on it.
    fit_time : float
        Seconds.
    model : estimator, default=None
        The fitted model, kept in the record when given.

    Returns
    -------
    dict
    """
    y_pred = np.asarray(y_pred)
    run = {
        "seed": seed,
        "params": params,
        "valid_waf1": valid_waf1,
        "fit_time": fit_time,
        "report": emotion_report(y_test, y_pred, labels=labels),
        "y_pred": y_pred,
    }
    if model is not None:
        run["model"] = model
    return run


@dataclass
class ProtocolResult:
    """Per-seed outcomes of :func:`run_protocol` and their mean +/- std summary.

    Attributes
    ----------
    name : str
    runs : list of dict
        One dict per seed (:func:`make_run`): ``seed``, ``params`` (chosen on validation),
        ``valid_waf1``, ``fit_time`` (s, the chosen candidate), ``report`` (the test
        :func:`~sklearn_cberl.metrics.emotion_report`), ``y_pred`` (test predictions), and
        ``model`` where kept.
    labels : list
    errors : list of str
        Seeds whose fit failed, with the reason (the reproduction records and reports them
        instead of stopping).
    """

    name: str
    runs: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    errors: list = field(default_factory=list)

    def metric(self, row: str, column: str) -> np.ndarray:
        """One report cell over seeds, e.g. ``metric("weighted", "f1")`` = WAF1 per seed."""
        return np.array([run["report"].loc[row, column] for run in self.runs])

    def summary(self, classes: Iterable | None = None) -> dict:
        """Mean and std over seeds of WAA, WAF1, macro-F1 and per-class F1."""
        out = {"name": self.name, "n_seeds": len(self.runs)}
        cells = {
            "WAA": ("weighted", "acc"),
            "WAF1": ("weighted", "f1"),
            "macro-F1": ("macro", "f1"),
        }
        for c in classes if classes is not None else self.labels:
            cells[f"F1 {c}"] = (str(c), "f1")
            cells[f"Acc {c}"] = (str(c), "acc")
        for key, (row, column) in cells.items():
            values = self.metric(row, column)
            out[key] = {"mean": float(values.mean()), "std": float(values.std())}
        fit = np.array([run["fit_time"] for run in self.runs])
        out["fit_time_s"] = {"mean": float(fit.mean()), "std": float(fit.std())}
        return out

    def to_json(self) -> dict:
        """The summary and the per-seed runs (without predictions and models) as JSON data."""
        return {
            "name": self.name,
            "labels": [str(c) for c in self.labels],
            "summary": self.summary(),
            "runs": [
                {
                    "seed": run["seed"],
                    "params": {k: repr(v) for k, v in run["params"].items()},
                    "valid_waf1": run["valid_waf1"],
                    "fit_time": run["fit_time"],
                    "report": run["report"].reset_index().to_dict(orient="list"),
                }
                for run in self.runs
            ],
        }


def run_protocol(
    estimator,
    data: Mapping,
    *,
    name: str = "model",
    param_grid: Mapping | list | None = None,
    seeds: Iterable[int] = (0, 1, 2),
    labels=None,
    verbose: int = 0,
) -> ProtocolResult:
    """Fit on train, pick the best grid candidate on validation WAF1, score test once per seed.

    A final step that accepts ``validation_data`` (``CBERLClassifier``) also selects its
    epoch on the validation split (:func:`fit_with_validation`).

    Parameters
    ----------
    estimator : estimator or Pipeline
        Cloned for every seed and candidate; every ``random_state`` is set from the seed.
    data : mapping
        ``X_train, y_train, X_valid, y_valid, X_test, y_test`` (the loaders' Bunch).
    name : str, default="model"
        Name of the result (row of the summary tables).
    param_grid : dict or list of dicts, default=None
        Candidates for :class:`~sklearn.model_selection.ParameterGrid`; None = one candidate.
    seeds : iterable of int, default=(0, 1, 2)
    labels : sequence, default=None
        Classes for the report (default: the classes of ``y_train``).
    verbose : int, default=0
        Print one line per fit when > 0.

    Returns
    -------
    ProtocolResult
    """
    labels = list(np.unique(data["y_train"]) if labels is None else labels)
    result = ProtocolResult(name=name, labels=labels)
    grid = list(ParameterGrid(param_grid or {}))
    for seed in seeds:

        def report(params, score, fit_time, seed=seed):
            if verbose:
                print(
                    f"[{name}] seed={seed} {params} valid WAF1={100 * score:.2f} ({fit_time:.1f}s)"
                )

        candidates = (
            (params, set_random_states(clone(estimator).set_params(**params), seed))
            for params in grid
        )
        score, params, model, fit_time = select_on_validation(
            candidates,
            data["X_train"],
            data["y_train"],
            data["X_valid"],
            data["y_valid"],
            on_fit=report,
        )
        y_pred = model.predict(data["X_test"])  # the single look at the test split
        result.runs.append(
            make_run(
                seed,
                data["y_test"],
                y_pred,
                labels,
                params=params,
                valid_waf1=float(100 * score),
                fit_time=fit_time,
                model=model,
            )
        )
    return result
