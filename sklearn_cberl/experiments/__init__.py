"""The honest experiment protocol: fit on train, select on validation, test once, over seeds.

Many MERC papers report the best *test* epoch or the best test run; that inflates the numbers
by choosing on the test set. Here every choice (hyper-parameters, pipeline variants, and the
classifier's early-stopping epoch, which uses a dialogue-level split of the *training* data)
is made without looking at the test split, which is scored exactly once per seed, and results
are reported as mean +/- std over seeds.

Modules: ``_protocol`` (fitting, selection, :class:`ProtocolResult`), ``_tables``
(``mean ± std`` cells, tables, JSON), and the paper reproduction built on them
(``_datasets``, ``_variants``, ``_reproduce``, ``_report``; public through
:mod:`sklearn_cberl.reproduce`).
"""

from ._datasets import DATASETS, load_dataset, split_frame_by_dialogue
from ._ladder import LADDER, check_rungs, ladder_summary, plot_ladder, run_ladder
from ._protocol import (
    ProtocolResult,
    fit_with_validation,
    make_run,
    run_protocol,
    select_on_validation,
    set_random_states,
)
from ._tables import markdown_table, mean_std, metric_table, summary_table, write_results
from ._variants import fit_utterance_baseline, utterance_features

__all__ = [
    "ProtocolResult",
    "run_protocol",
    "fit_with_validation",
    "set_random_states",
    "mean_std",
    "markdown_table",
    "summary_table",
    "write_results",
    "select_on_validation",
    "make_run",
    "metric_table",
    "DATASETS",
    "load_dataset",
    "split_frame_by_dialogue",
    "fit_utterance_baseline",
    "utterance_features",
    "LADDER",
    "check_rungs",
    "run_ladder",
    "ladder_summary",
    "plot_ladder",
]
