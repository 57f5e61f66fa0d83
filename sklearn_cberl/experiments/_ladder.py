"""The stage ladder on the user's own data: which CBERL stage helps, measured honestly.

Each rung is a :func:`~sklearn_cberl.make_cberl_pipeline` configuration, fitted on the
training data with the validation data for epoch selection, for every seed; it is scored on
the validation data and, only when a test set is given, once on the test data. The
``selected`` rung is :class:`~sklearn_cberl.CBERLStageSearch`'s rule applied to the ladder's
own fits: per seed, the first rung (in the ladder's order, simplest first) whose validation
score is within ``tolerance`` standard errors of the best (its test score is reported, never
used to choose). ``cberl ladder`` runs it from CSV files.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.metrics import get_scorer

from .._config import config_context, get_config
from ..conversation import dialogue_groups
from ..selection._rule import choose_within_noise, stored_predictions

__all__ = ["LADDER", "check_rungs", "ladder_summary", "plot_ladder", "run_ladder"]

#: The rungs: name -> ``make_cberl_pipeline`` arguments. The sampler rungs have no fusion
#: so that they measure the sampler alone.
LADDER = {
    "classifier": {"augment": False, "fusion": None},
    "+ fusion (separate)": {"augment": False, "fusion": "separate"},
    "+ fusion (end to end)": {"augment": False, "fusion": "end_to_end"},
    "+ EmoGAN 0.1": {"sampling_strategy": 0.1, "fusion": None},
    "+ EmoGAN 0.25": {"sampling_strategy": 0.25, "fusion": None},
    "+ EmoGAN 0.5": {"sampling_strategy": 0.5, "fusion": None},
    "default pipeline": {},
}


def _fit_one(rung, config, seed, data, scoring, params, device, n_threads):
    """Fit one rung for one seed; its validation (and test) scores. Runs in a worker, with
    the caller's ``n_threads`` (a worker process would not otherwise see it)."""
    from ..pipeline import kept_step_params, make_cberl_pipeline

    X, y, X_val, y_val, X_test, y_test = data
    model = make_cberl_pipeline(**config, device=device, random_state=seed)
    model.set_params(**kept_step_params(model, params))
    with config_context(n_threads=n_threads):
        start = time.perf_counter()
        model.fit(X, y, validation_data=(X_val, y_val))
        fit_time = time.perf_counter() - start
        scorer = get_scorer(scoring)
        outputs = stored_predictions(model, X_val)
        valid = scorer(outputs, np.arange(len(y_val)), np.asarray(y_val))
        row = {"rung": rung, "seed": seed, "valid": 100 * valid}
        if X_test is not None:
            row["test"] = 100 * scorer(model, X_test, y_test)
    row["fit_time"] = fit_time
    row["_outputs"] = outputs  # for the selection rule's bootstrap, dropped after it
    return row


def _select(frame, names, y_valid, groups, scoring, tolerance) -> pd.DataFrame:
    """Per seed, the row of the rung :func:`~sklearn_cberl.selection._rule.choose_within_noise`
    takes (rungs in ``names`` order, simplest first), renamed ``selected``."""
    picks = []
    for seed, rows in frame.groupby("seed", sort=True):
        rows = rows.set_index("rung").loc[[n for n in names if n in set(rows["rung"])]]
        chosen, _ = choose_within_noise(rows["valid"].to_numpy(), list(rows["_outputs"]),
                                        y_valid, groups, scoring, tolerance, int(seed))  # fmt: skip
        picks.append(rows.iloc[[chosen]].reset_index().assign(
            chosen=rows.index[chosen], rung="selected"))  # fmt: skip
    return pd.concat(picks, ignore_index=True)


def check_rungs(rungs) -> list:
    """The rung names to run (None: all of :data:`LADDER`); ValueError naming unknown ones."""
    names = list(LADDER) if rungs is None else list(rungs)
    unknown = [n for n in names if n not in LADDER]
    if unknown:
        raise ValueError(f"Unknown rung(s) {unknown}: expected among {list(LADDER)}.")
    return names


def run_ladder(
    X,
    y,
    X_valid,
    y_valid,
    X_test=None,
    y_test=None,
    *,
    rungs=None,
    seeds=(0, 1, 2),
    scoring="f1_weighted",
    tolerance=1.0,
    params=None,
    n_jobs=1,
    device="auto",
    log=None,
) -> pd.DataFrame:
    """Fit every rung of the ladder for every seed; one row per (rung, seed).

    Parameters
    ----------
    X, y : training data
    X_valid, y_valid : validation data (epoch selection and the rungs' comparison)
    X_test, y_test : test data, default=None
        Scored once per fit; never used to choose.
    rungs : sequence of str, default=None
        Names of :data:`LADDER` (None: all of them).
    seeds : sequence of int, default=(0, 1, 2)
    scoring : str, default="f1_weighted"
        A scikit-learn scorer name (``"f1_macro"`` weighs every emotion equally); scores
        are reported in percent.
    tolerance : float, default=1.0
        The ``selected`` rung's rule (:class:`~sklearn_cberl.CBERLStageSearch`): the first
        rung within this many standard errors of the best validation score.
    params : dict, default=None
        Pipeline parameters for every rung that has the step (e.g. ``clf__max_epochs``).
    n_jobs : int, default=1
        Fits run side by side (joblib processes; each fit uses the package's ``n_threads``).
    device : str, default="auto"
    log : callable, default=None
        Called with a progress line (and an estimate of the time left) after each fit.

    Returns
    -------
    DataFrame
        ``rung``, ``seed``, ``valid``, ``test`` (with a test set), ``fit_time``; the
        ``selected`` rows at the end (per seed, the rung the rule chose, named in
        ``chosen``).
    """
    from joblib import Parallel, delayed

    names = check_rungs(rungs)
    data = (X, y, X_valid, y_valid, X_test, y_test)
    tasks = [(name, seed) for seed in seeds for name in names]
    params = dict(params or {})
    start = time.perf_counter()
    rows = []
    parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    jobs = (
        delayed(_fit_one)(name, dict(LADDER[name]), seed, data, scoring, params, device,
                          get_config()["n_threads"])
        for name, seed in tasks
    )
    for row in parallel(jobs):
        rows.append(row)
        if log is not None:
            elapsed = time.perf_counter() - start
            left = elapsed / len(rows) * (len(tasks) - len(rows))
            test = f", test {row['test']:.2f}" if "test" in row else ""
            log(
                f"[ladder {len(rows)}/{len(tasks)}] {row['rung']} seed {row['seed']}: "
                f"validation {row['valid']:.2f}{test} ({row['fit_time']:.0f} s; "
                f"about {left / 60:.0f} min left)"
            )
    frame = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(names)}
    frame = frame.sort_values(["seed", "rung"], key=lambda c: c.map(order) if c.name == "rung"
                              else c).reset_index(drop=True)  # fmt: skip
    groups = dialogue_groups(X_valid)
    selected = _select(frame, names, np.asarray(y_valid), groups, scoring, tolerance)
    return pd.concat([frame, selected], ignore_index=True).drop(columns="_outputs")


def ladder_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per rung (in the ladder's order), with which rung the
    ``selected`` row chose for each seed."""
    columns = [c for c in ("valid", "test", "fit_time") if c in frame]
    grouped = frame.groupby("rung", sort=False)[columns]
    summary = grouped.mean().add_suffix(" mean").join(grouped.std(ddof=0).add_suffix(" std"))
    summary["seeds"] = frame.groupby("rung", sort=False)["seed"].count()
    chosen = frame.loc[frame["rung"] == "selected", "chosen"] if "chosen" in frame else []
    summary["chosen"] = ""
    if len(chosen):
        summary.loc["selected", "chosen"] = ", ".join(map(str, chosen))
    order = [c for pair in zip([f"{c} mean" for c in columns], [f"{c} std" for c in columns])
             for c in pair]  # fmt: skip
    return summary[["seeds", *order, "chosen"]]


def plot_ladder(frame: pd.DataFrame, *, title=None, path=None):
    """Validation score per rung with error bars over seeds (test scores beside them when
    the ladder had a test set); a matplotlib Figure, saved as PNG when ``path`` is given."""
    from matplotlib.figure import Figure

    summary = ladder_summary(frame)
    names = list(summary.index)
    fig = Figure(figsize=(1.6 + 1.0 * len(names), 4.2))
    ax = fig.subplots()
    x = np.arange(len(names))
    has_test = "test mean" in summary
    width = 0.38 if has_test else 0.6
    ax.bar(x - (width / 2 if has_test else 0), summary["valid mean"], width,
           yerr=summary["valid std"], capsize=3, label="validation", color="#4c72b0")  # fmt: skip
    if has_test:
        ax.bar(x + width / 2, summary["test mean"], width, yerr=summary["test std"], capsize=3,
               label="test (reported, never used to choose)", color="#dd8452")  # fmt: skip
    low = np.nanmin(summary["valid mean"] - summary["valid std"])
    if has_test:
        low = min(low, np.nanmin(summary["test mean"] - summary["test std"]))
    ax.set_ylim(max(0, low - 5), None)
    ax.set_xticks(x, names, rotation=25, ha="right")
    ax.set_ylabel("score (%)")
    ax.set_title(title or "Which CBERL stages help on this data? (mean ± std over seeds)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig
