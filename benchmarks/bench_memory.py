"""Peak memory of the full CBERL pipeline fit on CPU as the number of utterances grows.

What is measured
    ``make_cberl_pipeline()`` (EmoGANSampler -> DJVAE -> CBERLClassifier, paper-default
    architectures, ``sampling_strategy="auto"``, i.e. every class over-sampled to the size of
    the majority class: the most memory-hungry setting) is fitted on CPU on
    :func:`~sklearn_cberl.datasets.make_conversations` data with the three standard modality
    widths (text 100 + audio 100 + visual 512 = 712 features) at several sizes. Every
    (size, seed) runs in a fresh Python process, so each peak is that fit's own:

    * ``rss_before_fit_mb``: resident set size after the imports and the data generation;
    * ``peak_rss_mb``: the process's high-water mark (``getrusage`` ``ru_maxrss``);
    * ``fit_increase_mb``: highest RSS sampled (every 5 ms, ``/proc/self/statm``) during
      ``fit`` minus ``rss_before_fit_mb`` - the memory the fit itself needs;
    * ``rows_after_augmentation``: utterances the fusion and the classifier train on.

    Memory does not depend on the number of epochs (every step trains in mini-batches and
    keeps per-epoch scalars only), so each step runs ``--epochs`` epochs (default 2) to keep
    the run short; fit times are therefore not training-time figures.

No O(n^2): the report gives the fit's increase per 1000 utterances and the ratio of the
increases between consecutive sizes; a quadratic term would show up as a ratio near 4 for a
doubling (graphs are built per dialogue inside the classifier, so their size grows with the
number of utterances times the context window, not with its square).

Usage::

    python benchmarks/bench_memory.py --quick             # smoke test, < 1 minute
    python benchmarks/bench_memory.py                     # 5k, 10k, 20k utterances
    python benchmarks/bench_memory.py --sizes 20000 --seeds 0 1

Timings and RSS taken on a shared machine are indicative (RSS depends little on load).
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
from _common import RESULTS, PeakRSS

MODALITIES = {"text": 100, "audio": 100, "visual": 512}
#: Mean dialogue length of make_conversations' default (6..24 utterances).
MEAN_DIALOGUE_LENGTH = 15


def _peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes vs KiB


def child(n_utterances: int, seed: int, epochs: int) -> dict:
    """One measurement (runs in its own process)."""
    import torch

    from sklearn_cberl import make_cberl_pipeline
    from sklearn_cberl.datasets import make_conversations

    torch.set_num_threads(1)
    n_dialogues = max(2, int(np.ceil(1.2 * n_utterances / MEAN_DIALOGUE_LENGTH)))
    X, y = make_conversations(n_dialogues=n_dialogues, modalities=MODALITIES, random_state=seed)
    X, y = (
        X.iloc[:n_utterances].reset_index(drop=True),
        y.iloc[:n_utterances].reset_index(drop=True),
    )
    pipe = make_cberl_pipeline(
        device="cpu",
        random_state=seed,
        aug__max_epochs=epochs,
        aug__classifier_max_epochs=epochs,
        fuse__max_epochs=epochs,
        clf__max_epochs=epochs,
    )
    with PeakRSS() as memory:
        start = time.perf_counter()
        pipe.fit(X, y)
        fit_time = time.perf_counter() - start
    aug = pipe.named_steps["aug"]
    return {
        "n_utterances": int(len(X)),
        "n_dialogues": int(X["dialogue_id"].nunique()),
        "n_features": int(sum(MODALITIES.values())),
        "seed": seed,
        "rows_after_augmentation": int(len(aug.sample_indices_)),
        "data_mb": float(X.memory_usage(deep=True).sum() / 2**20),
        "rss_before_fit_mb": memory.base / 2**20,
        "peak_rss_mb": _peak_mb(),
        "fit_increase_mb": memory.mib,
        "fit_time_s": fit_time,
    }


def run_child(n: int, seed: int, epochs: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, __file__, "--child", str(n), str(seed), "--epochs", str(epochs)]
    out = subprocess.run(command, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for n in sorted({r["n_utterances"] for r in runs}):
        group = [r for r in runs if r["n_utterances"] == n]
        row = {"n_utterances": n}
        for key in (
            "rows_after_augmentation",
            "data_mb",
            "rss_before_fit_mb",
            "peak_rss_mb",
            "fit_increase_mb",
            "fit_time_s",
        ):
            values = np.array([r[key] for r in group], dtype=float)
            row[key] = {"mean": float(values.mean()), "std": float(values.std())}
        row["fit_increase_per_1k_mb"] = row["fit_increase_mb"]["mean"] / (n / 1000)
        rows.append(row)
    for prev, row in zip(rows[:-1], rows[1:]):
        row["growth_vs_previous"] = {
            "utterances": row["n_utterances"] / prev["n_utterances"],
            "fit_increase": row["fit_increase_mb"]["mean"] / prev["fit_increase_mb"]["mean"],
        }
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    def ms(cell, digits=0):
        return f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"

    lines = [
        "# Memory: full pipeline fit on CPU",
        "",
        f"`{meta['command']}` - {meta['n_seeds']} seed(s), {meta['epochs']} epoch(s) per step, "
        f"{meta['features']} features, one torch thread, {meta['platform']}, "
        f"torch {meta['torch']}. Shared machine: times are indicative.",
        "",
        "| utterances | rows after EmoGAN | data (MB) | RSS before fit (MB) | peak RSS (MB) "
        "| fit increase (MB) | per 1k utterances (MB) | growth (n ratio -> increase ratio) "
        "| fit time (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        growth = row.get("growth_vs_previous")
        growth = f"x{growth['utterances']:.1f} -> x{growth['fit_increase']:.2f}" if growth else "-"
        lines.append(
            f"| {row['n_utterances']} | {row['rows_after_augmentation']['mean']:.0f} "
            f"| {row['data_mb']['mean']:.0f} | {ms(row['rss_before_fit_mb'])} "
            f"| {ms(row['peak_rss_mb'])} | {ms(row['fit_increase_mb'])} "
            f"| {row['fit_increase_per_1k_mb']:.1f} | {growth} | {ms(row['fit_time_s'], 1)} |"
        )
    lines += [
        "",
        "A quadratic memory term would make the increase ratio approach the square of the",
        "size ratio (x4 for a doubling); a linear one keeps it at or below the size ratio",
        "(the fixed cost of the networks and the torch allocator makes it smaller).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 10000, 20000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs of every step")
    parser.add_argument("--quick", action="store_true", help="smoke run: 500/1000/2000, 1 epoch")
    parser.add_argument("--out", default=str(RESULTS / "memory"), help="output path stem")
    parser.add_argument("--child", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.epochs)))
        return

    import torch

    sizes = [500, 1000, 2000] if args.quick else args.sizes
    seeds = args.seeds[:1] if args.quick else args.seeds
    epochs = 1 if args.quick else args.epochs
    runs = []
    for n in sizes:
        for seed in seeds:
            result = run_child(n, seed, epochs)
            print(
                f"n={n} seed={seed}: peak RSS {result['peak_rss_mb']:.0f} MB, fit +"
                f"{result['fit_increase_mb']:.0f} MB, {result['fit_time_s']:.1f} s",
                flush=True,
            )
            runs.append(result)
    rows = summarise(runs)
    meta = {
        "command": "python benchmarks/bench_memory.py"
        + (" --quick" if args.quick else f" --sizes {' '.join(map(str, sizes))}")
        + ("" if args.quick else f" --seeds {' '.join(map(str, seeds))} --epochs {epochs}"),
        "n_seeds": len(seeds),
        "epochs": epochs,
        "features": f"{sum(MODALITIES.values())} ({MODALITIES})",
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
    }
    stem = Path(args.out + ("_quick" if args.quick else ""))
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(
        json.dumps({**meta, "summary": rows, "runs": runs}, indent=2)
    )
    stem.with_suffix(".md").write_text(markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
