"""The honest experiment protocol: fit on train, select on validation, test once, over seeds.

Many MERC papers report the best *test* epoch or the best test run; that inflates the numbers
by choosing on the test set. Here every choice (hyper-parameters, pipeline variants, and the
classifier's early-stopping epoch, which uses a dialogue-level split of the *training* data)
is made without looking at the test split, which is scored exactly once per seed, and results
are reported as mean +/- std over seeds.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from .metrics import emotion_report, weighted_f1

__all__ = [
    "ProtocolResult",
    "run_protocol",
    "fit_with_validation",
    "set_random_states",
    "mean_std",
    "markdown_table",
]


def _accepts_validation(estimator) -> bool:
    return "validation_data" in inspect.signature(estimator.fit).parameters


def fit_with_validation(estimator, X, y, X_valid, y_valid):
    """Fit, letting the final classifier select its epoch on ``(X_valid, y_valid)``.

    A Pipeline is fitted as a :class:`~sklearn_cberl.pipeline.CBERLPipeline` over the same
    step objects (so ``estimator`` itself ends up fitted): the validation split reaches the
    final step through the fitted earlier transformers. Estimators without
    ``validation_data`` are fitted normally.
    """
    from .pipeline import CBERLPipeline

    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    if not _accepts_validation(final):
        return estimator.fit(X, y)
    if steps and not isinstance(estimator, CBERLPipeline):
        # No cloning without memory: fitting this view fits estimator's own steps.
        CBERLPipeline(steps, verbose=estimator.verbose).fit(
            X, y, validation_data=(X_valid, y_valid)
        )
        return estimator
    return estimator.fit(X, y, validation_data=(X_valid, y_valid))


def set_random_states(estimator, seed: int):
    """Set every ``random_state`` parameter of a (nested) estimator to a seed-derived value.

    Steps get distinct seeds (``seed * 1000 + i``) so that, e.g., a sampler and a classifier
    in one pipeline do not share a random stream by accident.
    """
    keys = sorted(k for k in estimator.get_params(deep=True) if k.endswith("random_state"))
    estimator.set_params(**{k: seed * 1000 + i for i, k in enumerate(keys)})
    return estimator


def mean_std(values, digits: int = 2) -> str:
    """``"mean ± std"`` of a sequence (population std over seeds, ``ddof=0``)."""
    values = np.asarray(list(values), dtype=float)
    return f"{values.mean():.{digits}f} ± {values.std():.{digits}f}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of a DataFrame (index included)."""
    frame = frame.reset_index()
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


@dataclass
class ProtocolResult:
    """Per-seed outcomes of :func:`run_protocol` and their mean +/- std summary.

    Attributes
    ----------
    name : str
    runs : list of dict
        One dict per seed: ``seed``, ``params`` (chosen on validation), ``valid_waf1``,
        ``fit_time`` (s, the chosen candidate), ``report`` (the test
        :func:`~sklearn_cberl.metrics.emotion_report`), ``y_pred`` (test predictions).
    labels : list
    """

    name: str
    runs: list = field(default_factory=list)
    labels: list = field(default_factory=list)

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
    param_grid : dict or list of dicts, default=None
        Candidates for :class:`~sklearn.model_selection.ParameterGrid`; None = one candidate.
    seeds : iterable of int, default=(0, 1, 2)
    labels : sequence, default=None
        Classes for the report (default: the classes of ``y_train``).
    verbose : int, default=0
        Print one line per fit when > 0.
    """
    labels = list(np.unique(data["y_train"]) if labels is None else labels)
    result = ProtocolResult(name=name, labels=labels)
    candidates = list(ParameterGrid(param_grid or {}))
    for seed in seeds:
        best = None
        for params in candidates:
            model = set_random_states(clone(estimator).set_params(**params), seed)
            start = time.perf_counter()
            fit_with_validation(
                model, data["X_train"], data["y_train"], data["X_valid"], data["y_valid"]
            )
            fit_time = time.perf_counter() - start
            score = weighted_f1(data["y_valid"], model.predict(data["X_valid"]))
            if verbose:
                print(
                    f"[{name}] seed={seed} {params} valid WAF1={100 * score:.2f} ({fit_time:.1f}s)"
                )
            if best is None or score > best[0]:
                best = (score, params, model, fit_time)
        score, params, model, fit_time = best
        y_pred = np.asarray(model.predict(data["X_test"]))  # the single look at the test split
        result.runs.append(
            {
                "seed": seed,
                "params": params,
                "valid_waf1": float(100 * score),
                "fit_time": fit_time,
                "report": emotion_report(data["y_test"], y_pred, labels=labels),
                "y_pred": y_pred,
                "model": model,
            }
        )
    return result


def summary_table(results: Iterable[ProtocolResult], columns: Iterable[str]) -> pd.DataFrame:
    """Rows = models, columns = summary keys, cells = ``mean ± std`` strings."""
    rows = {}
    for res in results:
        summary = res.summary()
        rows[res.name] = {
            c: f"{summary[c]['mean']:.2f} ± {summary[c]['std']:.2f}"
            for c in columns
            if c in summary
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def write_results(results: Iterable[ProtocolResult], path, *, extra: Mapping | None = None) -> None:
    """Write the JSON of several results (and extra metadata) to ``path``."""
    payload = {"results": [r.to_json() for r in results], **(extra or {})}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=str))
