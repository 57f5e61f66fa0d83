"""Reproduce the paper's tables and figures with the honest protocol.

``run_reproduction("meld-text")`` (or ``cberl reproduce --dataset meld-text``, or
``python benchmarks/reproduce_paper.py --dataset meld-text``) writes, under
``<output_dir>/<dataset>/``:

* Table I/II - per-class Acc/F1, WAA, WAF1 of CBERL and baselines (per-utterance logistic
  regression and MLP; a bc-LSTM-style context model; RandomOverSampler, SMOTE,
  BorderlineSMOTE and ADASYN in place of the EmoGAN in front of the same fusion + classifier);
* Table III - the 16 combinations of fusion / focal gamma / node mask / AdaBoost;
* Table IV - with vs without augmentation; Table V - minority-class F1 of the N/D/M/A variants;
* Table VI - synthetic utterances per class;
* Fig. 6 confusion matrix, Fig. 7 t-SNE of raw vs learned embeddings, Fig. 8 gamma sweep,
  Fig. 9 t-SNE of raw vs augmented training data;

as JSON, markdown and PNG.

Protocol. Every model is fitted on the training split; the classifier selects its epoch on
the *validation* split (the dataset's official dev split, or 10 % of the training dialogues
for IEMOCAP); the test split is predicted once per fitted model; results are mean ± std over
seeds. Nobody picks the best test epoch. Each variant is the pipeline
``[augment] -> [DJVAE] -> CBERLClassifier`` (see :func:`~sklearn_cberl.make_cberl_pipeline`);
to save time, the augmented training set and the fitted DJVAE are computed once per seed and
shared by every variant that uses the same prefix - the same computation a Pipeline would do,
fitted once. Fitting, validation selection and the per-seed records are those of
:mod:`sklearn_cberl.experiments` (:func:`fit_with_validation`, :func:`select_on_validation`,
:class:`ProtocolResult`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ._datasets import load_dataset
from ._protocol import ProtocolResult, make_run
from ._report import build_tables, markdown_report, write_figures
from ._tables import write_json
from ._variants import _fit_variant, _Prefixes, build_variants

__all__ = ["run_reproduction"]


def _run_seed(
    data, variants, full, seed, device, verbose, quick, max_epochs, figures, log, started
):
    """Fit every variant for one seed; return its run records, synthetic counts, figure inputs.

    ``fits`` maps each variant's name to its :func:`make_run` record, or to ``{"error":
    message}`` where the fit failed.
    """
    prefixes = _Prefixes(data, seed, device, verbose, quick)
    fits, state = {}, {}
    for i, variant in enumerate(variants):
        try:
            y_pred, fit_time, parts = _fit_variant(
                variant, prefixes, device, verbose, quick, max_epochs
            )
        except ValueError as exc:
            # e.g. ADASYN: "No samples will be generated" at Table VI's counts. Recorded and
            # reported as a failed cell; the other models still run.
            fits[variant.name] = {"error": str(exc)}
            log(f"[reproduce] seed {seed} {variant.name}: FAILED ({exc})")
            continue
        # The epoch was chosen on validation inside the classifier: no grid score to keep.
        run = make_run(
            seed,
            data.y_test,
            y_pred,
            data.labels,
            params=dict(variant.clf),
            valid_waf1=None,
            fit_time=fit_time,
        )
        fits[variant.name] = run
        log(
            f"[reproduce] seed {seed} [{i + 1}/{len(variants)}] {variant.name}: "
            f"WAF1 {run['report'].loc['weighted', 'f1']:.2f} ({fit_time:.0f}s, "
            f"{time.perf_counter() - started:.0f}s total)"
        )
        if figures and variant.name == full.name:
            state.update(parts, y_pred=y_pred)
    X_aug, y_aug, _, _ = prefixes.augment("emogan")
    if figures:
        state["augmented"] = (X_aug, y_aug)
    n_real = len(data.y_train)
    counts = pd.Series(np.asarray(y_aug)[n_real:]).value_counts()
    return {"seed": seed, "fits": fits, "synthetic_counts": counts, "figures": state}


def _run_seeds(
    data, variants, full, seeds, device, verbose, quick, max_epochs, n_jobs, log, started
):
    """All seeds, sequentially or in ``n_jobs`` processes (one torch thread each)."""
    common = dict(
        data=data,
        variants=variants,
        full=full,
        device=device,
        verbose=verbose,
        quick=quick,
        max_epochs=max_epochs,
        started=started,
    )
    if n_jobs in (None, 1) or len(seeds) == 1:
        return [_run_seed(seed=seed, figures=seed == seeds[0], log=log, **common) for seed in seeds]
    from joblib import Parallel, delayed

    log(f"[reproduce] {len(seeds)} seeds in {n_jobs} processes (progress lines per seed end)")
    return Parallel(n_jobs=n_jobs, backend="loky")(
        delayed(_run_seed_in_process)(seed=seed, figures=seed == seeds[0], **common)
        for seed in seeds
    )


def _run_seed_in_process(**kwargs):
    """:func:`_run_seed` in a worker process; its progress lines are printed when it ends."""
    import torch

    # Several processes share the cores: one intra-op thread each avoids oversubscription.
    torch.set_num_threads(1)
    lines = []
    run = _run_seed(log=lines.append, **kwargs)
    print("\n".join(lines), flush=True)
    return run


def run_reproduction(
    dataset: str = "demo",
    path=None,
    *,
    seeds: Iterable[int] = (0, 1, 2),
    quick: bool = False,
    output_dir="benchmarks/results",
    device: str = "auto",
    max_epochs: int | None = None,
    verbose: int = 0,
    n_jobs: int | None = None,
    log=print,
) -> dict:
    """Run every model of the report over ``seeds`` and write tables and figures.

    Parameters
    ----------
    dataset : {"demo", "meld-text", "iemocap", "meld"}
    path : path-like, default=None
        MELD CSV directory for ``meld-text`` (default ``$CBERL_MELD_DIR``), feature pickle
        for ``iemocap`` / ``meld``.
    seeds : iterable of int, default=(0, 1, 2)
    quick : bool, default=False
        Smoke mode: a quarter of the dialogues (smaller demo data), one seed unless given,
        few epochs, no gamma sweep.
    output_dir : path-like, default="benchmarks/results"
        Results go to ``<output_dir>/<dataset>/``.
    device : str, default="auto"
    max_epochs : int, default=None
        Cap on the classifier's epochs (default: its own ``max_epochs``; 5 in quick mode).
    verbose : int, default=0
    n_jobs : int, default=None
        Run the seeds in this many processes (one torch thread each); None = sequential.
    log : callable, default=print
        Progress lines.

    Returns
    -------
    dict
        The JSON payload that was written (``summary.json``).
    """
    seeds = list(seeds)
    out = Path(output_dir) / dataset
    out.mkdir(parents=True, exist_ok=True)
    if quick and max_epochs is None:
        max_epochs = 5
    started = time.perf_counter()
    data = load_dataset(dataset, path, quick=quick, cache_dir=Path(output_dir) / ".cache")
    variants, roles = build_variants(include_gamma_sweep=not quick)
    log(
        f"[reproduce] {dataset}: {len(data.X_train)}/{len(data.X_valid)}/{len(data.X_test)} "
        f"train/valid/test utterances; {len(variants)} models x {len(seeds)} seeds"
    )
    runs = _run_seeds(
        data,
        variants,
        roles["CBERL"],
        seeds,
        device,
        verbose,
        quick,
        max_epochs,
        n_jobs,
        log,
        started,
    )
    results = {v.name: ProtocolResult(v.name, labels=list(data.labels)) for v in variants}
    synthetic_counts, figures_state = [], {}
    for run in runs:  # in seed order
        for name, fit in run["fits"].items():
            if "error" in fit:
                results[name].errors.append(f"seed {run['seed']}: {fit['error']}")
            else:
                results[name].runs.append(fit)
        synthetic_counts.append(run["synthetic_counts"])
        if run["figures"]:
            figures_state = run["figures"]

    by_role = {role: results[v.name] for role, v in roles.items()}
    tables, sweep = build_tables(data, by_role, synthetic_counts)
    write_figures(out, dataset, data, by_role, figures_state, seeds[0], sweep)

    elapsed = time.perf_counter() - started
    payload = {
        "dataset": dataset,
        "description": data.description,
        "seeds": seeds,
        "quick": quick,
        "max_epochs": max_epochs,
        "device": device,
        "wall_time_s": elapsed,
        "protocol": (
            "fit on train; classifier epoch and baseline hyper-parameters selected on the "
            "validation split; test predicted once per fitted model; mean ± std over seeds"
        ),
        "minority": data.minority,
        "tables": {k: v.reset_index().to_dict(orient="records") for k, v in tables.items()},
        "runs": {
            name: {
                "fit_time": [run["fit_time"] for run in res.runs],
                "errors": res.errors,
                "reports": [run["report"].reset_index().to_dict(orient="list") for run in res.runs],
            }
            for name, res in results.items()
        },
    }
    write_json(payload, out / "summary.json")
    (out / "report.md").write_text(markdown_report(dataset, data, tables, payload))
    log(f"[reproduce] wrote {out} in {elapsed:.0f}s")
    return payload
