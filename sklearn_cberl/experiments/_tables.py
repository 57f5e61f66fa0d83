"""Formatting of results over seeds: ``mean ± std`` cells, tables, markdown and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["mean_std", "markdown_table", "metric_table", "summary_table", "write_results"]


def mean_std(values, digits: int = 2, *, empty: str | None = None) -> str:
    """``"mean ± std"`` of a sequence (population std over seeds, ``ddof=0``).

    Parameters
    ----------
    values : iterable of float
    digits : int, default=2
        Decimals of both numbers.
    empty : str, default=None
        Returned as is when ``values`` is empty (e.g. ``"failed"`` for a model whose every
        fit failed); None formats the empty sequence like any other (``nan ± nan``).

    Returns
    -------
    str
    """
    values = np.asarray(list(values), dtype=float)
    if empty is not None and not len(values):
        return empty
    return _format(values.mean(), values.std(), digits)


def _format(mean, std, digits: int = 2) -> str:
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of a DataFrame (index included).

    Parameters
    ----------
    frame : DataFrame

    Returns
    -------
    str
    """
    frame = frame.reset_index()
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def metric_table(
    results: Mapping, cells: Mapping, *, fit_time: str | None = None, index: str = "model"
) -> pd.DataFrame:
    """Rows = results, columns = report cells as ``mean ± std`` over seeds.

    Parameters
    ----------
    results : mapping of str to ProtocolResult
        Row name -> result (its runs are the seeds).
    cells : mapping of str to (str, str)
        Column name -> ``(row, column)`` of the per-seed
        :func:`~sklearn_cberl.metrics.emotion_report`, e.g. ``{"WAF1": ("weighted", "f1")}``.
    fit_time : str, default=None
        Also a column of this name with the fit seconds.
    index : str, default="model"
        Name of the index.

    Returns
    -------
    DataFrame
        ``"failed"`` where a result has no successful run.
    """
    rows = {}
    for name, res in results.items():
        row = {key: mean_std(res.metric(*cell), empty="failed") for key, cell in cells.items()}
        if fit_time is not None:
            row[fit_time] = mean_std([run["fit_time"] for run in res.runs], empty="failed")
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(index)


def summary_table(results: Iterable, columns: Iterable[str]) -> pd.DataFrame:
    """Rows = models, columns = summary keys, cells = ``mean ± std`` strings.

    Parameters
    ----------
    results : iterable of ProtocolResult
    columns : iterable of str
        Keys of :meth:`ProtocolResult.summary` (``"WAF1"``, ``"F1 fear"``, ...); keys a
        result does not have are left out.

    Returns
    -------
    DataFrame
    """
    rows = {}
    for res in results:
        summary = res.summary()
        rows[res.name] = {
            c: _format(summary[c]["mean"], summary[c]["std"]) for c in columns if c in summary
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def write_json(payload: Mapping, path) -> None:
    """Write ``payload`` as indented JSON (non-JSON values as ``str``), creating the folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=str))


def write_results(results: Iterable, path, *, extra: Mapping | None = None) -> None:
    """Write the JSON of several results (and extra metadata) to ``path``.

    Parameters
    ----------
    results : iterable of ProtocolResult
    path : path-like
    extra : mapping, default=None
        Merged into the top level of the JSON object.
    """
    write_json({"results": [r.to_json() for r in results], **(extra or {})}, path)
