"""The ``cberl`` command line: demo, fit, predict, evaluate, reproduce, extract.

``cberl demo`` is the README's main job: synthetic conversations, the full CBERL pipeline,
a per-class report against a per-utterance baseline and a confusion-matrix PNG.

This module is the argument parser, the ``--threads`` set-up and the one-line error
reporting of :func:`main` (the ``cberl`` entry point); the command bodies are in
:mod:`sklearn_cberl.cli._commands` and their file and column helpers in
:mod:`sklearn_cberl.cli._io`. Both import only the standard library at module level.
"""

from __future__ import annotations

import argparse
import sys

from . import _commands as commands
from ._io import CLIError

__all__ = ["main", "build_parser"]

TRUST_HELP = (
    "also read joblib/pickle models; unpickling runs code chosen by whoever wrote the file, so "
    "use this only for files you trust"
)


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``cberl`` parser (``extract`` is listed; :func:`main` hands it its own parser)."""
    from ..paper import DATASETS

    parser = argparse.ArgumentParser(
        prog="cberl",
        description="CBERL: imbalanced multimodal emotion recognition in conversations.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def threads(p):
        p.add_argument(
            "--threads",
            type=_threads,
            default=1,
            help="torch threads: a number (default 1: the same results on every machine), or "
            "free = the cores other processes leave free",
        )

    def common(p, output_dir="cberl-output"):
        threads(p)
        p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--output-dir", default=output_dir)
        p.add_argument("-v", "--verbose", type=int, default=0, help="progress detail (0, 1, 2)")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")

    demo = sub.add_parser("demo", help="run the full pipeline on built-in synthetic conversations")
    demo.add_argument("--n-dialogues", type=int, default=200)
    demo.add_argument(
        "--write-csv",
        metavar="DIR",
        help="write the demo data as DIR/train.csv, dev.csv and test.csv (label column "
        "'emotion') for cberl fit / predict / evaluate, instead of running the demo",
    )
    common(demo)
    demo.set_defaults(func=commands.demo)

    fit = sub.add_parser("fit", help="fit the CBERL pipeline on an utterance table")
    fit.add_argument("data", help="CSV/parquet in the data-model schema plus a label column")
    fit.add_argument(
        "-m", "--model", required=True, help="where to save the fitted model (e.g. model.cberl)"
    )
    fit.add_argument(
        "--label",
        help="label column (default: 'label'; without one, the only non-numeric column "
        "besides dialogue_id and speaker, if there is exactly one)",
    )
    fit.add_argument("--valid", help="validation table for epoch selection (same schema)")
    fit.add_argument("--no-augment", action="store_true", help="drop the EmoGAN step")
    fit.add_argument(
        "--fusion",
        choices=("default", "separate", "end_to_end", "none"),
        default="default",
        help="where the modalities are fused: a DJVAE step, inside the classifier, or not at "
        "all (default: make_cberl_pipeline's)",
    )
    fit.add_argument("--param", action="append", help="step parameter, e.g. clf__gamma=0")
    common(fit)
    fit.set_defaults(func=commands.fit)

    ladder = sub.add_parser(
        "ladder", help="which CBERL stages help on your data: the stage ladder, on validation"
    )
    ladder.add_argument("data", help="training table (CSV/parquet) with a label column")
    ladder.add_argument("--valid", required=True, help="validation table (same columns)")
    ladder.add_argument("--test", help="test table: scored once per fit, never used to choose")
    ladder.add_argument("--label", help="label column (as for cberl fit)")
    ladder.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ladder.add_argument("--rungs", nargs="+", help="a subset of the rungs (default: all)")
    ladder.add_argument(
        "--scoring",
        default="f1_weighted",
        help="scikit-learn scorer: f1_weighted (WAF1, default), f1_macro, accuracy, ...",
    )
    ladder.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        help="the selected rung: the simplest rung within this many standard errors of the "
        "best validation score (default 1; 0: the best score)",
    )
    ladder.add_argument("--jobs", type=int, default=1, help="fits run side by side")
    ladder.add_argument("--param", action="append", help="step parameter, e.g. clf__gamma=0")
    common(ladder, output_dir="cberl-ladder")
    ladder.set_defaults(func=commands.ladder)

    predict = sub.add_parser("predict", help="predict emotions with a fitted model")
    predict.add_argument("data")
    predict.add_argument("-m", "--model", required=True)
    predict.add_argument("-o", "--output", help="CSV to write (default: stdout)")
    predict.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    predict.add_argument(
        "--label", help="label column to skip if present (default: the one the model was fit with)"
    )
    predict.add_argument("-q", "--quiet", action="store_true")
    threads(predict)
    predict.set_defaults(func=commands.predict)

    evaluate = sub.add_parser("evaluate", help="per-class report and confusion matrix")
    evaluate.add_argument("data")
    evaluate.add_argument("-m", "--model", required=True)
    evaluate.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    evaluate.add_argument("--label", help="label column (default: the one the model was fit with)")
    evaluate.add_argument("--output-dir", default="cberl-output")
    evaluate.add_argument("-q", "--quiet", action="store_true")
    threads(evaluate)
    evaluate.set_defaults(func=commands.evaluate)

    reproduce = sub.add_parser("reproduce", help="regenerate the paper's tables and figures")
    reproduce.add_argument("--dataset", choices=DATASETS, default="demo")
    reproduce.add_argument("--path", help="MELD CSV dir (meld-text) or feature pickle")
    reproduce.add_argument("--seeds", type=int, nargs="+")
    reproduce.add_argument("--quick", action="store_true", help="smoke run: less data/epochs")
    reproduce.add_argument("--max-epochs", type=int)
    reproduce.add_argument("--jobs", type=int, help="run the seeds in this many processes")
    common(reproduce, output_dir="benchmarks/results")
    reproduce.set_defaults(func=commands.reproduce)

    sub.add_parser("extract", help="raw conversations (manifest) -> feature table; see --help")
    return parser


def _threads(value):
    """``--threads`` values: ``free`` or a positive integer."""
    if value == "free":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a positive integer or 'free'")
    return n


def _run_with_threads(args):
    """Run the command with ``--threads`` torch threads (free: the cores left free)."""
    import os

    from .._config import config_context, resolve_threads

    n = resolve_threads(args.threads)
    args.threads = n
    if "torch" not in sys.modules:  # torch sizes its pool from this when it loads
        os.environ.setdefault("OMP_NUM_THREADS", str(n))
    with config_context(n_threads=n):  # every fit and predict of the command
        return args.func(args)


def main(argv=None) -> int:
    """Run the ``cberl`` command; return the exit status (2 for a user error, one line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["extract"]:
        # `cberl extract` has its own parser (sklearn_cberl.features.manifest).
        command, run = "extract", lambda: commands.extract(argparse.Namespace(rest=argv[1:]))
    else:
        args = build_parser().parse_args(argv)
        command, run = args.command, lambda: _run_with_threads(args)
    try:
        return run()
    except (CLIError, ValueError, TypeError) as exc:  # estimator errors name the column
        message = str(exc)
    except OSError as exc:  # a path the user named cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        message = f"{where}{exc.strerror or exc}"
    # One line, whatever the underlying message looks like.
    print(f"cberl {command}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2
