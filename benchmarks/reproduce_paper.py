"""Regenerate the paper's Tables I-VI and Figures 6-9 for one dataset (honest protocol).

Usage::

    python benchmarks/reproduce_paper.py --dataset demo --quick          # smoke run, ~1 min
    python benchmarks/reproduce_paper.py --dataset meld-text --seeds 0 1 2 --jobs 2
    python benchmarks/reproduce_paper.py --dataset iemocap --path IEMOCAP_features.pkl

Writes ``benchmarks/results/<dataset>/{summary.json,report.md,*.png}``. Same as
``cberl reproduce``; the logic lives in :mod:`sklearn_cberl.reproduce`.
"""

import sys

from sklearn_cberl.cli import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", *sys.argv[1:]]))
