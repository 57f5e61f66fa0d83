"""``cberl demo`` over seeds: the numbers docs/getting-started.md quotes.

Runs ``cberl demo --seed S`` (200 synthetic dialogues, the default pipeline against a
per-utterance logistic regression, one torch thread) in a fresh process per seed, exactly as
a user would, and reads the WAF1 / macro-F1 lines it prints. Reports mean +/- std over seeds;
no per-class F1 (a class with a handful of test utterances gives no figure worth quoting).

Usage::

    python benchmarks/bench_demo.py                 # seeds 0-4
    python benchmarks/bench_demo.py --seeds 0 1     # fewer

Writes ``results/demo_seeds.json`` and ``results/demo_seeds.md``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, provenance, provenance_lines, write_results  # noqa: E402

SCORES = re.compile(r"WAA ([\d.]+)\s+WAF1 ([\d.]+)\s+macro-F1 ([\d.]+)")


def run_demo(seed: int) -> dict:
    """One ``cberl demo --seed seed``; the baseline's and the pipeline's test scores."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "sklearn_cberl.cli", "demo", "--seed", str(seed),
                   "--output-dir", tmp]  # fmt: skip
        start = time.perf_counter()
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    (b_waa, b_waf1, b_macro), (waa, waf1, macro) = SCORES.findall(out)[-2:]
    fit = float(re.search(r"fit (\d+)s", out).group(1))
    return {"seed": seed, "seconds": time.perf_counter() - start, "fit_s": fit,
            "lr_waf1": float(b_waf1), "lr_macro_f1": float(b_macro),
            "cberl_waa": float(waa), "cberl_waf1": float(waf1),
            "cberl_macro_f1": float(macro)}  # fmt: skip


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args(argv)
    prov = provenance()
    rows = []
    for seed in args.seeds:
        rows.append(run_demo(seed))
        print(rows[-1], flush=True)

    def cell(key):
        values = np.array([r[key] for r in rows])
        return f"{values.mean():.2f} ± {values.std():.2f}"

    lines = [
        "# `cberl demo` over seeds",
        "",
        f"{machine()['machine']}; `cberl demo --seed S` for seeds {args.seeds}, one torch "
        "thread, test split of 200 synthetic dialogues (70/10/20 by dialogue); mean ± std.",
        "",
        "| model | WAF1 | macro-F1 |",
        "| --- | --- | --- |",
        f"| per-utterance LR | {cell('lr_waf1')} | {cell('lr_macro_f1')} |",
        f"| CBERL pipeline (default) | {cell('cberl_waf1')} | {cell('cberl_macro_f1')} |",
        "",
        f"Pipeline fit: {cell('fit_s')} s per seed.",
        "",
        *provenance_lines([{"provenance": prov}]),
    ]
    write_results("demo_seeds", False, {"meta": machine(), "provenance": prov, "runs": rows},
                  "\n".join(lines))  # fmt: skip


if __name__ == "__main__":
    main()
