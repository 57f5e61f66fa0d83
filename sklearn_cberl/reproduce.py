"""Reproduce the paper's tables and figures with the honest protocol (public entry point).

The code lives in :mod:`sklearn_cberl.experiments` (``_datasets``, ``_variants``,
``_reproduce``, ``_report``), built on the same protocol as
:func:`~sklearn_cberl.experiments.run_protocol`; the paper's numbers live in
:mod:`sklearn_cberl.paper`. This module keeps every name it had importable from here: the
CLI imports ``_split_dialogues`` and the benchmarks ``_features`` and ``_fit_flat``.
"""

# ruff: noqa: F401 - re-exports
from .experiments._datasets import DATASETS, _split_dialogues, _subsample, load_dataset
from .experiments._reproduce import run_reproduction
from .experiments._variants import (
    SAMPLER_LABELS,
    Variant,
    _features,
    _fit_flat,
    _fit_variant,
    _Prefixes,
    build_variants,
)
from .paper import PAPER_AUGMENTATION, PAPER_RESULTS, TABLE_ORDER, TABLE_VI_REFERENCE_SIZE

__all__ = ["DATASETS", "PAPER_RESULTS", "load_dataset", "run_reproduction"]
