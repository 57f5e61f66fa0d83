"""The bodies of the ``cberl`` subcommands; :mod:`sklearn_cberl.cli` parses and dispatches.

Each command takes the parsed ``argparse.Namespace`` and returns the exit status. Heavy
imports (pandas, torch, the estimators) happen inside the commands, after the arguments
are parsed, so that ``cberl --help`` and argument errors stay fast.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._io import (
    CLIError,
    check_output,
    load_model,
    log,
    model_columns,
    model_labels,
    parse_params,
    read_table,
    resolve_label,
    select_columns,
    split_label,
    table_errors,
    verbatim_metadata,
    write_csv,
    write_figure,
)

__all__ = ["demo", "evaluate", "extract", "fit", "ladder", "predict", "reproduce"]


#: ``cberl fit --fusion`` choices -> ``make_cberl_pipeline(fusion=...)``.
FUSION_CHOICES = {"separate": "separate", "end_to_end": "end_to_end", "none": None}


def demo(args) -> int:
    """``cberl demo``: the full pipeline against a per-utterance baseline on synthetic data
    (``--write-csv DIR``: write that data as train/dev/test CSVs instead)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..conversation import METADATA_COLUMNS
    from ..datasets import make_conversations
    from ..experiments import split_frame_by_dialogue
    from ..metrics import emotion_report, format_report
    from ..pipeline import make_cberl_pipeline
    from ..plotting import plot_confusion_matrix

    out = Path(args.output_dir)
    if args.write_csv is not None:
        directory = Path(args.write_csv)
        if directory.exists() and not directory.is_dir():
            raise CLIError(f"--write-csv {directory}: is a file, not a directory.")
    X, y = make_conversations(n_dialogues=args.n_dialogues, random_state=args.seed)
    data = split_frame_by_dialogue(X, y, (0.7, 0.1, 0.2), seed=args.seed)
    if args.write_csv is not None:
        return _write_demo_csv(args, data, y.name or "label")
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
    stages = " -> ".join(
        type(step).__name__
        + (" (DJVAE inside)" if getattr(step, "fusion", None) is not None else "")
        for _, step in pipe.steps
        if step != "passthrough"
    )
    log(args, f"[demo] fitting {stages} ({args.threads} torch thread(s))")
    # The validation split (never the test) reaches the classifier through the fitted
    # earlier steps, for epoch selection.
    pipe.fit(data.X_train, data.y_train, validation_data=(data.X_valid, data.y_valid))
    fit_time = time.perf_counter() - start
    y_pred = pipe.predict(data.X_test)

    print("\nPer-utterance logistic regression (context-free baseline), test dialogues:")
    print(format_report(emotion_report(data.y_test, base_pred, labels=labels)))
    print(f"\nCBERL pipeline ({stages}), fit {fit_time:.0f}s:")
    print(format_report(emotion_report(data.y_test, y_pred, labels=labels)))
    png = out / "demo_confusion_matrix.png"
    fig = plot_confusion_matrix(data.y_test, y_pred, labels=labels, title="CBERL demo")
    write_figure(fig, png)
    print(f"\nConfusion matrix: {png}")
    return 0


def _write_demo_csv(args, data, label) -> int:
    """The demo's train/dev/test split as CSV tables with a label column."""
    directory = Path(args.write_csv)
    parts = {"train": "train", "dev": "valid", "test": "test"}
    for name, part in parts.items():
        frame = data[f"X_{part}"].assign(**{label: data[f"y_{part}"]})
        write_csv(frame, directory / f"{name}.csv")
        print(directory / f"{name}.csv")
    n = sum(len(data[f"X_{part}"]) for part in parts.values())
    log(
        args,
        f"[demo] {n} utterances, label column {label!r}; next: cberl fit "
        f"{directory / 'train.csv'} -m model.cberl --valid {directory / 'dev.csv'}",
    )
    return 0


def ladder(args) -> int:
    """``cberl ladder``: the stage ladder on the user's tables (validation, optional test)."""
    for path in (args.data, args.valid, args.test):
        if path is not None:
            check_output(Path(args.output_dir) / "ladder.csv", path, option="--output-dir")
    frame = read_table(args.data, text_columns=[args.label or "label"])
    label = resolve_label(frame, args.data, args.label, guess=True, args=args)
    X, y = split_label(frame, label, args.data)
    tables = {}
    for name in ("valid", "test"):
        path = getattr(args, name)
        if path is not None:
            other = read_table(path, text_columns=[label])
            resolve_label(other, path, label)
            X_other, y_other = split_label(other, label, path)
            where = f"that {args.data} has"
            tables[name] = (select_columns(X_other, list(X.columns), path, where), y_other)
    from .._files import atomic_write
    from ..experiments import check_rungs, ladder_summary, markdown_table, plot_ladder, run_ladder

    try:
        rungs = check_rungs(args.rungs)
    except ValueError as error:
        raise CLIError(f"--rungs: {error}") from None
    if not args.tolerance >= 0:
        raise CLIError(f"--tolerance {args.tolerance}: expected a number >= 0.")
    X_test, y_test = tables.get("test", (None, None))
    n = len(rungs) * len(args.seeds)
    log(args, f"[ladder] {n} fits ({len(args.seeds)} seed(s)), {args.jobs} at a time")
    frame = run_ladder(
        X, y, *tables["valid"], X_test, y_test, rungs=rungs, seeds=args.seeds,
        scoring=args.scoring, tolerance=args.tolerance, params=parse_params(args.param),
        n_jobs=args.jobs,
        device=args.device, log=lambda line: log(args, line),
    )  # fmt: skip
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = ladder_summary(frame)
    write_csv(frame, out / "ladder.csv")
    table = markdown_table(summary.round(2))
    note = (
        f"Stage ladder on {args.data} ({args.scoring}, %, mean ± std over seeds "
        f"{', '.join(map(str, args.seeds))}); validation = {args.valid}"
        + (f", test = {args.test} (reported, never used to choose)" if args.test else "")
        + f". `selected`: per seed, the first rung (simplest first) within {args.tolerance:g} "
        "standard error(s) of the best validation score (`chosen` names it).\n\n"
    )
    atomic_write(out / "ladder.md", lambda handle: handle.write(note + table + "\n"), text=True)
    write_figure(plot_ladder(frame), out / "ladder.png")
    print(note + table)
    for name in ("ladder.md", "ladder.csv", "ladder.png"):
        log(args, f"[ladder] wrote {out / name}")
    return 0


def fit(args) -> int:
    """``cberl fit``: fit the CBERL pipeline on a table and save it pickle-free."""
    check_output(args.model, args.data, args.valid, option="-m")
    label_name = args.label or "label"
    frame = read_table(args.data, text_columns=[label_name])
    label = resolve_label(frame, args.data, args.label, guess=True, args=args)
    X, y = split_label(frame, label, args.data)
    valid = None
    if args.valid is not None:
        frame = read_table(args.valid, text_columns=[label])
        resolve_label(frame, args.valid, label)  # the same column, or an error naming others
        X_valid, y_valid = split_label(frame, label, args.valid)
        where = f"that {args.data} has"
        valid = (select_columns(X_valid, list(X.columns), args.valid, where), y_valid)
    from ..persistence import save  # torch: only once the input is known to be readable
    from ..pipeline import make_cberl_pipeline

    fusion = {} if args.fusion == "default" else {"fusion": FUSION_CHOICES[args.fusion]}
    pipe = make_cberl_pipeline(
        augment=not args.no_augment,
        **fusion,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )
    params = parse_params(args.param)
    for key in params:
        step = key.split("__", 1)[0]
        if "__" in key and pipe.named_steps.get(step) == "passthrough":
            flag = {"aug": "--no-augment", "fuse": "--fusion"}.get(step, "")
            raise CLIError(f"--param {key}: the {step!r} step is dropped ({flag}).")
    try:
        pipe.set_params(**params)
    except (ValueError, TypeError, AttributeError) as exc:
        raise CLIError(f"--param: {exc}") from exc
    pipe.verbose = not args.quiet  # a "[Pipeline] ... total=" line as each stage ends
    start = time.perf_counter()
    if valid is not None:
        pipe.fit(X, y, validation_data=valid)  # a CBERLPipeline
    else:
        pipe.fit(X, y)
    pipe.label_column_ = label  # predict / evaluate find (and skip) it by name
    Path(args.model).parent.mkdir(parents=True, exist_ok=True)
    save(pipe, args.model)  # pickle-free and atomic: `cberl predict` reads it without running code
    log(args, f"[fit] {len(X)} utterances in {time.perf_counter() - start:.0f}s -> {args.model}")
    return 0


def predict(args) -> int:
    """``cberl predict``: one prediction per utterance, as CSV (a file or stdout)."""
    import pandas as pd

    check_output(args.output, args.data, args.model)
    model = load_model(args.model, args.trust_pickle)
    label = args.label or getattr(model, "label_column_", None) or "label"
    frame = read_table(args.data, text_columns=[label])
    X = model_columns(model, frame, args.data, label)
    pred = pd.Series(table_errors(model.predict, X, args.data), index=X.index, name="prediction")
    out = pd.concat([verbatim_metadata(args.data, frame), pred], axis=1)
    if args.output:
        write_csv(out, args.output)
        log(args, f"[predict] {len(out)} predictions -> {args.output}")
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def evaluate(args) -> int:
    """``cberl evaluate``: per-class report and confusion matrix of a fitted model."""
    from ..metrics import emotion_report, format_report
    from ..plotting import plot_confusion_matrix

    out = Path(args.output_dir)
    outputs = {name: out / name for name in ("report.csv", "confusion_matrix.png")}
    if out.exists() and not out.is_dir():
        raise CLIError(f"--output-dir {out}: is a file, not a directory.")
    for path in outputs.values():
        check_output(path, args.data, args.model, option="--output-dir")
    model = load_model(args.model, args.trust_pickle)
    remembered = getattr(model, "label_column_", None)
    frame = read_table(args.data, text_columns=[args.label or remembered or "label"])
    label = resolve_label(frame, args.data, args.label, remembered)
    X, y = split_label(frame, label, args.data)
    y = model_labels(model, y)
    X = model_columns(model, X, args.data, label)
    y_pred = table_errors(model.predict, X, args.data)
    labels = sorted(set(y) | set(model.classes_), key=str)
    report = emotion_report(y, y_pred, labels=labels)
    print(format_report(report))
    out.mkdir(parents=True, exist_ok=True)
    write_csv(report.reset_index(), outputs["report.csv"])  # the emotion: first column
    # The matrix covers what the model can predict; labels it never saw share one row.
    unseen = "(not a model class)"
    known = set(model.classes_)
    y_plot = [v if v in known else unseen for v in y]
    plot_labels = list(model.classes_) + ([unseen] if unseen in y_plot else [])
    fig = plot_confusion_matrix(y_plot, y_pred, labels=plot_labels)
    write_figure(fig, outputs["confusion_matrix.png"])
    log(args, f"[evaluate] report.csv and confusion_matrix.png in {out}")
    return 0


def reproduce(args) -> int:
    """``cberl reproduce``: the paper's tables and figures for one dataset."""
    from ..reproduce import run_reproduction

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
        log=lambda m: log(args, m),
    )
    print(Path(args.output_dir) / args.dataset / "report.md")
    return 0


def extract(args) -> int:
    """``cberl extract``: raw conversations to a feature table (its own parser)."""
    from ..features import cli_extract

    return cli_extract(args.rest)
