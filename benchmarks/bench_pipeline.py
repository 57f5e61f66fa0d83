"""Fit time of the full CBERL pipeline at IEMOCAP size (issue target: <= 10 min on 2 CPU cores).

IEMOCAP's pre-extracted features: 7,433 utterances in 151 dialogues (120 for training),
text/audio/visual 100/100/512-d. This script generates a synthetic set of that shape with
``make_conversations`` (long dialogues: 30-68 utterances, ~7.4k in all), fits
``EmoGANSampler -> DJVAE -> CBERLClassifier`` with the paper's hyper-parameters
(``make_cberl_pipeline`` defaults, Table VI's IEMOCAP additions), and reports the time and
peak RSS of every stage plus the held-out WAF1, over seeds.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_pipeline.py --seeds 0 1 2
    python benchmarks/bench_pipeline.py --quick

Writes ``benchmarks/results/pipeline.{json,md}`` (``pipeline_quick.*`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch
from _common import PeakRSS, machine, write_results

from sklearn_cberl import AddPerClass, make_cberl_pipeline
from sklearn_cberl.datasets import make_conversations
from sklearn_cberl.experiments import markdown_table, mean_std, split_frame_by_dialogue
from sklearn_cberl.metrics import weighted_f1

#: Paper Table VI IEMOCAP additions mapped onto make_conversations' MELD-named classes
#: (same number of additions, 900 in total on ~5.8k training utterances).
ADDITIONS = {"joy": 250, "neutral": 80, "sadness": 120, "fear": 120, "anger": 250, "disgust": 80}


def run(seed: int, quick: bool, device: str) -> dict:
    n_dialogues, length = (30, (20, 40)) if quick else (151, (30, 68))
    X, y = make_conversations(n_dialogues=n_dialogues, dialogue_length=length, random_state=seed)
    data = split_frame_by_dialogue(X, y, (0.72, 0.08, 0.20), seed=seed)
    pipe = make_cberl_pipeline(
        sampling_strategy=AddPerClass(ADDITIONS), device=device, random_state=seed
    )
    if quick:
        pipe.set_params(aug__max_epochs=2, fuse__max_epochs=2, clf__max_epochs=2)
    row = {"seed": seed, "utterances": len(X), "train_utterances": len(data.X_train)}
    Xt, yt = data.X_train, data.y_train
    total = 0.0
    with PeakRSS() as memory:
        for name, step in pipe.steps:
            start = time.perf_counter()
            if name == "aug":
                Xt, yt = step.fit_resample(Xt, yt)
            elif name == "fuse":
                Xt = step.fit_transform(Xt, yt)
                X_valid = step.transform(data.X_valid)
            else:
                step.fit(Xt, yt, validation_data=(X_valid, data.y_valid))
            row[f"{name}_s"] = time.perf_counter() - start
            total += row[f"{name}_s"]
    row["fit_s"] = total
    row["epochs"] = int(pipe.named_steps["clf"].n_iter_)
    row["peak_rss_mib"] = memory.mib
    start = time.perf_counter()
    y_pred = pipe.predict(data.X_test)
    row["predict_s"] = time.perf_counter() - start
    row["test_waf1"] = 100 * weighted_f1(data.y_test, y_pred)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from sklearn_cberl import set_config  # the estimators' own thread policy

    set_config(n_threads=torch.get_num_threads())
    rows = []
    for seed in args.seeds:
        rows.append(run(seed, args.quick, args.device))
        print({k: round(v, 2) if isinstance(v, float) else v for k, v in rows[-1].items()})
    keys = ["aug_s", "fuse_s", "clf_s", "fit_s", "predict_s", "epochs", "peak_rss_mib", "test_waf1"]

    table = pd.DataFrame(
        {k: [mean_std([r[k] for r in rows], 1)] for k in keys}, index=["full pipeline"]
    ).rename_axis("model")
    meta = {
        **machine(),
        "threads": args.threads,
        "load_average_at_end": os.getloadavg()[0],
        "device": args.device,
        "seeds": args.seeds,
        "utterances": rows[0]["utterances"],
        "train_utterances": rows[0]["train_utterances"],
    }
    md = [
        "# Full pipeline fit at IEMOCAP size",
        "",
        f"`python benchmarks/bench_pipeline.py --seeds {' '.join(map(str, args.seeds))}`; "
        f"{meta['utterances']} synthetic utterances (text/audio/visual 100/100/512), "
        f"{meta['train_utterances']} for training; paper hyper-parameters, Table VI IEMOCAP "
        f"additions; {meta['machine']}, torch {meta['torch']}, {args.threads} threads, "
        f"OMP_WAIT_POLICY={meta['omp_wait_policy']}, device {args.device}; load average "
        f"{meta['load_average_at_end']:.1f} at the end. Seconds per stage, mean ± std over "
        "seeds; peak RSS = largest RSS increase during the fit (MiB).",
        "",
        markdown_table(table),
        "",
    ]
    write_results("pipeline", args.quick, {"meta": meta, "runs": rows}, "\n".join(md))


if __name__ == "__main__":
    main()
