"""Input/output helpers of the ``cberl`` commands: tables, model files, outputs, user errors.

Every problem a user can fix (a missing file or column, a bad ``--param``, an output path
that would overwrite an input) becomes a :class:`CLIError`, which :func:`sklearn_cberl.cli.main`
prints as one line. Only the standard library is imported at module level, so that
``cberl --help`` stays fast; pandas, joblib and the estimators load inside the helpers.

Tables: CSV cells are read verbatim where they are text. ``dialogue_id``, ``speaker`` and the
label column are strings (``000012`` stays ``000012``; ``None`` and ``NA`` are a class or a
speaker, not missing values), and in every other column only an empty cell is a missing
value. Parquet columns keep their stored types.

Outputs are written atomically (:func:`sklearn_cberl._files.atomic_write`), and an output
that is the same file as an input - by name, symbolic or hard link - is refused.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from .._files import atomic_write, same_file

__all__ = [
    "CLIError",
    "check_output",
    "columns_hint",
    "feature_names",
    "load_model",
    "log",
    "model_columns",
    "parse_params",
    "read_table",
    "resolve_label",
    "split_label",
    "table_errors",
    "verbatim_metadata",
    "write_csv",
    "write_figure",
]

#: Metadata columns read as text: identifiers are names, not numbers (``turn`` stays numeric).
TEXT_METADATA = ("dialogue_id", "speaker")
#: The label column when ``--label`` is not given.
DEFAULT_LABEL = "label"


class CLIError(Exception):
    """A user error: printed as one line, exit status 2 (no traceback)."""


# ----------------------------------------------------------------------------- tables
def read_table(path, text_columns=()):
    """A CSV or parquet table; in a CSV, ``dialogue_id``, ``speaker`` and ``text_columns``
    are read as strings, and only empty cells of the other columns are missing values."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}.")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            header = list(pd.read_csv(path, nrows=0).columns)
            text = [c for c in header if c in (*TEXT_METADATA, *text_columns)]
            return pd.read_csv(
                path,
                dtype=dict.fromkeys(text, str),
                keep_default_na=False,  # "NA", "None", "null" are text, not missing values
                na_values={c: [""] for c in header if c not in text},
            )
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except Exception as exc:  # parser errors of many kinds: report them as one line
        raise CLIError(f"{path}: could not be read as {suffix[1:]} ({exc}).") from exc
    raise CLIError(f"{path}: unsupported file type {suffix!r}; expected .csv or .parquet.")


def verbatim_metadata(path, frame):
    """The metadata columns of ``frame`` as the file spells them (for output files)."""
    import pandas as pd

    keep = [c for c in (*TEXT_METADATA, "turn") if c in frame.columns]
    if not keep or Path(path).suffix.lower() != ".csv":
        return frame[keep]
    raw = pd.read_csv(path, usecols=keep, dtype=str, keep_default_na=False)
    return raw[keep].set_axis(frame.index)


def _rows(path, positions) -> str:
    """Where rows are in the file: CSV line numbers (the header is line 1), else 1-based rows."""
    csv = Path(path).suffix.lower() == ".csv"
    shown = [str(p + (2 if csv else 1)) for p in positions[:10]]
    more = f" and {len(positions) - 10} more" if len(positions) > 10 else ""
    return f"{'line' if csv else 'row'}(s) {', '.join(shown)}{more}"


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


# ----------------------------------------------------------------------------- labels
def label_candidates(frame) -> list:
    """Columns that could hold labels: not metadata, not numeric."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    skip = {*TEXT_METADATA, "turn", "synthetic"}
    return [
        c
        for c in frame.columns
        if c not in skip and (not is_numeric_dtype(frame[c]) or is_bool_dtype(frame[c]))
    ]


def resolve_label(frame, path, label, remembered=None, guess=False, args=None) -> str:
    """The label column: ``label`` (or the model's ``remembered`` one, or ``label``); with
    ``guess``, the only candidate column when the default is missing (logged)."""
    name = label or remembered or DEFAULT_LABEL
    if name in frame.columns:
        return name
    candidates = label_candidates(frame)
    if guess and label is None and len(candidates) == 1:
        log(
            args,
            f"[fit] {path}: no column {name!r}; using {candidates[0]!r}, the only "
            "non-numeric column besides the metadata, as the label (--label sets it)",
        )
        return candidates[0]
    what = " (the column the model was fitted with)" if name == remembered else ""
    if candidates:
        hint = f"columns that could hold the labels: {', '.join(map(repr, candidates[:10]))}"
    else:
        hint = f"none of its {len(frame.columns)} columns but the metadata is non-numeric"
    if remembered and remembered != name:
        hint += f"; the model was fitted with {remembered!r}"
    raise CLIError(f"{path}: no label column {name!r}{what}; {hint}. Set it with --label.")


def split_label(frame, label, path):
    """Features and labels; an empty label cell is an error naming its rows."""
    import numpy as np

    y = frame[label]
    missing = y.isna().to_numpy() | (y.astype(str) == "").to_numpy()
    if missing.any():
        rows = np.flatnonzero(missing).tolist()
        raise CLIError(
            f"{path}: {len(rows)} missing (empty) label(s) in column {label!r} at "
            f"{_rows(path, rows)}: give those utterances a label or drop them."
        )
    return frame.drop(columns=[label]), y


def model_labels(model, y):
    """``y`` read as text, compared as the model's classes are: numbers if those are."""
    import pandas as pd
    from pandas.api.types import is_numeric_dtype

    classes = getattr(model, "classes_", None)
    if classes is None or not is_numeric_dtype(pd.Series(classes)) or is_numeric_dtype(y):
        return y
    try:
        return pd.to_numeric(y)
    except (ValueError, TypeError):
        return y


# ----------------------------------------------------------------------------- columns
def feature_names(model):
    """The input column names a fitted model (or its first step that is not
    ``"passthrough"``) was fitted on; None when it does not record them."""
    try:
        names = model.feature_names_in_
    except AttributeError:  # a pipeline whose first step is "passthrough"
        names = None
    if names is None:
        for _, step in getattr(model, "steps", []):
            if step is not None and not (isinstance(step, str) and step == "passthrough"):
                return feature_names(step)
    return names


def model_columns(model, frame, path, label):
    """The feature columns the model was fitted on, by name and in its order; the label
    column (the model's own, or ``label``) and any extra column are left out."""
    label = getattr(model, "label_column_", None) or label
    names = feature_names(model)
    if names is None:
        return frame.drop(columns=[label]) if label in frame.columns else frame
    return select_columns(frame, list(names), path, "that the model was fitted on")


def select_columns(frame, names, path, what):
    """``frame[names]``, or an error naming the missing columns (with close matches)."""
    missing = [c for c in names if c not in frame.columns]
    if missing:
        import difflib

        # Close matches among the columns that are not wanted (a renamed or misspelt one).
        spare = [str(c) for c in frame.columns if c not in set(names)]
        hints = [
            f"{', '.join(map(repr, close))} for {c!r}"
            for c in missing[:3]
            if (close := difflib.get_close_matches(str(c), spare, n=2))
        ]
        more = f" ({len(missing)} in all)" if len(missing) > 10 else ""
        raise CLIError(
            f"{path}: missing column(s) {missing[:10]}{more} {what}"
            + (f"; did you mean {'; '.join(hints)}?" if hints else ".")
        )
    return frame[names]


# ----------------------------------------------------------------------------- options
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


# ----------------------------------------------------------------------------- model files
#: How pickles and joblib files (compressed or not) begin.
_PICKLE_MAGIC = (b"\x80", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"x\x01", b"x\x9c", b"x\xda")


def load_model(path, trust_pickle=False):
    """A model file through the pickle-free loader; with ``trust_pickle``, a file that is
    not one is unpickled by joblib (which runs code chosen by whoever wrote the file)."""
    from ..persistence import load

    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{path}: is a directory, not a model file.")
    if not path.is_file():
        raise CLIError(f"{path}: no such model file (create one with `cberl fit`).")
    try:
        return load(path)
    except ValueError as exc:
        reason = str(exc)  # one line: "<path> is not a valid sklearn-cberl model file: why"
    if trust_pickle:
        import joblib

        try:
            return joblib.load(path)
        except Exception as exc:  # not a pickle, truncated, missing module: one line
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
            raise CLIError(
                f"{path}: neither an sklearn-cberl model file nor a readable joblib/pickle "
                f"file (unpickling failed: {detail})."
            ) from exc
    with open(path, "rb") as handle:
        pickled = handle.read(6).startswith(_PICKLE_MAGIC)
    if pickled:  # only then is --trust-pickle the answer, and only for a trusted file
        raise CLIError(
            f"{path}: a joblib/pickle file, not an sklearn-cberl model file; loading it runs "
            "code chosen by whoever wrote it, so it is read only with --trust-pickle: pass "
            "that only if you trust the file's origin."
        )
    raise CLIError(reason)


# ----------------------------------------------------------------------------- outputs
def check_output(output, *inputs, option="-o"):
    """Refuse an output that is one of the command's input files (by file identity: hard
    and symbolic links included), a directory, or lies below a file."""
    if output is None:
        return
    target = Path(output)
    for path in inputs:
        if path is not None and (same_file(target, path) or _same_path(target, path)):
            raise CLIError(f"{option} {output}: that is an input file; choose another path.")
    if target.is_dir():
        raise CLIError(f"{option} {output}: is a directory; give a file name.")
    for parent in target.resolve().parents:
        if parent.exists() and not parent.is_dir():
            raise CLIError(f"{option} {output}: {parent} is a file, not a directory.")


def _same_path(a, b) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def write_csv(frame, path):
    """Write a table atomically (create the directory first)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: frame.to_csv(handle, index=False), text=True)


def write_figure(fig, path):
    """Save a matplotlib figure as PNG atomically."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    options = {"format": "png", "dpi": 120, "bbox_inches": "tight"}
    atomic_write(path, lambda handle: fig.savefig(handle, **options))


# ----------------------------------------------------------------------------- misc
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
