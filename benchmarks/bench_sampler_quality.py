"""How new are the synthetic rows? EmoGAN vs the smoothed bootstrap vs SMOTE.

For each data set and seed, every sampler raises the small classes to half the majority
(``UpToRatio(0.5)``) on the sampler's rows, and :func:`sklearn_cberl.diagnostics.
synthetic_diagnostics` measures the synthetic rows:

* ``to_source``: median distance to the real row each synthetic row was made from, relative to
  the median nearest-neighbour distance among real rows of its class (near-copies ~0);
* ``to_nearest_real``: the same for the nearest real row of the target class;
* ``judge``: accuracy (%) of an independent judge - logistic regression (balanced class
  weights) fitted on real rows the samplers never saw - on the synthetic rows, next to its
  accuracy on the samplers' real rows of the same classes (how recognisable the class is);
* EmoGAN's filter acceptance rate.

Data: ``demo`` - ``make_conversations(n_dialogues=160)``, 60 % of the dialogues for the
samplers and 40 % for the judge; ``mosi-imbalanced``, ``meld-starved`` and ``demo-starved``
(``sklearn_cberl.reproduce.load_dataset``) - the samplers see the training split, the judge
the validation split.

For the starved data sets (issue 27) the table also gives, per starved class, the rows added,
the distinct source utterances they were made from, the judge's accuracy on them and
EmoGAN's filter acceptance next to the share of the class's *real* rows its filter accepts
(``acceptance_rate_[c]["real"]``): how recognisable the class is to the filter at all.

Usage::

    python benchmarks/bench_sampler_quality.py --seeds 0 1 2 3 4
    python benchmarks/bench_sampler_quality.py --datasets meld-starved demo-starved \
        --ratio 0.1 --seeds 0 1 2 --output sampler_quality_starved
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MOSI = ROOT.parent / "shared" / "data" / "mosi"
MELD = ROOT.parent / "shared" / "data" / "meld"
STARVED = ("meld-starved", "demo-starved")


def _data(name):
    from sklearn_cberl.datasets import make_conversations
    from sklearn_cberl.reproduce import load_dataset

    if name == "demo":
        X, y = make_conversations(n_dialogues=160, random_state=0)
        ids = X["dialogue_id"].unique()
        fit = X["dialogue_id"].isin(ids[: int(0.6 * len(ids))]).to_numpy()
        return X[fit], y[fit], X[~fit], y[~fit]
    import os

    from _common import CACHE

    if name in STARVED:
        path = os.environ.get("CBERL_MELD_DIR", str(MELD))
        d = load_dataset(name, path, cache_dir=CACHE)
    else:
        d = load_dataset("mosi-imbalanced", os.environ.get("CBERL_MOSI_DIR", str(MOSI)))
    return d.X_train, d.y_train, d.X_valid, d.y_valid


def _samplers(seed, ratio=0.5, starved=False):
    from imblearn.over_sampling import SMOTE, RandomOverSampler

    from sklearn_cberl import ConversationSampler, EmoGANSampler, UpToRatio

    strategy = UpToRatio(ratio)

    def emogan(**params):
        return EmoGANSampler(sampling_strategy=ratio, device="cpu", random_state=seed, **params)

    samplers = {
        "EmoGAN": emogan(),
        "EmoGAN, no filter": emogan(filter_synthetic=False),
        "EmoGAN + mode seeking (lambda_diversity=1)": emogan(lambda_diversity=1.0),
    }
    if starved:  # the default before generation="auto": every class translated
        samplers["EmoGAN, generation='translate'"] = emogan(generation="translate")
    samplers["RandomOverSampler(shrinkage=1.0)"] = ConversationSampler(
        RandomOverSampler(sampling_strategy=strategy, shrinkage=1.0, random_state=seed)
    )
    samplers["SMOTE"] = ConversationSampler(SMOTE(sampling_strategy=strategy, random_state=seed))
    return samplers


def _starved_columns(name, sampler, diag, y_res):
    """Per starved class: rows added, distinct sources, judge accuracy, filter acceptance."""
    from sklearn_cberl.experiments._datasets import STARVED_CLASSES

    if name not in STARVED:
        return {}
    n = len(sampler.sample_indices_) - int(np.sum(sampler.synthetic_mask_))
    sources = np.asarray(sampler.sample_indices_)[n:]
    new_y = np.asarray(y_res)[n:]
    out = {}
    for c in STARVED_CLASSES:
        mine = new_y == c
        out[f"added {c}"] = int(mine.sum())
        out[f"sources {c}"] = int(len(np.unique(sources[mine])))
        out[f"judge {c}"] = float(diag.loc[c, "judge_accuracy"]) if c in diag.index else np.nan
        rates = getattr(sampler, "acceptance_rate_", {}).get(c)
        if rates:
            out[f"acceptance {c}"] = rates["all"]
            out[f"real acceptance {c}"] = rates["real"]
    return out


def run(datasets, seeds, ratio=0.5):
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_cberl.diagnostics import synthetic_diagnostics

    torch.set_num_threads(1)
    rows = []
    for name in datasets:
        X, y, X_judge, y_judge = _data(name)
        features = lambda F: F.filter(regex=r"^(?:text|audio|visual)_").to_numpy()  # noqa: E731
        judge = make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=3000)
        ).fit(features(X_judge), y_judge)
        real_pred = judge.predict(features(X))
        for seed in seeds:
            for label, sampler in _samplers(seed, ratio, name in STARVED).items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the filter's fallback warning
                    X_res, y_res = sampler.fit_resample(X, y)
                fit_time = time.perf_counter() - start
                diag = synthetic_diagnostics(
                    X, y, X_res, y_res, sampler.sample_indices_, judge=judge
                )
                classes = [c for c in diag.index if c != "all"]
                real = np.isin(np.asarray(y), classes)
                row = {
                    "dataset": name,
                    "sampler": label,
                    "seed": seed,
                    "n_synthetic": int(diag.loc["all", "n_synthetic"]),
                    "to_source": float(diag.loc["all", "to_source"]),
                    "to_nearest_real": float(diag.loc["all", "to_nearest_real"]),
                    "judge": float(diag.loc["all", "judge_accuracy"]),
                    "judge_on_real": 100 * float(np.mean(real_pred[real] == np.asarray(y)[real])),
                    "fit_s": fit_time,
                    "per_class": diag.reset_index().to_dict(orient="list"),
                }
                row.update(_starved_columns(name, sampler, diag, y_res))
                rates = getattr(sampler, "acceptance_rate_", None)
                if rates:
                    row["acceptance"] = {str(k): v for k, v in rates.items()}
                    row["acceptance_all"] = float(np.mean([v["all"] for v in rates.values()]))
                rows.append(row)
                print(
                    f"{name} {label} seed {seed}: to_source {row['to_source']:.2f}, judge "
                    f"{row['judge']:.1f} % ({fit_time:.0f}s)",
                    flush=True,
                )
    return rows


def _starved_table(part) -> list:
    """Rows added, distinct sources, judge accuracy and filter acceptance (candidates / real
    rows) per starved class, mean over seeds."""
    from sklearn_cberl.experiments._datasets import STARVED_CLASSES

    head = "| sampler | " + " | ".join(
        f"{c}: added, sources, judge (%), acceptance (candidates / real rows)"
        for c in STARVED_CLASSES
    )
    lines = ["", head + " |", "| --- |" + " --- |" * len(STARVED_CLASSES)]
    for label, group in part.groupby("sampler", sort=False):
        cells = []
        for c in STARVED_CLASSES:
            cell = (
                f"{group[f'added {c}'].mean():.0f}, {group[f'sources {c}'].mean():.0f}, "
                f"{group[f'judge {c}'].mean():.1f}"
            )
            if f"acceptance {c}" in group and group[f"acceptance {c}"].notna().all():
                cell += (
                    f", {group[f'acceptance {c}'].mean():.2f} / "
                    f"{group[f'real acceptance {c}'].mean():.2f}"
                )
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def markdown(rows, argv) -> str:
    frame = pd.DataFrame(rows)
    lines = [
        "# Synthetic-row quality: how far from their sources, and judged as their class?",
        "",
        f"`python benchmarks/bench_sampler_quality.py {argv}` - {machine()['machine']}. Each "
        "sampler raises the small classes to the same share of the majority (`--ratio`); "
        "mean ± std over seeds. "
        "Distances relative to the median nearest-neighbour distance among real rows of the "
        "class (standardised); judge = balanced logistic regression fitted on real rows the "
        "samplers never saw; `judge on real` = its accuracy on the samplers' real rows of "
        "the same classes.",
    ]
    for name, part in frame.groupby("dataset", sort=False):
        head = "| sampler | to source | to nearest real | judge (%) | judge on real (%) | "
        head += "filter acceptance | fit s |"
        lines += ["", f"## {name}", "", head, "| --- | --- | --- | --- | --- | --- | --- |"]
        for label, group in part.groupby("sampler", sort=False):

            def ms(key, digits=2, group=group):
                values = group[key].dropna()
                if values.empty:
                    return "-"
                return f"{values.mean():.{digits}f} ± {values.std(ddof=0):.{digits}f}"

            accept = ms("acceptance_all") if "acceptance_all" in group else "-"
            lines.append(
                f"| {label} | {ms('to_source')} | {ms('to_nearest_real')} | {ms('judge', 1)} | "
                f"{group['judge_on_real'].iloc[0]:.1f} | {accept} | {group['fit_s'].mean():.0f} |"
            )
        if name in STARVED:
            lines += _starved_table(part)
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["demo", "mosi-imbalanced"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--quick", action="store_true", help="one seed, demo only")
    parser.add_argument(
        "--ratio", type=float, default=0.5, help="every class raised to this x the majority"
    )
    parser.add_argument("--output", default="sampler_quality", help="result name")
    args = parser.parse_args(argv)
    if args.quick:
        args.datasets, args.seeds = ["demo"], [0]
    rows = run(args.datasets, args.seeds, args.ratio)
    text = markdown(rows, " ".join(sys.argv[1:] if argv is None else argv))
    payload = {**machine(), "rows": rows}
    write_results(args.output, args.quick, json.loads(json.dumps(payload, default=str)), text)


if __name__ == "__main__":
    main()
