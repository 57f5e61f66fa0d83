"""Input/output helpers of the ``cberl`` commands: tables, model files, user errors.

Every problem a user can fix (a missing file or column, a bad ``--param``, an output path
that would overwrite an input) becomes a :class:`CLIError`, which :func:`sklearn_cberl.cli.main`
prints as one line. Only the standard library is imported at module level, so that
``cberl --help`` stays fast; pandas, joblib and the estimators load inside the helpers.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

__all__ = [
    "CLIError",
    "check_output",
    "columns_hint",
    "load_model",
    "log",
    "model_columns",
    "parse_params",
    "read_table",
    "split_label",
    "table_errors",
]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2 (no traceback)."""


def read_table(path):
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


def columns_hint(wanted, columns) -> str:
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


def split_label(frame, label, path):
    if label not in frame.columns:
        raise CLIError(
            f"{path}: no label column {label!r} ({columns_hint(label, frame.columns)}); set "
            "it with --label."
        )
    return frame.drop(columns=[label]), frame[label]


def model_columns(model, frame, path, label):
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
        hints = "; ".join(f"{c!r}: {columns_hint(c, spare)}" for c in missing[:3])
        raise CLIError(
            f"{path}: missing column(s) {missing[:10]}{' ...' if len(missing) > 10 else ''} "
            f"that the model was fitted on ({hints})."
        )
    return frame[list(names)]


def parse_params(pairs):
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


def load_model(path, trust_pickle=False):
    """A model file through the pickle-free loader; a joblib pickle only on explicit opt-in
    (unpickling runs code chosen by whoever wrote the file)."""
    from ..persistence import load

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


def check_output(output, *inputs, option="-o"):
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


def table_errors(method, X, path):
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


def log(args, message):
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr, flush=True)
