"""Reproduce the paper's tables and figures with the honest protocol.

``run_reproduction("meld-text")`` (or ``cberl reproduce --dataset meld-text``, or
``python benchmarks/reproduce_paper.py --dataset meld-text``) writes, under
``<output_dir>/<dataset>/``:

* Table I/II - per-class Acc/F1, WAA, WAF1 of CBERL and baselines (per-utterance logistic
  regression and MLP; a bc-LSTM-style context model; RandomOverSampler, SMOTE,
  BorderlineSMOTE and ADASYN in place of the EmoGAN in front of the same fusion + classifier);
* Table III - the 16 combinations of fusion / focal gamma / node mask / AdaBoost;
* Table IV - with vs without augmentation; Table V - minority-class F1 of the N/D/M/A variants;
* Table VI - synthetic utterances per class;
* Fig. 6 confusion matrix, Fig. 7 t-SNE of raw vs learned embeddings, Fig. 8 gamma sweep,
  Fig. 9 t-SNE of raw vs augmented training data;

as JSON, markdown and PNG.

Protocol. Every model is fitted on the training split; the classifier selects its epoch on
the *validation* split (the dataset's official dev split, or 10 % of the training dialogues
for IEMOCAP); the test split is predicted once per fitted model; results are mean ± std over
seeds. Nobody picks the best test epoch. Each variant is the pipeline
``[augment] -> [DJVAE] -> CBERLClassifier`` (see :func:`~sklearn_cberl.make_cberl_pipeline`);
to save time, the augmented training set and the fitted DJVAE are computed once per seed and
shared by every variant that uses the same prefix - the same computation a Pipeline would do,
fitted once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupShuffleSplit
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import Bunch

from .conversation import DIALOGUE, METADATA_COLUMNS
from .experiments import markdown_table
from .metrics import emotion_report
from .pipeline import PAPER_AUGMENTATION

__all__ = ["DATASETS", "PAPER_RESULTS", "load_dataset", "run_reproduction"]

DATASETS = ("demo", "meld-text", "iemocap", "meld")

#: Class order of the paper's tables.
TABLE_ORDER = {
    "meld": ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"],
    "iemocap": ["happy", "sad", "neutral", "angry", "excited", "frustrated"],
}

#: The paper's reported numbers (Tables I-V) for the comparison columns of the report.
PAPER_RESULTS = {
    "meld": {
        "CBERL": {"WAA": 67.78, "WAF1": 66.89, "F1 fear": 22.23, "F1 disgust": 24.65},
        "CBERL (no aug)": {"WAA": 66.23, "WAF1": 65.01},
        "Table V": {
            "N": {"fear": 3.15, "disgust": 2.96},
            "D": {"fear": 18.92, "disgust": 21.36},
            "M": {"fear": 13.40, "disgust": 17.71},
            "A": {"fear": 10.77, "disgust": 12.52},
            "full": {"fear": 22.23, "disgust": 24.65},
        },
    },
    "iemocap": {
        "CBERL": {"WAA": 69.36, "WAF1": 69.27, "F1 happy": 67.34},
        "CBERL (no aug)": {"WAA": 68.69, "WAF1": 68.41},
        # Table III: (fusion, gamma, mask, adaboost) -> WAF1
        "Table III": {
            "+---": 67.1,
            "-+--": 66.0,
            "--+-": 66.8,
            "---+": 65.9,
            "++--": 67.9,
            "+-+-": 68.5,
            "+--+": 68.0,
            "-++-": 67.4,
            "-+-+": 66.2,
            "--++": 68.3,
            "+++-": 68.8,
            "+-++": 69.0,
            "++-+": 68.2,
            "-+++": 67.9,
            "----": 64.1,
            "++++": 69.2,
        },
        "Table V": {
            "N": {"happy": 47.48},
            "D": {"happy": 65.34},
            "M": {"happy": 61.19},
            "A": {"happy": 58.62},
            "full": {"happy": 67.34},
        },
    },
}


# ----------------------------------------------------------------------------- data
def _split_dialogues(X, y, fractions, seed):
    """Split a conversation frame by dialogue into consecutive parts of the given sizes."""
    groups = X[DIALOGUE].to_numpy()
    rest, test = next(
        GroupShuffleSplit(test_size=fractions[2], random_state=seed).split(X, y, groups)
    )
    valid_share = fractions[1] / (fractions[0] + fractions[1])
    tr, va = next(
        GroupShuffleSplit(test_size=valid_share, random_state=seed).split(rest, groups=groups[rest])
    )
    take = lambda idx: (X.iloc[idx].reset_index(drop=True), y.iloc[idx].reset_index(drop=True))  # noqa: E731
    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = take(rest[tr]), take(rest[va]), take(test)
    return Bunch(X_train=X_tr, y_train=y_tr, X_valid=X_va, y_valid=y_va, X_test=X_te, y_test=y_te)


def load_dataset(name: str, path=None, *, quick: bool = False, cache_dir=None) -> Bunch:
    """Load a reproduction dataset as ``X_/y_`` train/valid/test plus ``labels``, ``paper``.

    ``demo``: :func:`~sklearn_cberl.datasets.make_conversations` (3 modalities), split
    70/10/20 by dialogue. ``meld-text``: the MELD CSV release (``path`` or
    ``$CBERL_MELD_DIR``) embedded with MiniLM (384-d ``text_*``, cached in ``cache_dir``);
    text only - MELD's audio/visual features are not available here. ``iemocap`` / ``meld``:
    the standard pre-extracted feature pickles at ``path``. ``mosi``: CMU-MOSI's trimodal
    features (``path`` or ``$CBERL_MOSI_DIR``), validation = a third of the *test* videos
    (seeded, fixed; the training videos' features are fitted to them, see
    :func:`~sklearn_cberl.datasets.load_mosi`), test = the other test videos;
    ``mosi-imbalanced``: the same with the training negatives cut to 1/8 of the positives
    (seeded; validation and test untouched).
    """
    from . import datasets

    if name == "demo":
        X, y = datasets.make_conversations(
            n_dialogues=80 if quick else 300,
            modalities={"text": 32, "audio": 32, "visual": 64} if quick else None,
            random_state=0,
        )
        data = _split_dialogues(X, y, (0.7, 0.1, 0.2), seed=0)
        data.labels = list(datasets.MELD_CLASSES)
        data.paper = None
        data.description = (
            f"make_conversations(n_dialogues={80 if quick else 300}, random_state=0), "
            "split 70/10/20 by dialogue"
        )
    elif name == "meld-text":
        data = datasets.load_meld_minilm(path, cache_dir=cache_dir)
        data.labels = TABLE_ORDER["meld"]
        data.paper = "meld"
        data.description = (
            "MELD text release, official train/dev/test split, all-MiniLM-L6-v2 sentence "
            "embeddings (384-d; text only)"
        )
    elif name in ("mosi", "mosi-imbalanced"):
        data = datasets.load_mosi(path, valid_size=1 / 3, valid_from="test", random_state=0)
        for split in ("train", "valid", "test"):
            data[f"X_{split}"] = data[f"X_{split}"].drop(columns="transcript")
        data.description = (
            "CMU-MOSI trimodal features (text 100, audio 73, visual 100), official "
            "speaker-independent split; validation = 11 of the 31 test videos (seeded), "
            "test = the other 20"
        )
        if name == "mosi-imbalanced":
            positives = int((data.y_train == "positive").sum())
            data.X_train, data.y_train = datasets.make_imbalance(
                data.X_train, data.y_train, {"negative": positives // 8}, random_state=0
            )
            data.description += "; training negatives cut to 1/8 of the positives (seeded)"
        data.labels = list(datasets.MOSI_CLASSES)
        data.paper = None
        data.minority = ["negative"]
        return data
    elif name in ("iemocap", "meld"):
        if path is None:
            raise ValueError(f"--dataset {name} needs the path of its feature pickle.")
        loader = datasets.load_iemocap if name == "iemocap" else datasets.load_meld
        data = loader(path)
        data.labels = [c for c in TABLE_ORDER[name] if c in set(data.y_train)]
        data.paper = name
        data.description = f"{name} feature pickle {path}"
    else:
        raise ValueError(f"Unknown dataset {name!r}: expected one of {DATASETS}.")
    if quick and name != "demo":
        data = _subsample(data, fraction=0.25)
    # The paper's minority classes (Table V) where the data set has its classes; else the
    # two rarest training classes.
    paper_minority = {"meld": ["fear", "disgust"], "iemocap": ["happy"]}
    counts = data.y_train.value_counts()
    data.minority = (
        paper_minority.get(data.paper or "meld")
        or [c for c in counts.index[::-1] if c in data.labels][:2]
    )
    return data


def _subsample(data: Bunch, fraction: float) -> Bunch:
    """Keep a seeded fraction of the dialogues of every split (for --quick smoke runs)."""
    out = Bunch(**data)
    rng = np.random.RandomState(0)
    for split in ("train", "valid", "test"):
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        ids = X[DIALOGUE].unique()
        keep = set(rng.choice(ids, size=max(2, int(len(ids) * fraction)), replace=False))
        mask = X[DIALOGUE].isin(keep).to_numpy()
        out[f"X_{split}"] = X[mask].reset_index(drop=True)
        out[f"y_{split}"] = y[mask].reset_index(drop=True)
    return out


# ----------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    """One model of the report: ``aug`` -> ``fuse`` -> classifier with ``clf`` parameters."""

    name: str
    aug: str | None = "emogan"  # None | emogan | ros | smote | borderline | adasyn
    fuse: bool = True
    clf: tuple = ()  # CBERLClassifier parameter overrides, as (key, value) pairs
    kind: str = "cberl"  # cberl | lr | mlp
    tables: tuple = field(default=(), compare=False)


def _ablation_name(fuse, gamma, mask, boost) -> str:
    return "".join("+" if on else "-" for on in (fuse, gamma, mask, boost))


def build_variants(include_gamma_sweep: bool = True) -> tuple[list[Variant], dict]:
    """Every model needed by Tables I-V and Fig. 8, each fitted once.

    Returns the variants and ``roles``: a map from each table role (``"CBERL"``,
    ``"ablation ++-+"``, ``"CBERL (D)"``, ``"gamma=3"``, ...) to the variant that fills it
    (several roles share one model, e.g. ``CBERL`` = ``ablation ++++`` = ``gamma=3``).
    """
    variants: dict[tuple, Variant] = {}
    roles: dict[str, Variant] = {}

    def add(role, aug="emogan", fuse=True, clf=(), kind="cberl"):
        key = (aug, fuse, clf, kind)
        if key not in variants:
            variants[key] = Variant(role, aug, fuse, clf, kind)
        roles[role] = variants[key]

    def clf(gamma=3.0, mask=0.2, boost=True, **extra):
        params = {
            "gamma": float(gamma),
            "mask_rate": float(mask),
            "ensemble": "adaboost" if boost else "mlp",
            **extra,
        }
        return tuple(sorted(params.items()))

    add("CBERL", clf=clf())
    add("CBERL (no aug)", aug=None, clf=clf())
    add("LR (per-utterance)", aug=None, fuse=False, kind="lr")
    add("MLP (per-utterance)", aug=None, fuse=False, kind="mlp")
    add(
        "bc-LSTM-style (context, no graph)",
        aug=None,
        fuse=False,
        clf=clf(gamma=0, mask=0, boost=False, n_layers=0),
    )
    for aug in SAMPLER_LABELS:
        if aug != "emogan":
            add(f"{SAMPLER_LABELS[aug]} + CBERL", aug=aug, clf=clf())
    for fuse in (True, False):
        for gamma in (True, False):
            for mask in (True, False):
                for boost in (True, False):
                    add(
                        f"ablation {_ablation_name(fuse, gamma, mask, boost)}",
                        fuse=fuse,
                        clf=clf(gamma=3 if gamma else 0, mask=0.2 if mask else 0, boost=boost),
                    )
    # Table V: fusion and AdaBoost stay on; N = no augmentation, masking or gamma; D/M/A add
    # only augmentation / masking / gamma.
    add("CBERL (N)", aug=None, clf=clf(gamma=0, mask=0))
    add("CBERL (D)", clf=clf(gamma=0, mask=0))
    add("CBERL (M)", aug=None, clf=clf(gamma=0))
    add("CBERL (A)", aug=None, clf=clf(mask=0))
    if include_gamma_sweep:
        for gamma in range(6):
            add(f"gamma={gamma}", clf=clf(gamma=gamma))
    return list(variants.values()), roles


SAMPLER_LABELS = {
    "emogan": "EmoGANSampler",
    "ros": "RandomOverSampler",
    "smote": "SMOTE",
    "borderline": "BorderlineSMOTE",
    "adasyn": "ADASYN",
}


# ----------------------------------------------------------------------------- fitting
#: Training-set sizes the paper's Table VI counts refer to (to scale them to other sizes).
TABLE_VI_REFERENCE_SIZE = {"meld": 9989, "iemocap": 5810}


def _sampling_strategy(data):
    from .pipeline import AddPerClass

    table = data.paper or "meld"  # the demo data has MELD's classes
    return AddPerClass(PAPER_AUGMENTATION[table], reference_size=TABLE_VI_REFERENCE_SIZE[table])


def _make_sampler(aug, strategy, seed, device, verbose):
    from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler

    from .sampler import ConversationSampler, EmoGANSampler

    if aug == "emogan":
        return EmoGANSampler(
            sampling_strategy=strategy, device=device, random_state=seed, verbose=verbose
        )
    cls = {
        "ros": RandomOverSampler,
        "smote": SMOTE,
        "borderline": BorderlineSMOTE,
        "adasyn": ADASYN,
    }[aug]
    return ConversationSampler(cls(sampling_strategy=strategy, random_state=seed))


def _features(X):
    return X.drop(columns=[c for c in METADATA_COLUMNS if c in X.columns])


def _fit_flat(kind, data, seed):
    """Per-utterance baselines; C / hidden size chosen on validation WAF1."""
    from .metrics import weighted_f1

    if kind == "lr":
        grid = [
            make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
            for C in (0.01, 0.1, 1.0)
        ]
    else:
        grid = [
            make_pipeline(
                StandardScaler(),
                MLPClassifier(
                    hidden_layer_sizes=(h,),
                    alpha=1e-3,
                    early_stopping=True,
                    max_iter=200,
                    random_state=seed,
                ),
            )
            for h in (128, 256)
        ]
    best = None
    for model in grid:
        model.fit(_features(data.X_train), data.y_train)
        score = weighted_f1(data.y_valid, model.predict(_features(data.X_valid)))
        if best is None or score > best[0]:
            best = (score, model)
    return best[1]


class _Prefixes:
    """Per-seed cache of the shared pipeline prefixes (augmented train set, fitted DJVAE)."""

    def __init__(self, data, seed, device, verbose, quick):
        self.data, self.seed, self.device, self.verbose, self.quick = (
            data,
            seed,
            device,
            verbose,
            quick,
        )
        self.strategy = _sampling_strategy(data)
        self.augmented: dict = {}
        self.fused: dict = {}

    def augment(self, aug):
        if aug not in self.augmented:
            start = time.perf_counter()
            if aug is None:
                out = (self.data.X_train, self.data.y_train, None)
            else:
                sampler = _make_sampler(aug, self.strategy, self.seed, self.device, self.verbose)
                X, y = sampler.fit_resample(self.data.X_train, self.data.y_train)
                out = (X, y, sampler)
            self.augmented[aug] = (*out, time.perf_counter() - start)
        return self.augmented[aug]

    def fuse(self, aug, fuse):
        X, y, _, aug_time = self.augment(aug)
        if not fuse:
            return X, y, self.data.X_valid, self.data.X_test, None, aug_time
        if aug not in self.fused:
            from .fusion import DJVAE

            start = time.perf_counter()
            vae = DJVAE(device=self.device, random_state=self.seed, verbose=self.verbose)
            if self.quick:
                vae.set_params(n_epochs=5)
            Xf = vae.fit_transform(X)
            out = (Xf, vae.transform(self.data.X_valid), vae.transform(self.data.X_test), vae)
            self.fused[aug] = (*out, time.perf_counter() - start)
        Xf, Xv, Xt, vae, fuse_time = self.fused[aug]
        return Xf, y, Xv, Xt, vae, aug_time + fuse_time


def _fit_variant(variant: Variant, prefixes: _Prefixes, device, verbose, quick, max_epochs):
    """Fit one variant; return (test predictions, fit seconds, fitted parts)."""
    from .classifier import CBERLClassifier

    data = prefixes.data
    if variant.kind in ("lr", "mlp"):
        start = time.perf_counter()
        model = _fit_flat(variant.kind, data, prefixes.seed)
        return model.predict(_features(data.X_test)), time.perf_counter() - start, {}
    X, y, X_valid, X_test, vae, prefix_time = prefixes.fuse(variant.aug, variant.fuse)
    clf = CBERLClassifier(device=device, random_state=prefixes.seed, verbose=verbose)
    clf.set_params(**dict(variant.clf))
    if max_epochs is not None:
        clf.set_params(max_epochs=max_epochs)
    start = time.perf_counter()
    clf.fit(X, y, validation_data=(X_valid, data.y_valid))
    fit_time = prefix_time + time.perf_counter() - start
    return clf.predict(X_test), fit_time, {"clf": clf, "vae": vae, "X_test": X_test}


# ----------------------------------------------------------------------------- reporting
def _mean_std(values) -> str:
    values = np.asarray(values, dtype=float)
    if not len(values):
        return "failed"
    return f"{values.mean():.2f} ± {values.std():.2f}"


def _cell(reports, row, column):
    return [r.loc[row, column] for r in reports]


def _table_main(names, results, labels):
    rows = {}
    for name in names:
        reports = results[name]["reports"]
        row = {}
        for c in labels:
            row[f"{c} Acc"] = _mean_std(_cell(reports, c, "acc"))
            row[f"{c} F1"] = _mean_std(_cell(reports, c, "f1"))
        row["WAA"] = _mean_std(_cell(reports, "weighted", "acc"))
        row["WAF1"] = _mean_std(_cell(reports, "weighted", "f1"))
        row["macro-F1"] = _mean_std(_cell(reports, "macro", "f1"))
        row["fit s"] = _mean_std(results[name]["fit_time"])
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def _run_seed(
    data, variants, full, seed, device, verbose, quick, max_epochs, figures, log, started
):
    """Fit every variant for one seed; return test reports, fit times and figure inputs."""
    prefixes = _Prefixes(data, seed, device, verbose, quick)
    fits, state = {}, {}
    for i, variant in enumerate(variants):
        try:
            y_pred, fit_time, parts = _fit_variant(
                variant, prefixes, device, verbose, quick, max_epochs
            )
        except ValueError as exc:
            # e.g. ADASYN: "No samples will be generated" at Table VI's counts. Recorded and
            # reported as a failed cell; the other models still run.
            fits[variant.name] = (None, None, str(exc))
            log(f"[reproduce] seed {seed} {variant.name}: FAILED ({exc})")
            continue
        report = emotion_report(data.y_test, y_pred, labels=data.labels)
        fits[variant.name] = (report, fit_time, None)
        log(
            f"[reproduce] seed {seed} [{i + 1}/{len(variants)}] {variant.name}: "
            f"WAF1 {report.loc['weighted', 'f1']:.2f} ({fit_time:.0f}s, "
            f"{time.perf_counter() - started:.0f}s total)"
        )
        if figures and variant.name == full.name:
            state.update(parts, y_pred=y_pred)
    X_aug, y_aug, _, _ = prefixes.augment("emogan")
    if figures:
        state["augmented"] = (X_aug, y_aug)
    n_real = len(data.y_train)
    counts = pd.Series(np.asarray(y_aug)[n_real:]).value_counts()
    return {"seed": seed, "fits": fits, "synthetic_counts": counts, "figures": state}


def _run_seeds(
    data, variants, full, seeds, device, verbose, quick, max_epochs, n_jobs, log, started
):
    """All seeds, sequentially or in ``n_jobs`` processes (one torch thread each)."""
    common = dict(
        data=data,
        variants=variants,
        full=full,
        device=device,
        verbose=verbose,
        quick=quick,
        max_epochs=max_epochs,
        started=started,
    )
    if n_jobs in (None, 1) or len(seeds) == 1:
        return [_run_seed(seed=seed, figures=seed == seeds[0], log=log, **common) for seed in seeds]
    from joblib import Parallel, delayed

    log(f"[reproduce] {len(seeds)} seeds in {n_jobs} processes (progress lines per seed end)")
    return Parallel(n_jobs=n_jobs, backend="loky")(
        delayed(_run_seed_in_process)(seed=seed, figures=seed == seeds[0], **common)
        for seed in seeds
    )


def _run_seed_in_process(**kwargs):
    """:func:`_run_seed` in a worker process; its progress lines are printed when it ends."""
    import torch

    # Several processes share the cores: one intra-op thread each avoids oversubscription.
    torch.set_num_threads(1)
    lines = []
    run = _run_seed(log=lines.append, **kwargs)
    print("\n".join(lines), flush=True)
    return run


def run_reproduction(
    dataset: str = "demo",
    path=None,
    *,
    seeds: Iterable[int] = (0, 1, 2),
    quick: bool = False,
    output_dir="benchmarks/results",
    device: str = "auto",
    max_epochs: int | None = None,
    verbose: int = 0,
    n_jobs: int | None = None,
    log=print,
) -> dict:
    """Run every model of the report over ``seeds`` and write tables and figures.

    Parameters
    ----------
    dataset : {"demo", "meld-text", "iemocap", "meld"}
    path : path-like, default=None
        MELD CSV directory for ``meld-text`` (default ``$CBERL_MELD_DIR``), feature pickle
        for ``iemocap`` / ``meld``.
    seeds : iterable of int, default=(0, 1, 2)
    quick : bool, default=False
        Smoke mode: a quarter of the dialogues (smaller demo data), one seed unless given,
        few epochs, no gamma sweep.
    output_dir : path-like, default="benchmarks/results"
        Results go to ``<output_dir>/<dataset>/``.
    device : str, default="auto"
    max_epochs : int, default=None
        Cap on the classifier's epochs (default: its own ``max_epochs``; 5 in quick mode).
    verbose : int, default=0
    n_jobs : int, default=None
        Run the seeds in this many processes (one torch thread each); None = sequential.
    log : callable, default=print
        Progress lines.

    Returns
    -------
    dict
        The JSON payload that was written (``summary.json``).
    """
    from .plotting import plot_confusion_matrix, plot_f1_bars, plot_tsne

    seeds = list(seeds)
    out = Path(output_dir) / dataset
    out.mkdir(parents=True, exist_ok=True)
    if quick and max_epochs is None:
        max_epochs = 5
    started = time.perf_counter()
    data = load_dataset(dataset, path, quick=quick, cache_dir=Path(output_dir) / ".cache")
    labels = data.labels
    variants, roles = build_variants(include_gamma_sweep=not quick)
    log(
        f"[reproduce] {dataset}: {len(data.X_train)}/{len(data.X_valid)}/{len(data.X_test)} "
        f"train/valid/test utterances; {len(variants)} models x {len(seeds)} seeds"
    )
    runs = _run_seeds(
        data,
        variants,
        roles["CBERL"],
        seeds,
        device,
        verbose,
        quick,
        max_epochs,
        n_jobs,
        log,
        started,
    )
    results = {
        v.name: {"reports": [], "fit_time": [], "errors": [], "variant": v} for v in variants
    }
    synthetic_counts, figures_state = [], {}
    for run in runs:  # in seed order
        for name, (report, fit_time, error) in run["fits"].items():
            if error is not None:
                results[name]["errors"].append(f"seed {run['seed']}: {error}")
            else:
                results[name]["reports"].append(report)
                results[name]["fit_time"].append(fit_time)
        synthetic_counts.append(run["synthetic_counts"])
        if run["figures"]:
            figures_state = run["figures"]

    by_role = {role: results[v.name] for role, v in roles.items()}
    tables = {}
    # Table I/II
    main_rows = [
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
    main = _table_main([roles[r].name for r in main_rows], results, labels)
    main.index = pd.Index(main_rows, name="model")
    tables["table_main"] = main
    summary_columns = ["WAA", "WAF1", "macro-F1", *[f"{c} F1" for c in data.minority], "fit s"]
    tables["table_summary"] = main[summary_columns]
    # Table III
    t3 = {}
    for role, v in roles.items():
        if role.startswith("ablation "):
            code = role.split()[1]
            row = dict(zip(("fusion", "gamma", "node mask", "AdaBoost"), code))
            row["WAF1"] = _mean_std(_cell(results[v.name]["reports"], "weighted", "f1"))
            row["WAA"] = _mean_std(_cell(results[v.name]["reports"], "weighted", "acc"))
            if data.paper == "iemocap":
                row["paper WAF1"] = PAPER_RESULTS["iemocap"]["Table III"][code]
            t3[code] = row
    tables["table_iii"] = pd.DataFrame.from_dict(t3, orient="index").rename_axis("code")
    # Table IV
    t4 = {}
    for role in ("CBERL (no aug)", "CBERL"):
        reports = by_role[role]["reports"]
        t4[role] = {
            "WAA": _mean_std(_cell(reports, "weighted", "acc")),
            "WAF1": _mean_std(_cell(reports, "weighted", "f1")),
        }
        if data.paper:
            paper = PAPER_RESULTS[data.paper][role]
            t4[role].update({"paper WAA": paper["WAA"], "paper WAF1": paper["WAF1"]})
    tables["table_iv"] = pd.DataFrame.from_dict(t4, orient="index").rename_axis("model")
    # Table V (minority classes)
    t5 = {}
    for tag in ("N", "D", "M", "A", "full"):
        role = "CBERL" if tag == "full" else f"CBERL ({tag})"
        reports = by_role[role]["reports"]
        t5[role] = {f"F1 {c}": _mean_std(_cell(reports, c, "f1")) for c in data.minority}
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
    gammas = [g for g in range(6) if f"gamma={g}" in roles]
    if gammas:
        sweep = {
            g: {
                "WAF1": _cell(by_role[f"gamma={g}"]["reports"], "weighted", "f1"),
                "WAA": _cell(by_role[f"gamma={g}"]["reports"], "weighted", "acc"),
            }
            for g in gammas
        }
        tables["gamma_sweep"] = pd.DataFrame(
            {g: {k: _mean_std(v) for k, v in d.items()} for g, d in sweep.items()}
        ).T.rename_axis("gamma")
        _plot_gamma(sweep, out / "fig8_gamma_sweep.png")

    # Figures (seed 0)
    cberl = figures_state
    plot_confusion_matrix(
        data.y_test,
        cberl["y_pred"],
        labels=labels,
        title=f"CBERL on {dataset} (test, seed {seeds[0]})",
        path=out / "fig6_confusion_matrix.png",
    )
    plot_f1_bars(
        {
            name: results[roles[name].name]["reports"][0]
            for name in ("LR (per-utterance)", "SMOTE + CBERL", "CBERL (no aug)", "CBERL")
        },
        title=f"Per-class F1 on {dataset} (seed {seeds[0]})",
        path=out / "f1_bars.png",
    )
    embedding = cberl["clf"].embed(cberl["X_test"])
    plot_tsne(
        {
            "raw features (test)": (_features(data.X_test).to_numpy(), data.y_test),
            "CBERL graph embeddings (test)": (np.asarray(embedding), data.y_test),
        },
        max_points=1500,
        title="Fig. 7: t-SNE of raw vs learned embeddings",
        path=out / "fig7_tsne_embeddings.png",
    )
    X_aug, y_aug = cberl["augmented"]
    plot_tsne(
        {
            "original training data": (_features(data.X_train).to_numpy(), data.y_train),
            "after EmoGAN augmentation": (_features(X_aug).to_numpy(), y_aug),
        },
        max_points=1500,
        title="Fig. 9: t-SNE of raw vs augmented training data",
        path=out / "fig9_tsne_augmentation.png",
    )

    elapsed = time.perf_counter() - started
    payload = {
        "dataset": dataset,
        "description": data.description,
        "seeds": seeds,
        "quick": quick,
        "max_epochs": max_epochs,
        "device": device,
        "wall_time_s": elapsed,
        "protocol": (
            "fit on train; classifier epoch and baseline hyper-parameters selected on the "
            "validation split; test predicted once per fitted model; mean ± std over seeds"
        ),
        "minority": data.minority,
        "tables": {k: v.reset_index().to_dict(orient="records") for k, v in tables.items()},
        "runs": {
            name: {
                "fit_time": res["fit_time"],
                "errors": res["errors"],
                "reports": [r.reset_index().to_dict(orient="list") for r in res["reports"]],
            }
            for name, res in results.items()
        },
    }
    (out / "summary.json").write_text(json.dumps(payload, indent=2, default=str))
    (out / "report.md").write_text(_markdown(dataset, data, tables, payload))
    log(f"[reproduce] wrote {out} in {elapsed:.0f}s")
    return payload


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


def _markdown(dataset, data, tables, payload) -> str:
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
