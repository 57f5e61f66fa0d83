"""EmoGANSampler fit time at 10k utterances x 712 features (issue target: minutes, not tens).

``make_conversations`` data cut to its first 10,000 rows (text/audio/visual 100/100/512-d),
default ``EmoGANSampler`` (balance every class to the majority: ~23k synthetic rows), timed
for each requested number of torch threads.

Usage::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_sampler_speed.py --threads 1 2
    python benchmarks/bench_sampler_speed.py --quick

Writes ``benchmarks/results/sampler_speed.{json,md}`` (``sampler_speed_quick.*`` with
``--quick``).
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch
from _common import PeakRSS, machine, write_results

from sklearn_cberl import EmoGANSampler
from sklearn_cberl.datasets import make_conversations
from sklearn_cberl.experiments import markdown_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--utterances", type=int, default=10_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="1,000 utterances, 2 epochs")
    args = parser.parse_args(argv)
    n = 1_000 if args.quick else args.utterances
    # ~15 utterances per dialogue on average: generate enough dialogues, then cut.
    X, y = make_conversations(n_dialogues=n // 14 + 10, random_state=0)
    X, y = X.iloc[:n], y.iloc[:n]
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        from sklearn_cberl import set_config  # the estimators' own thread policy

        set_config(n_threads=torch.get_num_threads())
        sampler = EmoGANSampler(random_state=0, device=args.device)
        if args.quick:
            sampler.set_params(max_epochs=2, classifier_max_epochs=2)
        with PeakRSS() as rss:
            start = time.perf_counter()
            X_res, _ = sampler.fit_resample(X, y)
            seconds = time.perf_counter() - start
        rows.append(
            {
                "threads": threads,
                "utterances": len(X),
                "features": X.shape[1] - 3,
                "synthetic rows": len(X_res) - len(X),
                "fit_resample s": round(seconds, 1),
                "peak RSS MiB": round(rss.mib),
                "load average": round(os.getloadavg()[0], 1),
            }
        )
        print(rows[-1], flush=True)
    meta = {**machine(), "device": args.device}
    md = [
        "# EmoGANSampler fit time",
        "",
        f"`python benchmarks/bench_sampler_speed.py --threads {' '.join(map(str, args.threads))}"
        f"{' --quick' if args.quick else ''}`; default parameters; {meta['machine']}, "
        f"torch {meta['torch']}, "
        f"OMP_WAIT_POLICY={meta['omp_wait_policy']}, device {args.device}. Peak RSS = largest "
        "RSS increase during the fit.",
        "",
        markdown_table(pd.DataFrame(rows).set_index("threads")),
        "",
    ]
    write_results("sampler_speed", args.quick, {"meta": meta, "runs": rows}, "\n".join(md))


if __name__ == "__main__":
    main()
