"""The stage ladder: does each CBERL stage earn its place on real data?

For every data set and seed, each rung is fitted on the training split, selects its epoch
(and, for logistic regression, C) on the validation split, and is scored once on the test
split; results are mean +/- std over seeds. Rungs:

* ``lr``       per-utterance logistic regression on all modalities (C on validation WAF1)
* ``clf``      CBERLClassifier alone (modalities concatenated)
* ``djvae``    + fusion: DJVAE -> CBERLClassifier
* ``e2e``      + fusion end to end: CBERLClassifier(fusion=DJVAE())
* ``emogan``   + sampler: EmoGANSampler -> CBERLClassifier
* ``ros``      + sampler: RandomOverSampler(shrinkage=1.0) (smoothed bootstrap) -> classifier
* ``smote``    + sampler: ConversationSampler(SMOTE) -> CBERLClassifier
* ``default``  make_cberl_pipeline() (EmoGAN -> DJVAE -> classifier), validation routed
* ``literal``  ``imblearn.pipeline.Pipeline([EmoGANSampler(), DJVAE(), CBERLClassifier()])
  .fit(X, y)``: the mission's one-liner, no validation set given (the classifier holds out
  10 % of the training dialogues itself)

The samplers of ``ros`` and ``smote`` add as many rows per class as EmoGANSampler's default
(``UpToRatio`` of the same ratio), so the rungs differ only in *how* rows are made; the rung
option ``ratio=r`` sets that ratio for all three (``emogan:ratio=0.5``).

Data sets (``sklearn_cberl.reproduce.load_dataset``): ``meld-text`` (MiniLM text features,
official split), ``mosi`` (real text/audio/video features; validation = 11 of the test
videos, test = the other 20; its training videos' text and video features were fitted to
those videos, so this train -> test protocol says little about fusion), ``mosi-imbalanced``
(training negatives cut to 1/8 of the positives), ``mosi-clean`` (the 31 clean test videos
only, 5-fold cross-validation by video, each fold validating on a quarter of its training
videos: every seed runs all folds), ``demo`` (``make_conversations``) and MELD with the
fine-tuned text features of ``bench_text_tuning.py`` (run it first; each seed uses its own
encoder): ``meld-tuned`` (in-sample training features), ``meld-tuned-cv`` (cross-fitted),
``meld-tuned-context`` (a window of 2 preceding turns) and ``meld-tuned-balanced``
(class-weighted fine-tuning).

``--split valid`` scores the validation split instead (for choosing defaults; the test split
is then never predicted) and writes ``stages_valid.*``. A rung can carry parameter overrides:
``emogan:aug__sampling_strategy=0.25``.

Usage::

    python benchmarks/bench_stages.py --quick                       # smoke run
    python benchmarks/bench_stages.py --datasets mosi mosi-imbalanced demo --seeds 0 1 2 3 4
    python benchmarks/bench_stages.py --datasets meld-text --seeds 0 1 2

Each (data set, rung, seed) runs in its own worker process with one torch thread; ``--jobs``
workers run side by side (2 on the 2-core machine). Writes ``results/stages.json`` and
``results/stages.md`` (merged with earlier runs of other data sets).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    CACHE,
    RESULTS,
    machine,
    provenance,
    provenance_lines,
    run_id,
    run_ids,
)

ROOT = Path(__file__).resolve().parents[1]
DATASETS = (
    "meld-text", "meld-text-cue", "mosi", "mosi-imbalanced", "mosi-clean",
    "mosi-clean-missing", "demo",
    "meld-tuned", "meld-tuned-cv", "meld-tuned-context", "meld-tuned-balanced",
    "meld-starved", "demo-starved",
)  # fmt: skip
#: MELD with fine-tuned text features (bench_text_tuning.py writes them, one set per seed):
#: (cross-fitted training features, dialogue window, class weights).
TUNED = {
    "meld-tuned": (False, 0, None),
    "meld-tuned-cv": (True, 0, None),
    "meld-tuned-context": (False, 2, None),
    "meld-tuned-balanced": (False, 0, "balanced"),
}
RUNGS = (
    "lr", "clf", "djvae", "e2e", "emogan", "ros", "smote", "default", "literal", "selected",
)  # fmt: skip
DATA_PATHS = {
    "meld-text": ("CBERL_MELD_DIR", ROOT.parent / "shared" / "data" / "meld"),
    "mosi": ("CBERL_MOSI_DIR", ROOT.parent / "shared" / "data" / "mosi"),
}
DATA_PATHS["meld-starved"] = DATA_PATHS["meld-text"]
_DATA: dict = {}


def _data(name: str, quick: bool, seed: int = 0, fold: int | None = None):
    from sklearn_cberl.reproduce import load_dataset

    if name in TUNED:  # the features of this seed's fine-tuned encoder
        from bench_text_tuning import tuned_meld

        cross_fitted, context, weights = TUNED[name]
        if (name, seed) not in _DATA:
            _DATA[name, seed] = tuned_meld(
                seed, cross_fitted=cross_fitted, context=context, class_weight=weights
            )
        return _DATA[name, seed]
    if (name, fold) not in _DATA:
        base = next((b for b in DATA_PATHS if name.startswith(b)), None)
        env, default = DATA_PATHS.get(base, (None, None))
        path = os.environ.get(env, str(default)) if env else None
        kwargs = {} if fold is None else {"fold": fold}
        _DATA[name, fold] = load_dataset(name, path, quick=quick, cache_dir=CACHE, **kwargs)
    return _DATA[name, fold]


def _ratio() -> float:
    from sklearn_cberl import EmoGANSampler

    return EmoGANSampler().sampling_strategy


def build(rung: str, seed: int, quick: bool, ratio: float | None = None):
    """The estimator of a rung, every random_state derived from ``seed``; ``ratio`` sets the
    sampler rungs' counts (default: EmoGANSampler's default)."""
    from imblearn.over_sampling import SMOTE, RandomOverSampler
    from imblearn.pipeline import Pipeline

    from sklearn_cberl import (
        DJVAE,
        CBERLClassifier,
        CBERLPipeline,
        CBERLStageSearch,
        ConversationSampler,
        EmoGANSampler,
        UpToRatio,
        make_cberl_pipeline,
    )
    from sklearn_cberl.experiments import set_random_states

    ratio = _ratio() if ratio is None else ratio
    strategy = UpToRatio(ratio)
    # imblearn's smoothed bootstrap: a copy of a real row plus Gaussian noise (Silverman).
    ros = RandomOverSampler(sampling_strategy=strategy, shrinkage=1.0)
    make = {
        "clf": lambda: CBERLClassifier(),
        "djvae": lambda: CBERLPipeline([("fuse", DJVAE()), ("clf", CBERLClassifier())]),
        "e2e": lambda: CBERLClassifier(fusion=DJVAE()),
        "emogan": lambda: CBERLPipeline(
            [("aug", EmoGANSampler(sampling_strategy=ratio)), ("clf", CBERLClassifier())]
        ),
        "ros": lambda: CBERLPipeline(
            [
                ("aug", ConversationSampler(ros)),
                ("clf", CBERLClassifier()),
            ]
        ),
        "smote": lambda: CBERLPipeline(
            [
                ("aug", ConversationSampler(SMOTE(sampling_strategy=strategy))),
                ("clf", CBERLClassifier()),
            ]
        ),
        "default": lambda: make_cberl_pipeline(sampling_strategy=ratio),
        "literal": lambda: Pipeline(
            [
                ("aug", EmoGANSampler(sampling_strategy=ratio)),
                ("fuse", DJVAE()),
                ("clf", CBERLClassifier()),
            ]
        ),
        # The stages chosen on the validation split (CBERLStageSearch); one torch thread,
        # its candidates one after the other, as every other rung.
        "selected": lambda: CBERLStageSearch(),
    }[rung]
    model = set_random_states(make(), seed)
    params = {k: "cpu" for k in model.get_params(deep=True) if k.split("__")[-1] == "device"}
    if quick and rung == "selected":
        epochs = ("clf__max_epochs", "fuse__max_epochs", "aug__max_epochs",
                  "aug__classifier_max_epochs")  # fmt: skip
        params["params"] = dict.fromkeys(epochs, 3)
    elif quick:
        for key in model.get_params(deep=True):
            leaf = key.split("__")[-1]
            if leaf in ("max_epochs", "max_epochs", "classifier_max_epochs"):
                params[key] = 3
    return model.set_params(**params)


def _lr(data, seed):
    from sklearn_cberl.experiments import fit_utterance_baseline

    return fit_utterance_baseline("lr", data, seed)


def run_one(dataset, rung, seed, fold, split, overrides, quick):
    """Fit one rung on one seed (and fold); score ``split`` once. Runs in a worker process."""
    import torch

    torch.set_num_threads(1)
    from sklearn_cberl.experiments import utterance_features
    from sklearn_cberl.metrics import emotion_report

    data = _data(dataset, quick, seed, fold)
    start = time.perf_counter()
    info = {}
    if rung == "lr":
        model = _lr(data, seed)
        fit_time = time.perf_counter() - start
        y_pred = model.predict(utterance_features(data[f"X_{split}"]))
        info["C"] = float(model[-1].C)
    else:
        params = dict(overrides)
        model = build(rung, seed, quick, ratio=params.pop("ratio", None))
        if params:
            model.set_params(**params)
        if rung == "literal":
            model.fit(data.X_train, data.y_train)
        else:
            model.fit(data.X_train, data.y_train, validation_data=(data.X_valid, data.y_valid))
        fit_time = time.perf_counter() - start
        y_pred = model.predict(data[f"X_{split}"])
        if rung == "selected":
            from sklearn_cberl.selection import describe_config

            results = model.cv_results_
            info.update(chosen=describe_config(model.best_config_),
                        search_time=model.search_time_, refit_time=model.refit_time_,
                        candidates=[{"config": c, "valid": 100 * v, "gap_se": 100 * se}
                                    for c, v, se in zip(results["config"],
                                                        results["mean_test_score"],
                                                        results["gap_se"])])  # fmt: skip
            model = model.best_estimator_
        clf = model[-1] if hasattr(model, "steps") else model
        info.update(best_epoch=int(clf.best_epoch_), n_iter=int(clf.n_iter_))
        aug = getattr(model, "named_steps", {}).get("aug")
        if aug is not None and hasattr(aug, "synthetic_mask_"):
            info["n_synthetic"] = int(np.sum(aug.synthetic_mask_))
            info.update(_sampler_stats(aug))
    report = emotion_report(data[f"y_{split}"], np.asarray(y_pred), labels=data.labels)
    return {
        "dataset": dataset,
        "rung": rung,
        "overrides": {k: repr(v) for k, v in overrides.items()},
        "seed": seed,
        "fold": fold,
        "split": split,
        "fit_time": fit_time,
        "report": report.reset_index().to_dict(orient="list"),
        **info,
    }


def _sampler_stats(aug) -> dict:
    """Rows added per class and, for EmoGANSampler, its filter's record (issue 27)."""
    y = aug.sampling_strategy_
    added = getattr(aug, "n_synthetic_", None) or {c: int(n) for c, n in y.items()}
    stats = {"n_synthetic_per_class": {str(c): int(n) for c, n in added.items()}}
    for name in ("filter_stats_", "acceptance_rate_", "source_weights_", "source_acceptance_",
                 "generation_"):
        if hasattr(aug, name):
            stats[name.rstrip("_")] = {str(c): v for c, v in getattr(aug, name).items()}
    return stats


def _worker(args):
    try:
        return run_one(*args)
    except Exception as error:  # a failed rung is reported, not fatal for the others
        dataset, rung, seed, fold, split, overrides, _ = args
        return {"dataset": dataset, "rung": rung, "seed": seed, "fold": fold, "split": split,
                "overrides": {k: repr(v) for k, v in overrides.items()},
                "error": f"{type(error).__name__}: {error}"}  # fmt: skip


def _init_worker():
    os.environ["OMP_NUM_THREADS"] = "1"


# --------------------------------------------------------------------------- reporting
def _label(run) -> str:
    extra = ",".join(f"{k.split('__')[-1]}={v}" for k, v in run["overrides"].items())
    return run["rung"] + (f" ({extra})" if extra else "")


def _cell(report, row, column):
    index = report["emotion"].index(row)
    return float(report[column][index])


def _over_seeds(runs, values) -> tuple[float, float]:
    """Mean and std over seeds; a cross-validated set's folds are averaged per seed first, so
    the std is the seed-to-seed spread (the folds' spread is a property of the data)."""
    per_seed: dict = {}
    for run, value in zip(runs, values):
        per_seed.setdefault(run["seed"], []).append(value)
    means = np.array([np.mean(v) for v in per_seed.values()])
    return float(means.mean()), float(means.std())


def summarise(runs, labels_of) -> dict:
    """Per (data set, rung label): mean/std over seeds of WAF1, WAA, macro-F1, per-class F1,
    fit time, and the runs (numbered as in :func:`_common.run_ids`) its fits come from."""
    groups: dict = {}
    ids = run_ids(runs)
    for run in runs:
        groups.setdefault((run["dataset"], _label(run)), []).append(run)
    out = {}
    for (dataset, label), group in groups.items():
        ok = [r for r in group if "error" not in r]
        entry = {"n_seeds": len(ok), "errors": [r["error"] for r in group if "error" in r]}
        entry["runs"] = sorted({run_id(r, ids) for r in group})
        if ok:
            cells = {"WAF1": ("weighted", "f1"), "WAA": ("weighted", "acc"),
                     "macro-F1": ("macro", "f1")}  # fmt: skip
            cells.update({f"F1 {c}": (str(c), "f1") for c in labels_of[dataset]})
            for key, (row, column) in cells.items():
                entry[key] = _over_seeds(ok, [_cell(r["report"], row, column) for r in ok])
            entry["fit s"] = _over_seeds(ok, [r["fit_time"] for r in ok])
            for key in ("best_epoch", "n_synthetic"):
                if all(key in r for r in ok):
                    entry[key] = float(np.mean([r[key] for r in ok]))
            if all("chosen" in r for r in ok):  # the selected rung: what it chose, its cost
                counts = pd.Series([r["chosen"] for r in ok]).value_counts()
                entry["chosen"] = "; ".join(f"{name} ({n}x)" for name, n in counts.items())
                entry["search s"] = _over_seeds(ok, [r["search_time"] for r in ok])
            entry.update(_sampler_summary(ok))
        out[f"{dataset} | {label}"] = entry
    return out


def _sampler_summary(runs) -> dict:
    """Per class, means over the runs: rows added, and EmoGAN's filter acceptance and
    rejected rows filled in (issue 27)."""
    out = {}
    for c in {c for r in runs for c in r.get("n_synthetic_per_class", {})}:
        added = [r.get("n_synthetic_per_class", {}).get(c, 0) for r in runs]  # none: 0
        out[f"added {c}"] = float(np.mean(added))
        if all(c in r.get("acceptance_rate", {}) for r in runs):
            rates = [r["acceptance_rate"][c]["all"] for r in runs]
            out[f"acceptance {c}"] = float(np.mean(rates))
            out[f"filled {c}"] = float(np.mean([r["filter_stats"][c]["filled"] for r in runs]))
    return out


def _sampler_cells(entry, minority) -> str:
    """``added (acceptance, filled)`` of each minority class, or - when nothing was added."""
    cells = []
    for c in minority:
        if f"added {c}" not in entry:
            continue
        cell = f"{entry[f'added {c}']:.0f}"
        if f"acceptance {c}" in entry:
            cell += f" ({entry[f'acceptance {c}']:.2f}, {entry[f'filled {c}']:.0f})"
        cells.append(cell)
    return " / ".join(cells) or "-"


def markdown(summary, labels_of, minority_of, split, meta, runs) -> str:
    lines = [
        "# Stage ladder: does each CBERL stage earn its place?",
        "",
        f"{meta['machine']}, torch {meta['torch']}, one torch thread per process. Scores on "
        f"the **{split}** split (%), mean ± std over seeds; epochs (and LR's C) chosen on the "
        "validation split; fit time in seconds on a shared machine (indicative). `n` counts "
        "the fits (seeds, times folds for a cross-validated set, whose folds are averaged per "
        "seed before the std over seeds); `from run` names the run(s) they come from (listed "
        "at the end).",
    ]
    by_dataset: dict = {}
    for key, entry in summary.items():
        dataset, label = key.split(" | ", 1)
        by_dataset.setdefault(dataset, []).append((label, entry))
    for dataset, rows in by_dataset.items():
        minority = minority_of[dataset]
        head = ["rung", "n", "WAF1", "WAA (acc)", "macro-F1"]
        head += [f"F1 {c}" for c in minority] + ["fit s", "epoch", "synthetic"]
        head += [f"added {' / '.join(minority)} (acceptance, filled)", "from run"]
        lines += ["", f"## {dataset}", "", "| " + " | ".join(head) + " |",
                  "| " + " | ".join(["---"] * len(head)) + " |"]  # fmt: skip
        for label, entry in rows:
            if not entry["n_seeds"]:
                lines.append(f"| {label} | 0 | failed: {entry['errors'][0][:80]} |")
                continue

            def ms(key, entry=entry):
                return f"{entry[key][0]:.2f} ± {entry[key][1]:.2f}" if key in entry else "-"

            cells = [label, str(entry["n_seeds"]), ms("WAF1"), ms("WAA"), ms("macro-F1")]
            cells += [ms(f"F1 {c}") for c in minority]
            cells += [f"{entry['fit s'][0]:.0f}"]
            cells += [
                f"{entry[k]:.0f}" if k in entry else "-" for k in ("best_epoch", "n_synthetic")
            ]
            cells.append(_sampler_cells(entry, minority))
            cells.append(",".join(map(str, entry.get("runs", []))))
            lines.append("| " + " | ".join(cells) + " |")
        classes = labels_of[dataset]
        lines += ["", f"Per-class F1 ({dataset}):", "", "| rung | " + " | ".join(classes) + " |",
                  "| --- |" + " ---: |" * len(classes)]  # fmt: skip
        for label, entry in rows:
            if entry["n_seeds"]:
                row = [f"{entry[f'F1 {c}'][0]:.1f} ± {entry[f'F1 {c}'][1]:.1f}" for c in classes]
                lines.append(f"| {label} | " + " | ".join(row) + " |")
        for label, entry in rows:
            if "chosen" in entry:
                search = entry["search s"][0]
                lines += ["", f"`{label}` chose: {entry['chosen']}; search {search:.0f} s per fit."]
    lines += ["", *provenance_lines(runs, label=lambda r: f"{r['dataset']} {_label(r)}")]
    return "\n".join(lines) + "\n"


def _parse_rung(text: str):
    rung, _, rest = text.partition(":")
    if rung not in RUNGS:
        raise SystemExit(f"unknown rung {rung!r}: expected one of {RUNGS}")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        overrides[key] = ast.literal_eval(value)
    return rung, overrides


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--rungs", nargs="+", default=list(RUNGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 epochs, demo only: a smoke run")
    parser.add_argument("--output", default=None, help="result name (default stages[_valid])")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.seeds = ["demo"], args.seeds[:1]
    rungs = [_parse_rung(r) for r in args.rungs]
    from sklearn_cberl.experiments._datasets import FOLDED

    folds = {d: list(range(FOLDED[d])) if d in FOLDED else [None] for d in args.datasets}
    first = {d: _data(d, args.quick, args.seeds[0], folds[d][0]) for d in args.datasets}
    labels_of = {d: [str(c) for c in first[d].labels] for d in args.datasets}
    minority_of = {d: [str(c) for c in first[d].minority] for d in args.datasets}
    tasks = [
        (d, rung, seed, fold, args.split, overrides, args.quick)
        for d in args.datasets
        for rung, overrides in rungs
        for seed in args.seeds
        for fold in folds[d]
    ]
    start = time.time()
    prov = provenance(argv=None if argv is None else [sys.argv[0], *argv])
    with ProcessPoolExecutor(max_workers=args.jobs, initializer=_init_worker) as pool:
        runs = []
        for run in pool.map(_worker, tasks):
            run["provenance"] = prov
            runs.append(run)
            status = run.get("error") or f"{_cell(run['report'], 'weighted', 'f1'):.2f} WAF1"
            fold = "" if run.get("fold") is None else f" fold {run['fold']}"
            print(f"[{time.time() - start:7.0f}s] {run['dataset']} {_label(run)} "
                  f"seed {run['seed']}{fold}: {status}", flush=True)  # fmt: skip

    name = args.output or ("stages" if args.split == "test" else "stages_valid")
    name += "_quick" if args.quick else ""
    path = RESULTS / f"{name}.json"
    previous = json.loads(path.read_text()) if path.is_file() else {"runs": []}
    def key(r):
        return r["dataset"], _label(r), r["seed"], r.get("fold")

    done = {key(r) for r in runs}
    kept = [r for r in previous["runs"] if key(r) not in done]
    all_runs = kept + runs
    for d in {r["dataset"] for r in all_runs} - set(labels_of):
        labels_of[d] = previous["labels"][d]
        minority_of[d] = previous["minority"][d]
    meta = {**machine(), "argv": " ".join(sys.argv[1:] if argv is None else argv),
            "jobs": args.jobs, "wall_s": time.time() - start}  # fmt: skip
    payload = {"meta": meta, "labels": labels_of, "minority": minority_of, "runs": all_runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    # The fits first: a failure in the summary below must not lose them.
    path.write_text(json.dumps(payload, indent=1, default=str))
    summary = payload["summary"] = summarise(all_runs, labels_of)
    path.write_text(json.dumps(payload, indent=1, default=str))
    text = markdown(summary, labels_of, minority_of, args.split, meta, all_runs)
    path.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
