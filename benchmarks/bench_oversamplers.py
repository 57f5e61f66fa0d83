"""Over-sampler benchmark: none / ROS / smoothed ROS / SMOTE / BorderlineSMOTE / ADASYN / EmoGAN.

Every over-sampler feeds the *same* downstream classifier; only the training rows differ.

Datasets
    * ``synthetic``: :func:`~sklearn_cberl.datasets.make_conversations` (text 100, audio 100,
      visual 512; MELD-like imbalance), one fixed data set (``random_state=0``) split by
      dialogue 60 / 20 / 20 % into train / validation / test.
    * ``meld``: MELD's official text release (train / dev / test) embedded with
      all-MiniLM-L6-v2 (384-d ``text_*`` block; cached under ``benchmarks/results/.cache``).
      Skipped when the CSVs are absent (``--meld-dir`` / ``CBERL_MELD_DIR``).
    * ``mosi-imbalanced``: CMU-MOSI's real text/audio/video features with the training
      negatives cut to 1/8 of the positives (``sklearn_cberl.reproduce.load_dataset``; path
      ``--mosi-dir`` / ``CBERL_MOSI_DIR``).
    * ``meld-starved`` / ``demo-starved``: MELD text / the ``demo`` data of
      ``load_dataset`` with the training rows of two mid-size classes (surprise, anger) cut
      to 1/8; validation and test untouched. Their two "rare" columns are the starved
      classes.

Over-samplers (all with the same ``sampling_strategy``: ``--strategy auto``, every class up to
the majority count, ``--strategy paper``, paper Table VI's MELD additions - sadness +60,
fear +200, anger +60, disgust +200 - scaled to the training-set size, or a float ``r``: every
class raised to ``r`` x the majority, ``UpToRatio(r)``)
    ``none``, ``RandomOverSampler`` (copies), ``ROS-shrinkage`` (imbalanced-learn's smoothed
    bootstrap, ``RandomOverSampler(shrinkage=1.0)``: a copy plus Gaussian noise), ``SMOTE``,
    ``BorderlineSMOTE``, ``ADASYN`` (imbalanced-learn defaults, run on the feature columns)
    and :class:`~sklearn_cberl.over_sampling.EmoGANSampler`
    (run on the conversation frame, i.e. with its modality blocks). EmoGAN's ``max_epochs`` and
    ``filter_synthetic`` (and, with ``--classifier cberl``, ``placement``: after the source
    utterance vs standalone dialogues) are chosen on validation macro-F1 (first seed) and
    only then is the test set touched; the baselines have no tuned parameters.

Downstream classifier
    * ``logreg`` (default): standardise -> multinomial logistic regression on the features.
    * ``cberl``: :class:`sklearn_cberl.classifier.CBERLClassifier` on the conversation frames;
      rows made by the feature-only baselines become standalone one-utterance dialogues.

Reported per dataset and method: test WAF1, macro-F1 and the F1 of the two rarest training
classes (%) and their mean, the rows added to each (for EmoGAN with its filter's acceptance
rate and the rejected candidates filled in), fit time (resampling + classifier, s) and peak
memory: the largest increase of the process's resident set size (RSS, sampled every 5 ms with
psutil, so torch's allocations count too) over its value just before the fit, in MiB - mean
+/- std over ``--seeds`` (the seed drives the samplers and the classifier; the data and split
are fixed). Timings on a shared machine are indicative only.

Usage::

    python benchmarks/bench_oversamplers.py --quick        # smoke test, about a minute
    python benchmarks/bench_oversamplers.py --seeds 0 1 2  # the full benchmark
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

import pandas as pd
import sklearn
import torch
from _common import CACHE, RESULTS, PeakRSS
from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler
from imblearn.pipeline import Pipeline
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit
from sklearn.preprocessing import StandardScaler

from sklearn_cberl import PAPER_AUGMENTATION, AddPerClass, UpToRatio
from sklearn_cberl.conversation import DIALOGUE, METADATA_COLUMNS, SYNTHETIC
from sklearn_cberl.datasets import make_conversations
from sklearn_cberl.experiments import markdown_table, mean_std
from sklearn_cberl.metrics import emotion_report
from sklearn_cberl.over_sampling import ConversationSampler, EmoGANSampler

HERE = Path(__file__).resolve().parent
META = list(METADATA_COLUMNS)
#: Where SMOTE-family rows go in front of the cberl classifier (EmoGAN's own is tuned).
PLACEMENT = "standalone"
METHODS = (
    "none",
    "RandomOverSampler",
    "ROS-shrinkage",
    "SMOTE",
    "BorderlineSMOTE",
    "ADASYN",
    "EmoGANSampler",
)

#: sampling_strategy of every over-sampler (set from --strategy).
STRATEGY = {"value": "auto"}


def make_sampler(method, seed, params=None):
    if method == "none":
        return None
    strategy = STRATEGY["value"]
    if method == "EmoGANSampler":
        return EmoGANSampler(
            sampling_strategy=strategy, random_state=seed, device="cpu", **(params or {})
        )
    if method == "ROS-shrinkage":
        return RandomOverSampler(sampling_strategy=strategy, shrinkage=1.0, random_state=seed)
    return {
        "RandomOverSampler": RandomOverSampler,
        "SMOTE": SMOTE,
        "BorderlineSMOTE": BorderlineSMOTE,
        "ADASYN": ADASYN,
    }[method](sampling_strategy=strategy, random_state=seed)


#: CBERLClassifier parameters (set from --cberl-epochs).
CBERL_PARAMS: dict = {}


def _feature_columns(X):
    return [c for c in X.columns if c not in (*META, SYNTHETIC)]


def make_pipeline(method, classifier, seed, params=None):
    """The same classifier behind every over-sampler (imbalanced-learn Pipeline)."""
    sampler = make_sampler(method, seed, params)
    if classifier == "cberl":
        from sklearn_cberl.classifier import CBERLClassifier

        clf = CBERLClassifier(random_state=seed, device="cpu", **CBERL_PARAMS)
        if sampler is None:
            return Pipeline([("clf", clf)])
        if method != "EmoGANSampler":
            sampler = ConversationSampler(sampler, placement=PLACEMENT)
        return Pipeline([("aug", sampler), ("clf", clf)])
    # The feature columns by name: the metadata and the samplers' `synthetic` row mark
    # (present in fit only) are left out.
    drop = ColumnTransformer([("features", "passthrough", _feature_columns)])
    head = [("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=1000))]
    if sampler is None:
        return Pipeline([("features", drop), *head])
    if method == "EmoGANSampler":  # on the frame: it uses the modality blocks
        return Pipeline([("aug", sampler), ("features", drop), *head])
    return Pipeline([("features", drop), ("aug", sampler), *head])


# ----------------------------------------------------------------------------- data
def synthetic_data(quick):
    if quick:
        X, y = make_conversations(
            n_dialogues=60, modalities={"text": 20, "audio": 20, "visual": 40}, random_state=0
        )
    else:
        X, y = make_conversations(n_dialogues=300, random_state=0)
    groups = X[DIALOGUE]
    outer = GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=0)
    rest, test = next(outer.split(X, y, groups))
    inner = GroupShuffleSplit(n_splits=1, test_size=0.25, random_state=0)
    tr, va = next(inner.split(X.iloc[rest], y.iloc[rest], groups.iloc[rest]))

    def take(idx):
        return X.iloc[idx].reset_index(drop=True), y.iloc[idx].reset_index(drop=True)

    out = {}
    for split, idx in (("train", rest[tr]), ("valid", rest[va]), ("test", test)):
        out[f"X_{split}"], out[f"y_{split}"] = take(idx)
    return out


def meld_data(meld_dir, quick):
    """MELD text, MiniLM-embedded (384-d ``text_*``), official splits; embeddings cached."""
    from sklearn_cberl.datasets import load_meld_minilm

    data = load_meld_minilm(meld_dir, cache_dir=CACHE)
    out = {}
    for split in ("train", "valid", "test"):
        X, y = data[f"X_{split}"].reset_index(drop=True), data[f"y_{split}"].reset_index(drop=True)
        if quick:  # a few dialogues per split
            keep = X[DIALOGUE].isin(X[DIALOGUE].unique()[:40]).to_numpy()
            X, y = X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)
        out[f"X_{split}"], out[f"y_{split}"] = X, y
    return out


# ----------------------------------------------------------------------------- protocol
def fit_score(method, classifier, seed, params, X_fit, y_fit, X_eval, y_eval, rare):
    pipe = make_pipeline(method, classifier, seed, params)
    with PeakRSS() as memory:
        start = time.perf_counter()
        pipe.fit(X_fit, y_fit)
        fit_time = time.perf_counter() - start
    labels = sorted(pd.unique(y_fit))
    report = emotion_report(y_eval, pipe.predict(X_eval), labels=labels)
    row = {
        "waf1": float(report.loc["weighted", "f1"]),
        "macro_f1": float(report.loc["macro", "f1"]),
        "fit_time_s": fit_time,
        "peak_rss_mib": memory.mib,
        "per_class_f1": {str(c): float(report.loc[str(c), "f1"]) for c in labels},
    }
    for i, c in enumerate(rare):
        row[f"rare{i + 1}_f1"] = float(report.loc[str(c), "f1"])
    aug = pipe.named_steps.get("aug")
    if isinstance(aug, EmoGANSampler):
        row["n_synthetic"] = int(aug.synthetic_mask_.sum())
        row["filter_stats"] = {str(k): v for k, v in aug.filter_stats_.items()}
        row["acceptance_rate"] = {str(k): v for k, v in aug.acceptance_rate_.items()}
        row["source_weights"] = {str(k): v for k, v in aug.source_weights_.items()}
        for i, c in enumerate(rare):
            row[f"rare{i + 1}_added"] = int(aug.n_synthetic_.get(c, 0))
            stats = aug.filter_stats_.get(c)
            if stats:
                row[f"rare{i + 1}_acceptance"] = aug.acceptance_rate_[c]["all"]
                row[f"rare{i + 1}_filled"] = stats["filled"]
    elif aug is not None:  # imbalanced-learn samplers add exactly what they are asked
        added = getattr(getattr(aug, "sampler_", aug), "sampling_strategy_", {})
        for i, c in enumerate(rare):
            row[f"rare{i + 1}_added"] = int(added.get(c, 0))
    return row


def run_dataset(name, data, classifier, seeds, grid, log, methods=METHODS, rare=None):
    counts = data["y_train"].value_counts()
    rare = rare or list(counts.sort_values(kind="stable").index[:2])
    log(f"[{name}] train {len(data['y_train'])} rows, rarest classes {rare}")
    # Validation-only choice of EmoGAN's parameters (seed 0 of the requested seeds); with
    # an empty grid (--grid defaults) the sampler's defaults, themselves chosen on validation.
    selection = []
    for values in itertools.product(*grid.values()) if grid else ():
        params = dict(zip(grid, values))
        row = fit_score(
            "EmoGANSampler",
            classifier,
            seeds[0],
            params,
            data["X_train"],
            data["y_train"],
            data["X_valid"],
            data["y_valid"],
            rare,
        )
        selection.append({"params": params, "valid_macro_f1": row["macro_f1"], **row})
        log(
            f"[{name}] valid EmoGAN {params}: macro-F1 {row['macro_f1']:.2f} "
            f"({row['fit_time_s']:.0f} s)"
        )
    best = max(selection, key=lambda r: r["valid_macro_f1"])["params"] if selection else {}
    log(f"[{name}] chosen on validation: {best}")

    runs = []
    for method, seed in itertools.product(methods, seeds):
        params = best if method == "EmoGANSampler" else None
        try:
            row = fit_score(
                method,
                classifier,
                seed,
                params,
                data["X_train"],
                data["y_train"],
                data["X_test"],
                data["y_test"],
                rare,
            )
        except ValueError as exc:  # e.g. ADASYN: "No samples will be generated ..."
            runs.append({"dataset": name, "method": method, "seed": seed, "error": str(exc)})
            log(f"[{name}] {method:>17} seed {seed}: failed: {exc}")
            continue
        runs.append({"dataset": name, "method": method, "seed": seed, **row})
        log(
            f"[{name}] {method:>17} seed {seed}: WAF1 {row['waf1']:.2f} macro-F1 "
            f"{row['macro_f1']:.2f} {rare[0]} {row['rare1_f1']:.2f} {rare[1]} "
            f"{row['rare2_f1']:.2f} fit {row['fit_time_s']:.1f} s "
            f"peak {row['peak_rss_mib']:.0f} MiB"
        )
    return runs, {"dataset": name, "rare": rare, "grid": grid, "chosen": best, "runs": selection}


def _added(group) -> str:
    """Rows added to each of the two rarest classes (mean over seeds), with EmoGAN's filter
    acceptance and the rejected candidates filled in."""
    cells = []
    for i in (1, 2):
        if f"rare{i}_added" not in group or group[f"rare{i}_added"].isna().all():
            return "-"
        cell = f"{group[f'rare{i}_added'].mean():.0f}"
        if f"rare{i}_acceptance" in group and group[f"rare{i}_acceptance"].notna().all():
            cell += (
                f" ({group[f'rare{i}_acceptance'].mean():.2f}, "
                f"{group[f'rare{i}_filled'].mean():.0f})"
            )
        cells.append(cell)
    return " / ".join(cells)


def summarise(runs, rare_of):
    """One markdown-ready table per dataset (its two rarest classes name two columns)."""
    frame = pd.DataFrame(runs)
    tables = {}
    for dataset, by_dataset in frame.groupby("dataset", sort=False):
        rare = rare_of[dataset]
        rows = []
        for method, group in by_dataset.groupby("method", sort=False):
            if "error" in group:
                failed = group["error"].notna()
                if failed.all():
                    rows.append({"method": method, "WAF1": f"failed: {group['error'].iloc[0]}"})
                    continue
                group = group[~failed]
            rows.append(
                {
                    "method": method,
                    "WAF1": mean_std(group["waf1"]),
                    "macro-F1": mean_std(group["macro_f1"]),
                    f"F1 {rare[0]}": mean_std(group["rare1_f1"]),
                    f"F1 {rare[1]}": mean_std(group["rare2_f1"]),
                    f"mean F1 {rare[0]}, {rare[1]}": mean_std(
                        (group["rare1_f1"] + group["rare2_f1"]) / 2
                    ),
                    f"added {rare[0]} / {rare[1]} (acceptance, filled)": _added(group),
                    "fit time (s)": mean_std(group["fit_time_s"], 1),
                    "peak RSS (MiB)": mean_std(group["peak_rss_mib"], 0),
                }
            )
        tables[dataset] = pd.DataFrame(rows).set_index("method").fillna("-")
    return tables


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (1 seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "meld"])
    parser.add_argument("--classifier", choices=["logreg", "cberl"], default="logreg")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--strategy",
        default="auto",
        help="sampling_strategy: 'auto' (balance to the majority), 'paper' (Table VI counts) "
        "or a float r (every class raised to r x the majority)",
    )
    parser.add_argument(
        "--epochs", type=int, nargs="+", default=[10, 30], help="EmoGAN max_epochs grid"
    )
    parser.add_argument("--cberl-epochs", type=int, default=None, help="CBERLClassifier max_epochs")
    parser.add_argument(
        "--grid",
        choices=["full", "defaults"],
        default="full",
        help="EmoGAN parameters: chosen on validation over epochs x filter (x placement for "
        "cberl), or the sampler's defaults (no selection fits; for time)",
    )
    parser.add_argument(
        "--meld-dir",
        default=os.environ.get("CBERL_MELD_DIR", str(HERE.parent.parent / "shared/data/meld")),
    )
    parser.add_argument(
        "--mosi-dir",
        default=os.environ.get("CBERL_MOSI_DIR", str(HERE.parent.parent / "shared/data/mosi")),
    )
    parser.add_argument("--out", default=str(RESULTS / "oversamplers"), help="output path stem")
    args = parser.parse_args(argv)

    seeds = args.seeds[:1] if args.quick else args.seeds
    grid = {
        "max_epochs": [2] if args.quick else args.epochs,
        "filter_synthetic": [True, False],
    }
    if args.strategy == "paper":
        # Table VI counts are for MELD's 9989 training rows: scaled to the data at hand.
        STRATEGY["value"] = AddPerClass(PAPER_AUGMENTATION["meld"], reference_size=9989)
    elif args.strategy != "auto":
        STRATEGY["value"] = UpToRatio(float(args.strategy))
    if args.classifier == "cberl":  # placement only matters to a context-aware classifier
        grid["placement"] = ["after_source", "standalone"]
    if args.grid == "defaults":
        grid = {}
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    from sklearn_cberl import set_config  # the estimators' own thread policy

    set_config(n_threads=torch.get_num_threads())
    if args.cberl_epochs or args.quick:
        CBERL_PARAMS["max_epochs"] = 2 if args.quick else args.cberl_epochs
    if args.classifier == "cberl":
        try:
            import sklearn_cberl.classifier  # noqa: F401
        except ImportError as exc:
            parser.error(f"--classifier cberl needs sklearn_cberl.classifier: {exc}")

    def log(line):
        print(line, flush=True)

    runs, selections = [], []
    if "synthetic" in args.datasets:
        r, s = run_dataset(
            "synthetic", synthetic_data(args.quick), args.classifier, seeds, grid, log, args.methods
        )
        runs += r
        selections.append(s)
    meld_dir = Path(args.meld_dir)
    if "meld" in args.datasets:
        if (meld_dir / "train_sent_emo.csv").is_file():
            r, s = run_dataset(
                "meld",
                meld_data(meld_dir, args.quick),
                args.classifier,
                seeds,
                grid,
                log,
                args.methods,
            )
            runs += r
            selections.append(s)
        else:
            log(f"MELD not found under {meld_dir}: skipping the meld benchmark.")

    for name in ("meld-starved", "demo-starved"):  # issue 27: two mid-size classes cut to 1/8
        if name not in args.datasets:
            continue
        if name == "meld-starved" and not (meld_dir / "train_sent_emo.csv").is_file():
            log(f"MELD not found under {meld_dir}: skipping {name}.")
            continue
        from sklearn_cberl.reproduce import load_dataset

        data = load_dataset(name, meld_dir, quick=args.quick, cache_dir=CACHE)
        r, s = run_dataset(
            name, dict(data), args.classifier, seeds, grid, log, args.methods, data.minority
        )
        runs += r
        selections.append(s)

    mosi_dir = Path(args.mosi_dir)
    if "mosi-imbalanced" in args.datasets:
        if (mosi_dir / "transcripts.csv").is_file():
            from sklearn_cberl.reproduce import load_dataset

            data = dict(load_dataset("mosi-imbalanced", mosi_dir))
            r, s = run_dataset(
                "mosi-imbalanced", data, args.classifier, seeds, grid, log, args.methods
            )
            runs += r
            selections.append(s)
        else:
            log(f"MOSI not found under {mosi_dir}: skipping mosi-imbalanced.")

    tables = summarise(runs, {s["dataset"]: s["rare"] for s in selections})
    suffix = f"_{args.classifier}" if args.classifier != "logreg" else ""
    if args.strategy != "auto":  # "paper", or a ratio: 0.5 -> "_ratio05" (no dot in a stem)
        suffix += (
            "_paper" if args.strategy == "paper" else f"_ratio{args.strategy}".replace(".", "")
        )
    stem = Path(args.out + suffix)
    stem = Path(str(stem) + ("_quick" if args.quick else ""))
    stem.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "note": "shared machine: timings are indicative",
    }
    payload = {"args": vars(args), "environment": env, "selection": selections, "runs": runs}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
    command = "python benchmarks/bench_oversamplers.py" + (" --quick" if args.quick else "")
    command += f" --seeds {' '.join(map(str, seeds))} --classifier {args.classifier}"
    command += f" --strategy {args.strategy} --grid {args.grid}"
    chosen = "; ".join(f"{s['dataset']}: {s['chosen']}" for s in selections)
    md = [
        "# Over-sampler benchmark",
        "",
        f"Command: `{command}`. Downstream classifier: `{args.classifier}`; sampling strategy "
        f"`{args.strategy}`. Test-set scores in %, "
        f"mean ± std over seeds {seeds}; EmoGAN parameters chosen on validation macro-F1: "
        f"{chosen}. Peak RSS = largest RSS increase during the fit. "
        f"Threads: {env['threads']}; shared machine, timings indicative.",
        "",
    ]
    for dataset, table in tables.items():
        md += [f"## {dataset}", "", markdown_table(table), ""]
    stem.with_suffix(".md").write_text("\n".join(md))
    log("\n".join(md))
    log(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")


if __name__ == "__main__":
    main()
