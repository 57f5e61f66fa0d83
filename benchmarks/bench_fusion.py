"""Fusion benchmark: concatenation vs PCA vs DJVAE, each feeding the same downstream classifier.

Datasets
    * ``synthetic``: :func:`~sklearn_cberl.datasets.make_conversations` with its three
      modalities (text 100, audio 100, visual 512), a fresh data set per seed, split by
      dialogue 70 / 10 / 20 % into train / validation / test.
    * ``synthetic-missing``: the same, with the audio and the visual block each zeroed (the
      MERC convention for a missing stream) in a random 30 % of the rows of every split;
      compares the product-of-experts and the concatenation posterior under missing data.
    * ``meld-views``: MELD's official text release (train / dev / test) seen through two
      *views of the one text modality* - ``minilm_*`` (all-MiniLM-L6-v2 sentence embedding,
      384-d) and ``tfidf_*`` (word 1-2-gram TF-IDF reduced to 100-d by truncated SVD, both fitted
      on train). They are two representations of the same stream, not two modalities.

Fusion methods (all ``--width`` wide except concatenation)
    * ``concat``: standardised concatenation of all blocks (no reduction);
    * ``pca``: standardised concatenation -> PCA to ``--width`` components;
    * ``djvae``: :class:`~sklearn_cberl.fusion.DJVAE` with ``n_components=--width``; its
      encoder (``mlp`` / ``paper``; on the MELD views ``paper`` = the paper's Bi-LSTM text
      encoder for both views), joint posterior (``poe`` / ``concat``) and ``beta`` are
      chosen per seed on validation WAF1 among the grid below.

Downstream classifiers (identical for every fusion method)
    * ``LR``: standardise -> multinomial logistic regression on the per-utterance features;
    * ``ctx-LR``: the same, on ``[features, mean of the features of the utterances within
      +/- --window turns of the same dialogue]`` - a simple context-aware reference.

Protocol: per seed, every candidate is fitted on train and scored on validation; the candidate
with the best validation WAF1 is scored on test once. Reported: test WAF1 / macro-F1 (%) and
fit time (fusion + classifier, seconds) as mean +/- std over seeds, plus the validation WAF1
of every DJVAE configuration (the design comparison behind DJVAE's defaults).
Timings on a shared machine are indicative only.

Usage::

    python benchmarks/bench_fusion.py --quick          # smoke test, about a minute
    python benchmarks/bench_fusion.py --seeds 0 1 2    # the full benchmark
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from _common import CACHE, RESULTS
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit, ParameterGrid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cberl.conversation import METADATA_COLUMNS, check_conversations
from sklearn_cberl.datasets import make_conversations
from sklearn_cberl.experiments import markdown_table, mean_std
from sklearn_cberl.fusion import DJVAE
from sklearn_cberl.metrics import emotion_report

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- pieces
class ContextWindow(TransformerMixin, BaseEstimator):
    """Append the mean features of the utterances within +/- ``window`` turns (same dialogue).

    Vectorised with prefix sums over the dialogue-major layout; the utterance itself is
    excluded. Rows without neighbours get zeros.
    """

    def __init__(self, window=2):
        self.window = window

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        conv = check_conversations(X)
        F = conv.X[conv.order].astype(np.float64)
        n = len(F)
        i = np.arange(n)
        start = np.repeat(conv.offsets[:-1], conv.lengths)
        stop = np.repeat(conv.offsets[1:], conv.lengths)
        lo = np.maximum(start, i - self.window)
        hi = np.minimum(stop, i + self.window + 1)
        S = np.vstack([np.zeros((1, F.shape[1])), np.cumsum(F, axis=0)])
        count = (hi - lo - 1)[:, None]
        ctx = (S[hi] - S[lo] - F) / np.maximum(count, 1)
        ctx = conv.to_input_order(ctx)
        names = [f"ctx_{j}" for j in range(ctx.shape[1])]
        return pd.concat([X, pd.DataFrame(ctx, index=X.index, columns=names)], axis=1)


def features_only(X):
    """The numeric node features: every column but the metadata."""
    return X.drop(columns=[c for c in METADATA_COLUMNS if c in X.columns]).to_numpy(np.float64)


def make_fusion(method, width, seed, params=None, paper_encoders=None):
    """The fusion step; metadata columns always pass through (the context head needs them).

    ``paper_encoders`` replaces ``encoder="paper"`` for blocks that are not named
    text/audio/visual (the MELD views are both text: the paper's Bi-LSTM text encoder).
    """
    params = dict(params or {})
    if params.get("encoder") == "paper" and paper_encoders:
        params["encoder"] = paper_encoders
    features = make_column_selector(pattern=r"^(?!dialogue_id$|speaker$|turn$)")
    if method == "concat":
        steps = StandardScaler()
    elif method == "pca":
        steps = make_pipeline(StandardScaler(), PCA(width, random_state=seed))
    else:
        return DJVAE(n_components=width, random_state=seed, **params)
    return ColumnTransformer(
        [("meta", "passthrough", list(METADATA_COLUMNS)), ("fuse", steps, features)],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")


def fit_head(Z_train, y_train, context, window):
    """Fit the downstream classifier; return its predict function on fused frames."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    ctx = ContextWindow(window)
    prep = (lambda Z: features_only(ctx.transform(Z))) if context else features_only
    clf.fit(prep(Z_train), y_train)
    return lambda Z: clf.predict(prep(Z))


# ----------------------------------------------------------------------------- data
def synthetic_data(seed, quick):
    if quick:
        X, y = make_conversations(
            n_dialogues=60, modalities={"text": 20, "audio": 20, "visual": 40}, random_state=seed
        )
    else:
        X, y = make_conversations(n_dialogues=300, random_state=seed)
    groups = X["dialogue_id"]
    outer = GroupShuffleSplit(n_splits=1, test_size=0.2, random_state=seed)
    rest, test = next(outer.split(X, y, groups))
    inner = GroupShuffleSplit(n_splits=1, test_size=0.125, random_state=seed)
    tr, va = next(inner.split(X.iloc[rest], y.iloc[rest], groups.iloc[rest]))
    train, valid = rest[tr], rest[va]

    def take(idx):
        return X.iloc[idx].reset_index(drop=True), y.iloc[idx].reset_index(drop=True)

    (Xtr, ytr), (Xva, yva), (Xte, yte) = take(train), take(valid), take(test)
    return dict(X_train=Xtr, y_train=ytr, X_valid=Xva, y_valid=yva, X_test=Xte, y_test=yte)


def with_missing(data, seed, rate=0.3, blocks=("audio", "visual")):
    """Zero each of ``blocks`` in a random ``rate`` of the rows of every split (MERC's
    convention for a missing stream), independently per block."""
    rng = np.random.RandomState(seed + 12345)
    out = dict(data)
    for split in ("train", "valid", "test"):
        X = data[f"X_{split}"].copy()
        for block in blocks:
            cols = [c for c in X.columns if c.startswith(f"{block}_")]
            X.loc[rng.rand(len(X)) < rate, cols] = 0.0
        out[f"X_{split}"] = X
    return out


def meld_views(meld_dir, quick, width_tfidf=100):
    """MELD with two views of its text: MiniLM embedding and TF-IDF/SVD (MiniLM cached)."""
    from sklearn_cberl.datasets import load_meld_minilm

    data = load_meld_minilm(meld_dir, cache_dir=CACHE)
    texts = {}
    for split in ("train", "valid", "test"):
        X, y = data[f"X_{split}"].reset_index(drop=True), data[f"y_{split}"].reset_index(drop=True)
        sentences = pd.Series(data[f"sentences_{split}"]).reset_index(drop=True)
        if quick:  # a few dialogues per split
            keep = X["dialogue_id"].isin(X["dialogue_id"].unique()[:30]).to_numpy()
            X, y, sentences = (v[keep].reset_index(drop=True) for v in (X, y, sentences))
        data[f"X_{split}"], data[f"y_{split}"], texts[split] = X, y, sentences
    tfidf = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        TruncatedSVD(width_tfidf, random_state=0),
    ).fit(texts["train"])
    out = {}
    for s in ("train", "valid", "test"):
        X = data[f"X_{s}"]
        minilm = X.filter(regex=r"^text_\d+$")
        views = [
            minilm.set_axis([f"minilm_{j}" for j in range(minilm.shape[1])], axis=1),
            pd.DataFrame(
                tfidf.transform(texts[s]),
                columns=[f"tfidf_{j}" for j in range(width_tfidf)],
            ),
        ]
        out[f"X_{s}"] = pd.concat([X[list(METADATA_COLUMNS)], *views], axis=1)
        out[f"y_{s}"] = data[f"y_{s}"]
    return out


# ----------------------------------------------------------------------------- protocol
def run_dataset(
    name, data_for_seed, seeds, grid, width, window, max_epochs, log, paper_encoders=None
):
    """Return per-seed test results of every (fusion, head) pair and the DJVAE validation log."""
    rows, validation = [], []
    for seed in seeds:
        data = data_for_seed(seed)
        labels = sorted(pd.unique(data["y_train"]))
        candidates = [("concat", {}), ("pca", {})] + [
            ("djvae", {"max_epochs": max_epochs, **p}) for p in ParameterGrid(grid)
        ]
        best = {}
        for method, params in candidates:
            fusion = make_fusion(method, width, seed, params, paper_encoders)
            t0 = time.perf_counter()
            fusion.fit(data["X_train"])
            Z = {s: fusion.transform(data[f"X_{s}"]) for s in ("train", "valid")}
            fuse_time = time.perf_counter() - t0
            for context in (False, True):
                t1 = time.perf_counter()
                predict = fit_head(Z["train"], data["y_train"], context, window)
                head_time = time.perf_counter() - t1
                val = emotion_report(data["y_valid"], predict(Z["valid"]), labels=labels)
                waf1 = float(val.loc["weighted", "f1"])
                head = "ctx-LR" if context else "LR"
                if method == "djvae":
                    validation.append(
                        {"dataset": name, "seed": seed, "head": head, **params, "valid_waf1": waf1}
                    )
                log(
                    f"[{name}] seed={seed} {method} {params} {head}: valid WAF1 {waf1:.2f} "
                    f"({fuse_time + head_time:.1f}s)"
                )
                key = (method, head)
                if key not in best or waf1 > best[key][0]:
                    best[key] = (waf1, params, fusion, predict, fuse_time + head_time)
        for (method, head), (waf1, params, fusion, predict, fit_time) in best.items():
            # The single look at the test split for this (method, head, seed).
            report = emotion_report(
                data["y_test"], predict(fusion.transform(data["X_test"])), labels=labels
            )
            rows.append(
                {
                    "dataset": name,
                    "fusion": method,
                    "head": head,
                    "seed": seed,
                    "params": {k: v for k, v in params.items() if k != "max_epochs"},
                    "valid_waf1": waf1,
                    "test_waf1": float(report.loc["weighted", "f1"]),
                    "test_macro_f1": float(report.loc["macro", "f1"]),
                    "test_waa": float(report.loc["weighted", "acc"]),
                    "fit_time_s": fit_time,
                    "width": None if method == "concat" else width,
                }
            )
    return rows, validation


def summarise(rows, validation):
    frame = pd.DataFrame(rows)
    table = (
        frame.groupby(["dataset", "fusion", "head"], sort=False)
        .agg(
            WAF1=("test_waf1", mean_std),
            macro_F1=("test_macro_f1", mean_std),
            fit_time_s=("fit_time_s", mean_std),
            chosen=("params", lambda p: "; ".join(sorted({_fmt(x) for x in p})) or "-"),
        )
        .rename(columns={"macro_F1": "macro-F1", "fit_time_s": "fit time (s)"})
    )
    val = pd.DataFrame(validation)
    design = None
    if len(val):
        keys = [c for c in val.columns if c not in ("dataset", "seed", "head", "valid_waf1")]
        keys = [k for k in keys if k != "max_epochs"]
        design = (
            val.groupby(["dataset", "head", *keys], sort=False)["valid_waf1"]
            .agg(mean_std)
            .rename("valid WAF1")
            .to_frame()
        )
    return table, design


def _fmt(params):
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items())) if params else ""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (1 seed)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--width", type=int, default=32, help="PCA / DJVAE output width")
    parser.add_argument("--epochs", type=int, default=40, help="DJVAE epochs")
    parser.add_argument("--window", type=int, default=2, help="ctx-LR window (turns)")
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["synthetic", "meld-views"],
        choices=["synthetic", "synthetic-missing", "meld-views"],
        help="which to run",
    )
    parser.add_argument(
        "--meld-dir",
        default=os.environ.get("CBERL_MELD_DIR", str(HERE.parent.parent / "shared/data/meld")),
    )
    parser.add_argument("--out", default=str(RESULTS / "fusion"), help="output path stem")
    args = parser.parse_args(argv)

    seeds = args.seeds[:1] if args.quick else args.seeds
    epochs = 3 if args.quick else args.epochs
    grid = {"encoder": ["mlp", "paper"], "fusion": ["poe", "concat"], "beta": [1.0, 0.1]}
    if args.quick:
        grid = {"encoder": ["mlp", "paper"], "fusion": ["poe"], "beta": [1.0]}
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    from sklearn_cberl import set_config  # the estimators' own thread policy

    set_config(n_threads=torch.get_num_threads())

    def log(line):
        print(line, flush=True)

    rows, validation = [], []
    if "synthetic" in args.datasets:
        r, v = run_dataset(
            "synthetic",
            lambda s: synthetic_data(s, args.quick),
            seeds,
            grid,
            args.width,
            args.window,
            epochs,
            log,
        )
        rows += r
        validation += v
    if "synthetic-missing" in args.datasets:
        r, v = run_dataset(
            "synthetic-missing",
            lambda s: with_missing(synthetic_data(s, args.quick), s),
            seeds,
            {"encoder": ["mlp"], "fusion": ["poe", "concat"], "beta": [1.0]},
            args.width,
            args.window,
            epochs,
            log,
        )
        rows += r
        validation += v
    meld_dir = Path(args.meld_dir)
    if "meld-views" in args.datasets:
        if (meld_dir / "train_sent_emo.csv").is_file():
            data = meld_views(meld_dir, args.quick)
            r, v = run_dataset(
                "meld-views",
                lambda s: data,
                seeds,
                grid,
                args.width,
                args.window,
                epochs,
                log,
                paper_encoders={"minilm": "bilstm", "tfidf": "bilstm"},
            )
            rows += r
            validation += v
        else:
            log(f"MELD not found under {meld_dir}: skipping the meld-views benchmark.")

    table, design = summarise(rows, validation)
    stem = Path(args.out + ("_quick" if args.quick else ""))
    stem.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sklearn": sklearn.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "note": "shared machine: timings are indicative",
    }
    payload = {
        "args": vars(args),
        "grid": grid,
        "environment": env,
        "runs": rows,
        "djvae_validation": validation,
    }
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
    md = [
        "# Fusion benchmark: concatenation vs PCA vs DJVAE",
        "",
        "Command: `python benchmarks/bench_fusion.py"
        + (" --quick" if args.quick else "")
        + f" --seeds {' '.join(map(str, seeds))} --width {args.width} --epochs {epochs}"
        + f" --datasets {' '.join(args.datasets)}`",
        "",
        "Test scores (%) of the candidate chosen on validation WAF1, mean ± std over seeds "
        f"{seeds}. `meld-views`: two *views* of MELD's text modality (MiniLM, TF-IDF/SVD), "
        "not two modalities. Fit time = fusion + classifier on a shared 2-core machine "
        "(indicative only).",
        "",
        markdown_table(table),
    ]
    if design is not None:
        md += [
            "",
            "## DJVAE design comparison (validation WAF1 %, mean ± std over seeds)",
            "",
            markdown_table(design),
        ]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
