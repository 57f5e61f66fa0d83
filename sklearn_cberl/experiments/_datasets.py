"""The reproduction's data sets: train/valid/test frames plus class order and minority."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils import Bunch

from ..conversation import DIALOGUE, split_dialogues
from ..paper import DATASETS as PAPER_DATASETS
from ..paper import PAPER_MINORITY, TABLE_ORDER

__all__ = ["DATASETS", "FOLDED", "load_dataset", "split_frame_by_dialogue"]

#: Every data set :func:`load_dataset` knows (the paper's, the CMU-MOSI variants).
DATASETS = (
    *PAPER_DATASETS,
    "meld-text-cue",
    "meld-starved",
    "demo-starved",
    "mosi",
    "mosi-imbalanced",
    "mosi-clean",
    "mosi-clean-missing",
)
#: Cross-validated data sets -> their number of folds (``load_dataset(name, fold=k)``).
FOLDED = {"mosi-clean": 5, "mosi-clean-missing": 5}
#: ``meld-text-cue``: the classes a synthetic 6-d cue block shifts, and the shift (in noise
#: standard deviations). Chosen so that the block alone predicts them weakly and adds about
#: +4 WAF1 to a logistic regression on the text, as a small prosody block did on a real set.
CUE_CLASSES = {"anger": 0, "sadness": 1, "surprise": 2}
CUE_SHIFT = 1.0
#: ``meld-starved`` / ``demo-starved``: the two mid-size classes (third and fourth largest
#: of the training split in both) cut to :data:`STARVED_FRACTION` of their training rows.
STARVED_CLASSES = ("surprise", "anger")
STARVED_FRACTION = 1 / 8


def split_frame_by_dialogue(X, y, fractions, seed):
    """Train / valid / test parts of a conversation frame, by dialogue, of the given sizes.

    Returns a Bunch of ``X_train, y_train, X_valid, y_valid, X_test, y_test``.
    """
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


def load_dataset(
    name: str, path=None, *, quick: bool = False, cache_dir=None, fold: int | None = None
) -> Bunch:
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
    (seeded; validation and test untouched). ``mosi-clean``: MOSI's 31 test videos only
    (752 utterances whose features were not fitted to them), cross-validated by video:
    ``fold`` ``k`` of :data:`FOLDED` tests on a fifth of the videos, validates on a quarter
    of the others and trains on the rest (folds and validation videos fixed and seeded);
    ``mosi-clean-missing``: the same with one modality (drawn at random) missing - all zeros,
    the data model's convention - for 30 % of the utterances of every split (seeded).
    ``meld-text-cue`` (synthetic): ``meld-text`` plus a 6-d ``cue_*`` block of Gaussian noise
    shifted for three classes (:data:`CUE_CLASSES`): a small modality that carries signal the
    text lacks.
    ``meld-starved`` / ``demo-starved``: ``meld-text`` / ``demo`` with the training rows of
    two mid-size classes (:data:`STARVED_CLASSES`) cut to 1/8 (seeded; validation and test
    untouched; ``minority`` names the two starved classes).

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    path : path-like, default=None
        The data set's files (see above); required for ``iemocap`` and ``meld``.
    quick : bool, default=False
        Smoke mode: fewer demo dialogues, a seeded quarter of the other data sets' dialogues.
    cache_dir : path-like, default=None
        Where ``meld-text`` caches its embeddings.
    fold : int, default=None
        The fold of a cross-validated data set (:data:`FOLDED`); required for those, refused
        for the others.

    Returns
    -------
    Bunch
        ``X_train, y_train, X_valid, y_valid, X_test, y_test``, ``labels`` (the table's class
        order), ``paper`` (the paper's data set the numbers compare with, or None),
        ``minority`` (the classes of Table V) and ``description``.
    """
    from .. import datasets

    if (fold is None) == (name in FOLDED):
        raise ValueError(
            f"{name!r}: " + (f"pass fold=0..{FOLDED[name] - 1}" if name in FOLDED else "no folds")
        )
    if name in ("mosi-clean", "mosi-clean-missing"):
        data = _mosi_clean(path, fold)
        if name == "mosi-clean-missing":
            data = _drop_modalities(data, rate=0.3, seed=fold)
        return data
    if name == "meld-text-cue":
        return _with_cue(load_dataset("meld-text", path, quick=quick, cache_dir=cache_dir))
    if name in ("meld-starved", "demo-starved"):
        base = name.replace("-starved", "") + ("-text" if name == "meld-starved" else "")
        return _starve(load_dataset(base, path, quick=quick, cache_dir=cache_dir))
    if name == "demo":
        X, y = datasets.make_conversations(
            n_dialogues=80 if quick else 300,
            modalities={"text": 32, "audio": 32, "visual": 64} if quick else None,
            random_state=0,
        )
        data = split_frame_by_dialogue(X, y, (0.7, 0.1, 0.2), seed=0)
        data.labels = list(datasets.MELD_CLASSES)
        data.paper = None
        data.description = (
            f"make_conversations(n_dialogues={80 if quick else 300}, random_state=0), "
            "split 70/10/20 by dialogue"
        )
    elif name == "meld-text":
        data = datasets.load_meld_minilm(path, cache_dir=cache_dir)
        data.labels = list(TABLE_ORDER["meld"])
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
    # The paper's minority classes (Table V) where the data set has its classes (the demo
    # data has MELD's); else the two rarest training classes.
    counts = data.y_train.value_counts()
    minority = PAPER_MINORITY.get(data.paper or "meld")  # copied: callers may edit theirs
    data.minority = (
        list(minority) if minority else [c for c in counts.index[::-1] if c in data.labels][:2]
    )
    return data


def _mosi_clean(path, fold: int) -> Bunch:
    """Fold ``fold`` of the video-level cross-validation over MOSI's clean test videos."""
    from sklearn.model_selection import GroupKFold

    from .. import datasets

    n_folds = FOLDED["mosi-clean"]
    if not 0 <= fold < n_folds:
        raise ValueError(f"mosi-clean has folds 0..{n_folds - 1}, got fold={fold}.")
    raw = datasets.load_mosi(path, valid_size=0, random_state=0)
    X = raw.X_test.drop(columns="transcript").reset_index(drop=True)
    y = raw.y_test.reset_index(drop=True)
    videos = X[DIALOGUE].to_numpy()
    # Videos shuffled once (seeded) so that folds do not follow the file's video order.
    order = np.random.RandomState(0).permutation(len(X))
    splitter = GroupKFold(n_splits=n_folds)
    rest, test = list(splitter.split(X.iloc[order], groups=videos[order]))[fold]
    rest, test = np.sort(order[rest]), np.sort(order[test])
    kept, held = split_dialogues(pd.unique(videos[rest]), 0.25, random_state=fold)
    valid = rest[np.isin(videos[rest], held)]
    train = rest[np.isin(videos[rest], kept)]
    take = lambda idx: (X.iloc[idx].reset_index(drop=True), y.iloc[idx].reset_index(drop=True))  # noqa: E731
    (X_tr, y_tr), (X_va, y_va), (X_te, y_te) = take(train), take(valid), take(test)
    data = Bunch(X_train=X_tr, y_train=y_tr, X_valid=X_va, y_valid=y_va, X_test=X_te, y_test=y_te)
    data.labels = list(datasets.MOSI_CLASSES)
    data.paper = None
    data.minority = ["negative"]
    data.description = (
        "CMU-MOSI's 31 test videos (clean features), 5-fold cross-validation by video: fold "
        f"{fold} tests on {X_te[DIALOGUE].nunique()} videos, validates on "
        f"{X_va[DIALOGUE].nunique()}, trains on {X_tr[DIALOGUE].nunique()}"
    )
    return data


def _drop_modalities(data: Bunch, rate: float, seed: int) -> Bunch:
    """Zero one modality block (drawn at random) in ``rate`` of every split's utterances."""
    from ..conversation import check_conversations

    rng = np.random.RandomState(seed)
    out = Bunch(**data)
    for split in ("train", "valid", "test"):
        X = data[f"X_{split}"].copy()
        conv = check_conversations(X)
        names = list(conv.blocks)
        hit = np.flatnonzero(rng.rand(len(X)) < rate)
        which = rng.randint(len(names), size=len(hit))
        for b, name in enumerate(names):
            columns = list(conv.feature_names[conv.blocks[name]])
            X.loc[X.index[hit[which == b]], columns] = 0.0
        out[f"X_{split}"] = X
    out.description = data.description + f"; one modality missing in {rate:.0%} of utterances"
    return out


def _with_cue(data: Bunch) -> Bunch:
    """``data`` with the synthetic ``cue_0 .. cue_5`` block of ``meld-text-cue``."""
    rng = np.random.RandomState(0)
    out = Bunch(**data)
    for split in ("train", "valid", "test"):
        X, y = data[f"X_{split}"], np.asarray(data[f"y_{split}"])
        cue = rng.randn(len(X), 6)
        for label, dim in CUE_CLASSES.items():
            cue[y == label, dim] += CUE_SHIFT
        cue_frame = pd.DataFrame(cue, index=X.index, columns=[f"cue_{i}" for i in range(6)])
        out[f"X_{split}"] = pd.concat([X, cue_frame], axis=1)
    out.description = (
        data.description + "; plus a synthetic 6-d cue block (noise shifted by "
        f"{CUE_SHIFT} sd for {', '.join(CUE_CLASSES)})"
    )
    return out


def _starve(data: Bunch) -> Bunch:
    """``data`` with the training rows of :data:`STARVED_CLASSES` cut to
    :data:`STARVED_FRACTION` (seeded; the other splits untouched)."""
    from ..datasets import make_imbalance

    out = Bunch(**data)
    counts = data.y_train.value_counts()
    targets = {c: max(1, int(counts[c] * STARVED_FRACTION)) for c in STARVED_CLASSES}
    out.X_train, out.y_train = make_imbalance(
        data.X_train, data.y_train, targets, random_state=0
    )
    out.X_train = out.X_train.reset_index(drop=True)
    out.y_train = out.y_train.reset_index(drop=True)
    out.minority = list(STARVED_CLASSES)
    cut = ", ".join(f"{c} {counts[c]} -> {n}" for c, n in targets.items())
    out.description = data.description + f"; training rows of two mid-size classes cut ({cut})"
    return out


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
