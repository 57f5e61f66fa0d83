"""The reproduction's tables (I-VI, Fig. 8), figures and markdown report from its results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..paper import PAPER_AUGMENTATION, PAPER_RESULTS
from ._tables import markdown_table, mean_std, metric_table
from ._variants import utterance_features

#: Rows of Table I/II (table roles, see :func:`~._variants.build_variants`).
MAIN_ROWS = [
    "LR (per-utterance)",
    "MLP (per-utterance)",
    "bc-LSTM-style (context, no graph)",
    "RandomOverSampler + CBERL",
    "SMOTE + CBERL",
    "BorderlineSMOTE + CBERL",
    "ADASYN + CBERL",
    "CBERL (no aug)",
    "CBERL",
]

WAA, WAF1 = ("weighted", "acc"), ("weighted", "f1")


def _cell(result, row, column) -> str:
    return mean_std(result.metric(row, column), empty="failed")


def build_tables(data, by_role: dict, synthetic_counts: list) -> tuple[dict, dict]:
    """The paper's tables from the per-role results.

    Parameters
    ----------
    data : Bunch
        The data set (:func:`~._datasets.load_dataset`).
    by_role : dict of str to ProtocolResult
        Table role -> the result of the variant that fills it.
    synthetic_counts : list of Series
        Per seed, the EmoGAN's synthetic rows per class.

    Returns
    -------
    tables : dict of str to DataFrame
        ``table_main``, ``table_summary``, ``table_iii``, ``table_iv``, ``table_v``,
        ``table_vi`` and, when the gamma sweep ran, ``gamma_sweep``.
    sweep : dict
        Gamma -> ``{"WAF1": per-seed values, "WAA": ...}`` for Fig. 8 (empty without it).
    """
    labels = data.labels
    tables = {}
    # Table I/II
    cells = {}
    for c in labels:
        cells[f"{c} Acc"] = (c, "acc")
        cells[f"{c} F1"] = (c, "f1")
    cells.update({"WAA": WAA, "WAF1": WAF1, "macro-F1": ("macro", "f1")})
    main = metric_table({role: by_role[role] for role in MAIN_ROWS}, cells, fit_time="fit s")
    tables["table_main"] = main
    summary_columns = ["WAA", "WAF1", "macro-F1", *[f"{c} F1" for c in data.minority], "fit s"]
    tables["table_summary"] = main[summary_columns]
    # Table III
    t3 = {}
    for role, res in by_role.items():
        if role.startswith("ablation "):
            code = role.split()[1]
            row = dict(zip(("fusion", "gamma", "node mask", "AdaBoost"), code))
            row["WAF1"] = _cell(res, *WAF1)
            row["WAA"] = _cell(res, *WAA)
            if data.paper == "iemocap":
                row["paper WAF1"] = PAPER_RESULTS["iemocap"]["Table III"][code]
            t3[code] = row
    tables["table_iii"] = pd.DataFrame.from_dict(t3, orient="index").rename_axis("code")
    # Table IV
    t4 = {}
    for role in ("CBERL (no aug)", "CBERL"):
        t4[role] = {"WAA": _cell(by_role[role], *WAA), "WAF1": _cell(by_role[role], *WAF1)}
        if data.paper:
            paper = PAPER_RESULTS[data.paper][role]
            t4[role].update({"paper WAA": paper["WAA"], "paper WAF1": paper["WAF1"]})
    tables["table_iv"] = pd.DataFrame.from_dict(t4, orient="index").rename_axis("model")
    # Table V (minority classes)
    t5 = {}
    for tag in ("N", "D", "M", "A", "full"):
        role = "CBERL" if tag == "full" else f"CBERL ({tag})"
        t5[role] = {f"F1 {c}": _cell(by_role[role], c, "f1") for c in data.minority}
        if data.paper:
            for c, v in PAPER_RESULTS[data.paper]["Table V"][tag].items():
                t5[role][f"paper F1 {c}"] = v
    tables["table_v"] = pd.DataFrame.from_dict(t5, orient="index").rename_axis("model")
    # Table VI
    counts = pd.concat(synthetic_counts, axis=1).reindex(labels).fillna(0)
    t6 = pd.DataFrame(
        {
            "real (train)": data.y_train.value_counts().reindex(labels).fillna(0).astype(int),
            "synthetic (mean over seeds)": counts.mean(axis=1).round(1),
        }
    )
    if data.paper:
        t6["paper (full data set)"] = [PAPER_AUGMENTATION[data.paper].get(c, 0) for c in labels]
    tables["table_vi"] = t6.rename_axis("emotion")
    # Fig. 8: gamma sweep
    sweep = {
        g: {"WAF1": by_role[f"gamma={g}"].metric(*WAF1), "WAA": by_role[f"gamma={g}"].metric(*WAA)}
        for g in range(6)
        if f"gamma={g}" in by_role
    }
    if sweep:
        tables["gamma_sweep"] = pd.DataFrame(
            {g: {k: mean_std(v, empty="failed") for k, v in d.items()} for g, d in sweep.items()}
        ).T.rename_axis("gamma")
    return tables, sweep


def write_figures(out, dataset, data, by_role, figures_state, seed, sweep) -> None:
    """Fig. 6-9 and the per-class F1 bars (the first seed's fits) as PNG files in ``out``."""
    from ..plotting import plot_confusion_matrix, plot_f1_bars, plot_tsne

    labels = data.labels
    if sweep:
        _plot_gamma(sweep, out / "fig8_gamma_sweep.png")
    cberl = figures_state
    plot_confusion_matrix(
        data.y_test,
        cberl["y_pred"],
        labels=labels,
        title=f"CBERL on {dataset} (test, seed {seed})",
        path=out / "fig6_confusion_matrix.png",
    )
    plot_f1_bars(
        {
            name: by_role[name].runs[0]["report"]
            for name in ("LR (per-utterance)", "SMOTE + CBERL", "CBERL (no aug)", "CBERL")
        },
        title=f"Per-class F1 on {dataset} (seed {seed})",
        path=out / "f1_bars.png",
    )
    embedding = cberl["clf"].embed(cberl["X_test"])
    plot_tsne(
        {
            "raw features (test)": (utterance_features(data.X_test).to_numpy(), data.y_test),
            "CBERL graph embeddings (test)": (np.asarray(embedding), data.y_test),
        },
        max_points=1500,
        title="Fig. 7: t-SNE of raw vs learned embeddings",
        path=out / "fig7_tsne_embeddings.png",
    )
    X_aug, y_aug = cberl["augmented"]
    plot_tsne(
        {
            "original training data": (utterance_features(data.X_train).to_numpy(), data.y_train),
            "after EmoGAN augmentation": (utterance_features(X_aug).to_numpy(), y_aug),
        },
        max_points=1500,
        title="Fig. 9: t-SNE of raw vs augmented training data",
        path=out / "fig9_tsne_augmentation.png",
    )


def _plot_gamma(sweep, path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    gammas = list(sweep)
    for key in ("WAA", "WAF1"):
        values = np.array([sweep[g][key] for g in gammas], dtype=float)
        ax.errorbar(gammas, values.mean(1), yerr=values.std(1), marker="o", capsize=3, label=key)
    ax.set_xlabel("focal loss gamma")
    ax.set_ylabel("%")
    ax.set_title("Fig. 8: effect of gamma (mean ± std over seeds)")
    ax.legend()
    fig.savefig(path, dpi=120, bbox_inches="tight")


def markdown_report(dataset, data, tables, payload) -> str:
    """``report.md``: the run's settings, every table, failed fits and the figures."""
    titles = {
        "table_summary": "Summary - WAA, WAF1, macro-F1 and minority-class F1",
        "table_main": "Table I/II - per-class accuracy and F1, WAA, WAF1",
        "table_iii": "Table III - ablation of fusion / gamma / mask / AdaBoost (with augmentation)",
        "table_iv": "Table IV - with vs without augmentation",
        "table_v": f"Table V - minority-class F1 ({', '.join(data.minority)})",
        "table_vi": "Table VI - synthetic utterances per class (EmoGAN)",
        "gamma_sweep": "Fig. 8 - gamma sweep",
    }
    lines = [
        f"# Reproduction on `{dataset}`",
        "",
        f"Data: {data.description}. Seeds: {payload['seeds']}. Quick mode: {payload['quick']}. "
        f"Classifier max_epochs: {payload['max_epochs'] or 'default'}. Wall time: "
        f"{payload['wall_time_s'] / 60:.1f} min.",
        "",
        f"Protocol: {payload['protocol']}. Values in %, mean ± std over seeds (ddof=0).",
        "",
    ]
    for key, title in titles.items():
        if key in tables:
            lines += [f"## {title}", "", markdown_table(tables[key]), ""]
    failures = [
        f"- {name}: {err}" for name, run in payload["runs"].items() for err in run["errors"]
    ]
    if failures:
        lines += ["## Failed fits", "", *failures, ""]
    lines += [
        "## Figures",
        "",
        "![confusion matrix](fig6_confusion_matrix.png)",
        "![per-class F1](f1_bars.png)",
        "![t-SNE embeddings](fig7_tsne_embeddings.png)",
        "![t-SNE augmentation](fig9_tsne_augmentation.png)",
    ]
    if "gamma_sweep" in tables:
        lines.append("![gamma sweep](fig8_gamma_sweep.png)")
    return "\n".join(lines) + "\n"
