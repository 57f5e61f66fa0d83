"""The ``cberl`` command line: demo, fit, predict, evaluate, reproduce, extract.

``cberl demo`` is the README's main job: synthetic conversations, the full CBERL pipeline,
a per-class report against a per-utterance baseline and a confusion-matrix PNG.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

__all__ = ["main", "build_parser"]

TRUST_HELP = (
    "also read joblib/pickle models; unpickling runs code chosen by whoever wrote the file, so "
    "use this only for files you trust"
)


class CLIError(Exception):
    """A user error: printed as one line, exit status 2 (no traceback)."""


# ----------------------------------------------------------------------------- helpers
def _read_table(path):
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such file.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except Exception as exc:  # parser errors of many kinds: report them as one line
        raise CLIError(f"{path}: could not be read as {suffix[1:]} ({exc}).") from exc
    raise CLIError(f"{path}: unsupported file type {suffix!r}; expected .csv or .parquet.")


def _columns_hint(wanted, columns) -> str:
    """Close matches of the wanted name among ``columns``, else the columns themselves."""
    import difflib

    columns = [str(c) for c in columns]
    close = difflib.get_close_matches(str(wanted), columns, n=3)
    if close:
        return f"did you mean {', '.join(map(repr, close))}?"
    shown = ", ".join(columns[:30]) + (
        f", ... ({len(columns)} in all)" if len(columns) > 30 else ""
    )
    return f"columns: {shown}"


def _split_label(frame, label, path):
    if label not in frame.columns:
        raise CLIError(
            f"{path}: no label column {label!r} ({_columns_hint(label, frame.columns)}); set "
            "it with --label."
        )
    return frame.drop(columns=[label]), frame[label]


def _model_columns(model, frame, path, label):
    """The feature columns the model was fitted on, by name and in its order; the label
    column (the model's own, or ``label``) and any extra column are left out."""
    label = getattr(model, "label_column_", None) or label
    names = getattr(model, "feature_names_in_", None)
    if names is None:
        return frame.drop(columns=[label]) if label in frame.columns else frame
    missing = [c for c in names if c not in frame.columns]
    if missing:
        # Close matches among the columns the model does not use (a renamed or misspelt one).
        spare = [c for c in frame.columns if c not in set(names)]
        hints = "; ".join(f"{c!r}: {_columns_hint(c, spare)}" for c in missing[:3])
        raise CLIError(
            f"{path}: missing column(s) {missing[:10]}{' ...' if len(missing) > 10 else ''} "
            f"that the model was fitted on ({hints})."
        )
    return frame[list(names)]


def _parse_params(pairs):
    """``["clf__gamma=0", "aug=passthrough"]`` -> dict with Python literals where possible."""
    params = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CLIError(f"--param {pair!r}: expected KEY=VALUE, e.g. clf__gamma=0.")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def _load_model(path, trust_pickle=False):
    """A model file through the pickle-free loader; a joblib pickle only on explicit opt-in
    (unpickling runs code chosen by whoever wrote the file)."""
    from .persistence import load

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such model file (create one with `cberl fit`).")
    if trust_pickle:
        import joblib

        try:
            return joblib.load(path)
        except Exception as exc:  # not a pickle, truncated, missing module: one line
            raise CLIError(f"{path}: not a readable joblib/pickle model ({exc}).") from exc
    try:
        return load(path)
    except ValueError as exc:
        raise CLIError(
            f"{exc} A joblib/pickle model can run code when loaded: only if you trust its "
            "origin, pass --trust-pickle."
        ) from exc


def _check_output(output, *inputs, option="-o"):
    """Refuse an output path that is one of the command's input files or lies below a file."""
    if output is None:
        return
    target = Path(output).resolve()
    for path in inputs:
        if path is not None and Path(path).resolve() == target:
            raise CLIError(f"{option} {output}: that is an input file; choose another path.")
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise CLIError(f"{option} {output}: {parent} is a file, not a directory.")


def _table_errors(method, X, path):
    """Call an estimator method on a table read from ``path``; its validation errors speak
    of ``X``, the API argument: name the file instead."""
    try:
        return method(X)
    except ValueError as exc:
        message = str(exc)
        for start in ("X is ", "X has ", "X contains "):
            if message.startswith(start):
                message = f"{path} {start[2:]}{message[len(start) :]}"
        raise CLIError(message if message != str(exc) else f"{path}: {message}") from exc


def _log(args, message):
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- commands
def _demo(args) -> int:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .conversation import METADATA_COLUMNS
    from .datasets import make_conversations
    from .metrics import emotion_report, format_report
    from .pipeline import make_cberl_pipeline
    from .plotting import plot_confusion_matrix
    from .reproduce import _split_dialogues

    out = Path(args.output_dir)
    X, y = make_conversations(n_dialogues=args.n_dialogues, random_state=args.seed)
    data = _split_dialogues(X, y, (0.7, 0.1, 0.2), seed=args.seed)
    print(
        f"Synthetic conversations: {len(X)} utterances in {X['dialogue_id'].nunique()} dialogues "
        f"(text 100-d, audio 100-d, visual 512-d); train/valid/test by dialogue: "
        f"{len(data.X_train)}/{len(data.X_valid)}/{len(data.X_test)}"
    )
    print((y.value_counts(normalize=True) * 100).round(2).rename("% of utterances").to_string())
    labels = np.unique(y)

    features = list(METADATA_COLUMNS)
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=0.05))
    baseline.fit(data.X_train.drop(columns=features), data.y_train)
    base_pred = baseline.predict(data.X_test.drop(columns=features))

    pipe = make_cberl_pipeline(device=args.device, random_state=args.seed, verbose=args.verbose)
    pipe.verbose = not args.quiet  # a "[Pipeline] ... total=" line as each stage ends
    start = time.perf_counter()
    stages = " -> ".join(type(s).__name__ for _, s in pipe.steps)
    _log(args, f"[demo] fitting {stages} ({args.threads} torch thread(s))")
    # The validation split (never the test) reaches the classifier through the fitted
    # earlier steps, for epoch selection.
    pipe.fit(data.X_train, data.y_train, validation_data=(data.X_valid, data.y_valid))
    fit_time = time.perf_counter() - start
    y_pred = pipe.predict(data.X_test)

    print("\nPer-utterance logistic regression (context-free baseline), test dialogues:")
    print(format_report(emotion_report(data.y_test, base_pred, labels=labels)))
    print(f"\nCBERL pipeline (EmoGANSampler -> DJVAE -> CBERLClassifier), fit {fit_time:.0f}s:")
    print(format_report(emotion_report(data.y_test, y_pred, labels=labels)))
    png = out / "demo_confusion_matrix.png"
    plot_confusion_matrix(data.y_test, y_pred, labels=labels, title="CBERL demo", path=png)
    print(f"\nConfusion matrix: {png}")
    return 0


def _fit(args) -> int:
    _check_output(args.model, args.data, args.valid, option="-m")
    X, y = _split_label(_read_table(args.data), args.label, args.data)
    from .persistence import save  # torch: only once the input is known to be readable
    from .pipeline import make_cberl_pipeline

    pipe = make_cberl_pipeline(
        augment=not args.no_augment,
        fuse=not args.no_fuse,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    params = _parse_params(args.param)
    for key in params:
        step = key.split("__", 1)[0]
        if "__" in key and pipe.named_steps.get(step) == "passthrough":
            flag = {"aug": "--no-augment", "fuse": "--no-fuse"}.get(step, "")
            raise CLIError(f"--param {key}: the {step!r} step is dropped ({flag}).")
    try:
        pipe.set_params(**params)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CLIError(f"--param: {exc}") from exc
    pipe.verbose = not args.quiet  # a "[Pipeline] ... total=" line as each stage ends
    start = time.perf_counter()
    if args.valid is not None:
        X_valid, y_valid = _split_label(_read_table(args.valid), args.label, args.valid)
        pipe.fit(X, y, validation_data=(X_valid, y_valid))  # a CBERLPipeline
    else:
        pipe.fit(X, y)
    pipe.label_column_ = args.label  # predict / evaluate find (and skip) it by name
    Path(args.model).parent.mkdir(parents=True, exist_ok=True)
    save(pipe, args.model)  # pickle-free: `cberl predict` reads it without running code
    _log(args, f"[fit] {len(X)} utterances in {time.perf_counter() - start:.0f}s -> {args.model}")
    return 0


def _predict(args) -> int:
    import pandas as pd

    _check_output(args.output, args.data, args.model)
    frame = _read_table(args.data)
    model = _load_model(args.model, args.trust_pickle)
    X = _model_columns(model, frame, args.data, args.label or "label")
    pred = pd.Series(_table_errors(model.predict, X, args.data), index=X.index, name="prediction")
    keep = [c for c in ("dialogue_id", "speaker", "turn") if c in X.columns]
    out = pd.concat([X[keep], pred], axis=1)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # checked above
        out.to_csv(args.output, index=False)
        _log(args, f"[predict] {len(out)} predictions -> {args.output}")
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def _evaluate(args) -> int:
    from .metrics import emotion_report, format_report
    from .plotting import plot_confusion_matrix

    frame = _read_table(args.data)
    model = _load_model(args.model, args.trust_pickle)
    label = args.label or getattr(model, "label_column_", None) or "label"
    X, y = _split_label(frame, label, args.data)
    X = _model_columns(model, X, args.data, label)
    y_pred = _table_errors(model.predict, X, args.data)
    labels = sorted(set(y) | set(model.classes_), key=str)
    report = emotion_report(y, y_pred, labels=labels)
    print(format_report(report))
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _check_output(out / "report.csv", args.data, args.model, option="--output-dir")
    _check_output(out / "confusion_matrix.png", args.data, args.model, option="--output-dir")
    report.to_csv(out / "report.csv")
    # The matrix covers what the model can predict; labels it never saw share one row.
    unseen = "(not a model class)"
    known = set(model.classes_)
    y_plot = [v if v in known else unseen for v in y]
    plot_labels = list(model.classes_) + ([unseen] if unseen in y_plot else [])
    plot_confusion_matrix(y_plot, y_pred, labels=plot_labels, path=out / "confusion_matrix.png")
    _log(args, f"[evaluate] report.csv and confusion_matrix.png in {out}")
    return 0


def _reproduce(args) -> int:
    from .reproduce import run_reproduction

    seeds = args.seeds if args.seeds else ([0] if args.quick else [0, 1, 2])
    run_reproduction(
        args.dataset,
        args.path,
        seeds=seeds,
        quick=args.quick,
        output_dir=args.output_dir,
        device=args.device,
        max_epochs=args.max_epochs,
        verbose=args.verbose,
        n_jobs=args.jobs,
        log=lambda m: _log(args, m),
    )
    print(Path(args.output_dir) / args.dataset / "report.md")
    return 0


def _extract(args) -> int:
    from .features import cli_extract

    return cli_extract(args.rest)


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from .reproduce import DATASETS

    parser = argparse.ArgumentParser(
        prog="cberl",
        description="CBERL: imbalanced multimodal emotion recognition in conversations.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def threads(p):
        p.add_argument(
            "--threads",
            type=_threads,
            default="auto",
            help="torch threads: a number, or auto = the cores other processes leave free",
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
    common(demo)
    demo.set_defaults(func=_demo)

    fit = sub.add_parser("fit", help="fit the CBERL pipeline on an utterance table")
    fit.add_argument("data", help="CSV/parquet in the data-model schema plus a label column")
    fit.add_argument(
        "-m", "--model", required=True, help="where to save the fitted model (e.g. model.cberl)"
    )
    fit.add_argument("--label", default="label", help="label column (default: label)")
    fit.add_argument("--valid", help="validation table for epoch selection (same schema)")
    fit.add_argument("--no-augment", action="store_true", help="drop the EmoGAN step")
    fit.add_argument("--no-fuse", action="store_true", help="drop the DJVAE step")
    fit.add_argument("--param", action="append", help="step parameter, e.g. clf__gamma=0")
    common(fit)
    fit.set_defaults(func=_fit)

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
    predict.set_defaults(func=_predict)

    evaluate = sub.add_parser("evaluate", help="per-class report and confusion matrix")
    evaluate.add_argument("data")
    evaluate.add_argument("-m", "--model", required=True)
    evaluate.add_argument("--trust-pickle", action="store_true", help=TRUST_HELP)
    evaluate.add_argument("--label", help="label column (default: the one the model was fit with)")
    evaluate.add_argument("--output-dir", default="cberl-output")
    evaluate.add_argument("-q", "--quiet", action="store_true")
    threads(evaluate)
    evaluate.set_defaults(func=_evaluate)

    reproduce = sub.add_parser("reproduce", help="regenerate the paper's tables and figures")
    reproduce.add_argument("--dataset", choices=DATASETS, default="demo")
    reproduce.add_argument("--path", help="MELD CSV dir (meld-text) or feature pickle")
    reproduce.add_argument("--seeds", type=int, nargs="+")
    reproduce.add_argument("--quick", action="store_true", help="smoke run: less data/epochs")
    reproduce.add_argument("--max-epochs", type=int)
    reproduce.add_argument("--jobs", type=int, help="run the seeds in this many processes")
    common(reproduce, output_dir="benchmarks/results")
    reproduce.set_defaults(func=_reproduce)

    sub.add_parser("extract", help="raw conversations (manifest) -> feature table; see --help")
    return parser


def _threads(value):
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: expected a positive integer or 'auto'")
    return n


def _run_with_threads(args):
    """Run the command with ``--threads`` torch threads (auto: the cores left free)."""
    import os

    from ._threads import free_cores, torch_threads

    n = free_cores() if args.threads == "auto" else args.threads
    args.threads = n
    if "torch" not in sys.modules:  # torch sizes its pool from this when it loads
        os.environ.setdefault("OMP_NUM_THREADS", str(n))
        return args.func(args)
    with torch_threads(n):  # already loaded (cberl called from Python)
        return args.func(args)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["extract"]:
        # `cberl extract` has its own parser (sklearn_cberl.features.manifest).
        command, run = "extract", lambda: _extract(argparse.Namespace(rest=argv[1:]))
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
