"""What DJVAE keeps of each modality: :func:`sklearn_cberl.diagnostics.fusion_report` per data set.

For each data set, a DJVAE at its defaults (the separate ``fuse`` step, and the starting point
of the default end-to-end fusion, which pretrains exactly this DJVAE) is fitted on the training
split (validation split for its validation loss) and reported on the **validation** split:
per modality, linear probes of the labels from the modality's input, from the latent and from
both (cross-validated by dialogue), reconstruction error, and the share of the latent the
modality drives. No test rows are read.

Usage::

    python benchmarks/bench_fusion_report.py                      # mosi, mosi-clean, demo,
                                                                  # meld-text, meld-text-cue
    python benchmarks/bench_fusion_report.py --datasets demo --seeds 0 1

Writes ``benchmarks/results/fusion_report.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd
from _common import RESULTS, provenance, provenance_lines

DATASETS = ("mosi", "mosi-clean", "demo", "meld-text", "meld-text-cue")


def report_one(name: str, seed: int) -> pd.DataFrame:
    """Fit DJVAE on ``name``'s training split; its fusion report on the validation split."""
    import torch
    from bench_stages import _data  # the stage ladder's data sets, paths and cache

    from sklearn_cberl import DJVAE
    from sklearn_cberl.diagnostics import fusion_report

    torch.set_num_threads(1)
    data = _data(name, False, seed, 0 if name == "mosi-clean" else None)
    djvae = DJVAE(device="cpu", random_state=seed)
    djvae.fit(data.X_train, validation_data=data.X_valid)
    table = fusion_report(djvae, data.X_valid, data.y_valid, random_state=seed)
    return table.assign(dataset=name, seed=seed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--output", default="fusion_report")
    args = parser.parse_args(argv)
    prov = provenance()
    tables = []
    for name in args.datasets:
        for seed in args.seeds:
            start = time.perf_counter()
            tables.append(report_one(name, seed))
            print(f"{name} seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    rows = pd.concat(tables).rename_axis("modality").reset_index()
    numeric = [c for c in rows.columns if c not in ("modality", "dataset", "seed")]
    summary = rows.groupby(["dataset", "modality"], sort=False)[numeric].mean().reset_index()
    (RESULTS / f"{args.output}.json").write_text(
        json.dumps({"provenance": prov, "rows": rows.to_dict(orient="records")}, indent=1)
    )
    lines = [
        "# What DJVAE keeps of each modality (`fusion_report`, validation split)",
        "",
        "Probes: cross-validated WAF1 (%) of standardised logistic regression on the "
        "validation rows, by dialogue. `reconstruction_mse` in DJVAE's standardised units "
        f"(1.0 = the mean). Mean over seeds {args.seeds}.",
        "",
    ]
    for name, part in summary.groupby("dataset", sort=False):
        lines += [f"## {name}", "", part.drop(columns="dataset").round(3).to_markdown(
            index=False), ""]  # fmt: skip
    lines += provenance_lines([{"provenance": prov}], label=lambda r: "all")
    (RESULTS / f"{args.output}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
