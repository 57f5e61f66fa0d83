"""CMU-MOSI with the trimodal utterance features of Poria et al. (ACL 2017), and a helper that
makes a real data set imbalanced in a controlled way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from imblearn.under_sampling import RandomUnderSampler

from ..conversation import DIALOGUE, SPEAKER, TURN
from ._bunch import data_dir, holdout_dialogues, make_bunch

__all__ = ["load_mosi", "make_imbalance", "MOSI_FILES", "MOSI_CLASSES"]

#: Files of the release: transcripts plus (text, audio, video) features per split.
MOSI_FILES = {
    "transcripts": "transcripts.csv",
    **{f"{m}_{s}": f"{m}_{s}.csv" for s in ("train", "test") for m in ("text", "audio", "video")},
}
#: Label names: 0 = negative, 1 = positive sentiment.
MOSI_CLASSES = ("negative", "positive")
#: Feature width of each modality in the release (column prefix -> width).
_WIDTHS = {"text": 100, "audio": 73, "visual": 100}


def _read(root: Path, key: str) -> pd.DataFrame:
    path = root / MOSI_FILES[key]
    if not path.is_file():
        raise FileNotFoundError(
            f"MOSI file {str(path)!r} not found: expected {sorted(MOSI_FILES.values())} in "
            "one directory."
        )
    return pd.read_csv(path, header=None)


def _numeric(frame: pd.DataFrame, name: str, width: int) -> np.ndarray:
    if frame.shape[1] != width:
        raise ValueError(f"{name} has {frame.shape[1]} columns: expected {width}.")
    values = frame.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains non-finite values.")
    return values.astype(np.float32)


def _split(root: Path, split: str, transcripts: pd.DataFrame):
    text = _read(root, f"text_{split}")
    audio = _read(root, f"audio_{split}")
    video = _read(root, f"video_{split}")
    if not len(text) == len(audio) == len(video):
        raise ValueError(
            f"MOSI {split} files disagree in length: text {len(text)}, audio {len(audio)}, "
            f"video {len(video)} rows (row i of each belongs to the same utterance)."
        )
    rows = text.iloc[:, 0].to_numpy()
    n = len(transcripts)
    if not np.issubdtype(rows.dtype, np.integer) or rows.min() < 0 or rows.max() >= n:
        raise ValueError(
            f"{MOSI_FILES[f'text_{split}']}: column 0 must index rows of "
            f"{MOSI_FILES['transcripts']} (0..{len(transcripts) - 1})."
        )
    meta = transcripts.iloc[rows].reset_index(drop=True)
    labels = meta["label"].to_numpy()
    for name, frame in (("audio", audio), ("video", video)):
        if not np.array_equal(frame.iloc[:, -1].to_numpy(), labels):
            raise ValueError(
                f"{MOSI_FILES[f'{name}_{split}']}: the label column disagrees with the "
                "transcripts: the files are not aligned."
            )
    blocks = {
        "text": _numeric(text.iloc[:, 1:], f"text_{split}", _WIDTHS["text"]),
        "audio": _numeric(audio.iloc[:, :-1], f"audio_{split}", _WIDTHS["audio"]),
        "visual": _numeric(video.iloc[:, :-1], f"video_{split}", _WIDTHS["visual"]),
    }
    features = pd.DataFrame(
        np.hstack(list(blocks.values())),
        columns=[f"{m}_{j}" for m, v in blocks.items() for j in range(v.shape[1])],
    )
    X = pd.concat(
        [
            pd.DataFrame(
                {
                    DIALOGUE: meta["video"].to_numpy(dtype=object),
                    # One speaker per video: the video is the speaker.
                    SPEAKER: meta["video"].to_numpy(dtype=object),
                    TURN: meta["turn"].to_numpy(dtype=np.int64),
                }
            ),
            features,
            pd.DataFrame({"transcript": meta["transcript"].to_numpy(dtype=object)}),
        ],
        axis=1,
    )
    y = pd.Series(np.asarray(MOSI_CLASSES, dtype=object)[labels], name="sentiment", dtype=object)
    return X, y


def load_mosi(path=None, *, valid_size=0.1, valid_from="train", random_state=0):
    """Load CMU-MOSI's trimodal utterance features with the speaker-independent split.

    The release of Poria et al. ("Context-Dependent Sentiment Analysis in User-Generated
    Videos", ACL 2017): 2,199 opinion utterances from 93 single-speaker YouTube videos
    (CMU-MOSI, Zadeh et al. 2016), each with text-CNN, openSMILE and 3D-CNN features and a
    binary sentiment label. Expected files (CSV, no header): ``transcripts.csv`` (id
    ``VIDEO_N``, transcript, video number, label) and ``{text,audio,video}_{train,test}.csv``.

    The dialogue is the video, the turn is the utterance number ``N`` and the speaker is the
    video's single speaker. The release has no validation split: ``valid_size`` of the
    *videos* of one split are held out, seeded (so no speaker is on both sides).

    .. warning::
       The text and video features of the *training* videos were produced by networks
       trained on those videos: a logistic regression reaches 97.6 % accuracy on held-out
       training videos (5-fold, text features) but 74.5 % on the test videos. A validation
       split cut from the training videos (``valid_from="train"``, the usual practice)
       therefore says little about test performance, and early stopping on it stops at
       an arbitrary epoch. ``valid_from="test"`` holds out ``valid_size`` of the *test*
       videos instead (features of the same kind as the rest of the test split); the test
       split is then the remaining test videos.

    Parameters
    ----------
    path : str or path-like, default=None
        Directory holding the files. None reads the ``CBERL_MOSI_DIR`` environment variable.
    valid_size : float or int, default=0.1
        Fraction (or number) of the videos of ``valid_from`` held out for validation; 0 for
        none.
    valid_from : {"train", "test"}, default="train"
        Which official split the validation videos come from (see the warning).
    random_state : int, default=0
        Seeds the validation hold-out.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X_train, y_train, X_valid, y_valid, X_test, y_test``: frames with ``dialogue_id``,
        ``speaker``, ``turn``, ``text_0..99``, ``audio_0..72``, ``visual_0..99`` and the raw
        ``transcript`` (a string column: drop it, or re-embed it with
        :func:`~sklearn_cberl.datasets.embed_text`, before fitting), and Series of labels
        ``"negative"`` / ``"positive"``; ``sentences_*`` (the transcripts); ``class_names``;
        ``DESCR``.
    """
    if valid_from not in ("train", "test"):
        raise ValueError(f"valid_from={valid_from!r}: expected 'train' or 'test'.")
    root = data_dir(path, "CBERL_MOSI_DIR", "the MOSI CSV files")
    raw = _read(root, "transcripts")
    if raw.shape[1] != 4:
        raise ValueError(
            f"{MOSI_FILES['transcripts']} has {raw.shape[1]} columns: expected 4 (id, "
            "transcript, video number, label)."
        )
    ids = raw.iloc[:, 0].astype(str)
    parts = ids.str.rsplit("_", n=1, expand=True)
    if parts.shape[1] != 2 or parts[1].isna().any() or not parts[1].str.isdigit().all():
        raise ValueError(
            f"{MOSI_FILES['transcripts']}: utterance ids must look like 'VIDEO_N' (N = the "
            "position in the video)."
        )
    labels = pd.to_numeric(raw.iloc[:, 3], errors="coerce")
    if not labels.isin([0, 1]).all():
        raise ValueError(f"{MOSI_FILES['transcripts']}: column 3 must hold labels 0 or 1.")
    transcripts = pd.DataFrame(
        {
            "video": parts[0],
            "turn": parts[1].astype(np.int64),
            "transcript": raw.iloc[:, 1].fillna("").astype(str),
            "label": labels.astype(np.int64),
        }
    )
    X_train, y_train = _split(root, "train", transcripts)
    X_test, y_test = _split(root, "test", transcripts)
    source = {"train": (X_train, y_train), "test": (X_test, y_test)}
    X_from, y_from = source[valid_from]
    videos = list(pd.unique(X_from[DIALOGUE]))
    _, valid_videos = holdout_dialogues(videos, valid_size, random_state)
    in_valid = X_from[DIALOGUE].isin(valid_videos).to_numpy()
    source[valid_from] = (X_from[~in_valid], y_from[~in_valid])
    parts = {
        "train": source["train"],
        "valid": (X_from[in_valid], y_from[in_valid]),
        "test": source["test"],
    }
    splits = {}
    for name, (X, y) in parts.items():
        X, y = X.reset_index(drop=True), y.reset_index(drop=True)
        splits[name] = (X, y, X["transcript"].rename("sentence"))
    descr = (
        f"CMU-MOSI trimodal features (Poria et al. 2017) from {str(root)!r}: "
        + ", ".join(
            f"{s} {len(splits[s][0])} utterances / {splits[s][0][DIALOGUE].nunique()} videos"
            for s in splits
        )
        + f"; validation videos from the {valid_from} split; y = sentiment (negative / "
        "positive). MIT licence; cite CMU-MOSI and Poria et al."
    )
    return make_bunch(splits, MOSI_CLASSES, descr)


def make_imbalance(X, y, sampling_strategy, *, random_state=None):
    """Remove utterances at random so that classes reach the given counts (real data made
    imbalanced in a controlled, seeded way).

    A conversation-frame-aware wrapper of :func:`imblearn.datasets.make_imbalance`: the
    surviving rows keep their metadata and their input order (imbalanced-learn groups rows
    by class), so dialogues stay readable; a dialogue simply loses some turns.

    Parameters
    ----------
    X : DataFrame or array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    sampling_strategy : dict or callable
        Target count per class to reduce (classes not named keep all their rows), or a
        callable ``y -> dict``, as :class:`~imblearn.under_sampling.RandomUnderSampler`.
        E.g. MOSI-imbalanced: ``{"negative": n_positive // 8}``.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X_imb, y_imb
        The kept rows, in input order, same containers (index kept).
    """
    y_array = np.asarray(y)
    if callable(sampling_strategy):
        sampling_strategy = sampling_strategy(y_array)
    if not isinstance(sampling_strategy, dict):
        raise TypeError(
            f"sampling_strategy={sampling_strategy!r}: expected a dict label -> target count "
            "or a callable returning one."
        )
    labels, counts = np.unique(y_array, return_counts=True)
    present = dict(zip(labels.tolist(), counts.tolist()))
    for label, target in sampling_strategy.items():
        if label not in present:
            raise ValueError(
                f"sampling_strategy names class {label!r}, which is not in y "
                f"(classes: {sorted(present, key=str)})."
            )
        if not 0 <= target <= present[label]:
            raise ValueError(
                f"sampling_strategy[{label!r}]={target}: expected a count between 0 and the "
                f"class's {present[label]} samples (this helper only removes rows)."
            )
    sampler = RandomUnderSampler(sampling_strategy=sampling_strategy, random_state=random_state)
    # Only the labels matter to the sampler: a row index stands in for X.
    sampler.fit_resample(np.arange(len(y_array)).reshape(-1, 1), y_array)
    keep = np.sort(sampler.sample_indices_)
    take = (lambda a: a.iloc[keep]) if hasattr(X, "iloc") else (lambda a: np.asarray(a)[keep])
    y_out = y.iloc[keep] if hasattr(y, "iloc") else y_array[keep]
    return take(X), y_out
