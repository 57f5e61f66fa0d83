"""Task-tuned text features on MELD: fine-tune all-MiniLM-L6-v2 with ``TunedTextEncoder``.

For every seed the encoder is fine-tuned on MELD's ``train`` split, its epoch chosen on
``dev`` (validation WAF1), and it embeds ``train``, ``dev`` and ``test``. Seeds listed in
``--cv-seeds`` also cross-fit the training features (``cv=k``; folds keep dialogues whole);
the encoder fitted on all training rows - the same one as the cheap mode's for that seed -
embeds dev and test either way. The features are cached under ``results/.cache`` as
``meld_tuned_c<context>_seed<seed>.npz``; ``bench_stages.py`` reads them as the data sets
``meld-tuned`` (in-sample training features), ``meld-tuned-cv`` (cross-fitted) and
``meld-tuned-context`` (a dialogue window of ``--context`` turns), so LR, the default CBERL
pipeline and every stage are scored on them by the same protocol as on frozen MiniLM.

Usage::

    python benchmarks/bench_text_tuning.py --seeds 0 1 2 --cv-seeds 0 --cv 3
    python benchmarks/bench_text_tuning.py --seeds 0 --context 2        # the window variant
    python benchmarks/bench_stages.py --datasets meld-text meld-tuned --rungs lr default \\
        --seeds 0 1 2 --output text_tuning_downstream

Writes ``results/text_tuning[_c<context>].json`` / ``.md``: per seed the epochs run and kept,
validation WAF1 per epoch, seconds per epoch and per fold, and inference speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CACHE, RESULTS, machine, provenance, provenance_lines, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MELD = ("CBERL_MELD_DIR", ROOT.parent / "shared" / "data" / "meld")
SPLITS = ("train", "valid", "test")


def cache_path(seed: int, context: int, class_weight: str | None = None) -> Path:
    weighting = f"_{class_weight}" if class_weight else ""
    return CACHE / f"meld_tuned_c{context}{weighting}_seed{seed}.npz"


def tuned_meld(seed: int, *, cross_fitted: bool = False, context: int = 0, class_weight=None):
    """MELD text with the tuned features of ``seed`` in place of frozen MiniLM (a Bunch as
    ``load_dataset("meld-text")`` returns)."""
    from sklearn_cberl.reproduce import load_dataset

    path = cache_path(seed, context, class_weight)
    if not path.is_file():
        raise SystemExit(
            f"{path} is missing: run benchmarks/bench_text_tuning.py --seeds {seed}"
            + (f" --cv-seeds {seed}" if cross_fitted else "")
            + (f" --context {context}" if context else "")
            + (f" --class-weight {class_weight}" if class_weight else "")
        )
    stored = np.load(path)
    if cross_fitted and "train_cv" not in stored:
        raise SystemExit(f"{path} has no cross-fitted features: rerun with --cv-seeds {seed}.")
    data = load_dataset("meld-text", os.environ.get(MELD[0], str(MELD[1])), cache_dir=CACHE)
    for split in SPLITS:
        key = "train_cv" if cross_fitted and split == "train" else split
        X = data[f"X_{split}"]
        meta = X.loc[:, ~X.columns.str.startswith("text_")]
        values = stored[key]
        block = pd.DataFrame(
            values, columns=[f"text_{j}" for j in range(values.shape[1])], index=X.index
        )
        data[f"X_{split}"] = pd.concat([meta, block], axis=1)
    data.description = (
        f"MELD text, official split, all-MiniLM-L6-v2 fine-tuned on train (seed {seed}, "
        f"context {context}; training features {'cross-fitted' if cross_fitted else 'in-sample'})"
    )
    return data


def run_seed(seed, args, raw):
    from sklearn_cberl.features import TunedTextEncoder

    cv = args.cv if seed in args.cv_seeds else None
    enc = TunedTextEncoder(
        context=args.context,
        cv=cv,
        max_epochs=args.max_epochs,
        lr=args.lr,
        class_weight=args.class_weight,
        random_state=seed,
        device=args.device,
        verbose=1,
    )
    columns = ["dialogue_id", "speaker", "turn", "utterance"]
    X = {s: raw[f"X_{s}"][columns] for s in SPLITS}
    start = time.perf_counter()
    train = enc.fit_transform(X["train"], raw.y_train, validation_data=(X["valid"], raw.y_valid))
    fit_s = time.perf_counter() - start
    out, infer = {}, {}
    for split in ("valid", "test") + (("train",) if cv else ()):
        start = time.perf_counter()
        out[split] = enc.transform(X[split])
        infer[split] = len(X[split]) / (time.perf_counter() - start)
    if cv:
        out["train_cv"] = train
    else:
        out["train"] = train
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cache_path(seed, args.context, args.class_weight), **out)
    epochs = [row["dur"] for row in enc.history_]
    return {
        "seed": seed,
        "cv": cv,
        "fit_s": fit_s,
        "final_s": enc.fit_time_["final"],
        "fold_s": enc.fit_time_.get("folds", []),
        "fold_epochs": [len(h) for h in getattr(enc, "fold_histories_", [])],
        "epoch_s": epochs,
        "n_iter": enc.n_iter_,
        "best_epoch": enc.best_epoch_,
        "valid_waf1": [float(row.get("valid_waf1", np.nan)) for row in enc.history_],
        "infer_utt_per_s": infer,
    }


def markdown(runs, meta, args) -> str:
    lines = [
        "# Fine-tuned text features on MELD (TunedTextEncoder)",
        "",
        f"`python benchmarks/bench_text_tuning.py {meta['argv']}` - {meta['machine']}, torch "
        f"{meta['torch']}, {meta['threads']} torch threads. all-MiniLM-L6-v2 fine-tuned on "
        f"MELD train ({args.max_epochs} epochs at most, lr {args.lr}, context {args.context}, "
        f"class weights {args.class_weight}), "
        "epoch kept by dev WAF1; wall times on a shared machine.",
        "",
        "| seed | cv | epochs run / kept | dev WAF1 per epoch | s per epoch | s per fold "
        "| fit s | embed utt/s (test) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        lines.append(
            f"| {r['seed']} | {r['cv'] or '-'} | {r['n_iter']} / {r['best_epoch']} | "
            + ", ".join(f"{v:.1f}" for v in r["valid_waf1"])
            + f" | {np.mean(r['epoch_s']):.0f} | "
            + (", ".join(f"{s:.0f}" for s in r["fold_s"]) or "-")
            + f" | {r['fit_s']:.0f} | {r['infer_utt_per_s']['test']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--cv-seeds", nargs="*", type=int, default=[])
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--context", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--class-weight", choices=("balanced",), default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    import torch

    from sklearn_cberl.datasets import load_meld_text

    if args.threads:
        torch.set_num_threads(args.threads)
        from sklearn_cberl import set_config  # the estimators' own thread policy

        set_config(n_threads=torch.get_num_threads())
    raw = load_meld_text(os.environ.get(MELD[0], str(MELD[1])))
    runs = []
    prov = provenance(argv=None if argv is None else [sys.argv[0], *argv])
    for seed in args.seeds:
        runs.append({**run_seed(seed, args, raw), "provenance": prov})
        print(runs[-1], flush=True)
    meta = {**machine(), "argv": " ".join(sys.argv[1:] if argv is None else argv),
            "threads": torch.get_num_threads()}  # fmt: skip
    name = "text_tuning" + (f"_c{args.context}" if args.context else "")
    name += f"_{args.class_weight}" if args.class_weight else ""
    # Runs of other seeds from earlier invocations stay (one row per seed).
    previous = RESULTS / f"{name}.json"
    if previous.is_file():
        done = {r["seed"] for r in runs}
        kept = [r for r in json.loads(previous.read_text())["runs"] if r["seed"] not in done]
        runs = sorted(kept + runs, key=lambda r: r["seed"])
    text = markdown(runs, meta, args).rstrip("\n") + "\n\n"
    text += "\n".join(provenance_lines(runs, label=lambda r: f"seed {r['seed']}")) + "\n"
    write_results(name, False, {"meta": meta, "runs": runs}, text)


if __name__ == "__main__":
    main()
