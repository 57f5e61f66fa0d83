"""Reproduce the paper's tables and figures with the honest protocol (public entry point).

The code lives in :mod:`sklearn_cberl.experiments`, built on the same protocol as
:func:`~sklearn_cberl.experiments.run_protocol`; the paper's numbers live in
:mod:`sklearn_cberl.paper`.
"""

from .experiments._datasets import DATASETS, load_dataset
from .experiments._reproduce import run_reproduction
from .paper import PAPER_RESULTS

__all__ = ["DATASETS", "PAPER_RESULTS", "load_dataset", "run_reproduction"]
