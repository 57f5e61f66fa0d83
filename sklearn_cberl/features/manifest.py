"""From a manifest of raw conversations to the data-model frame, and the ``extract`` command.

A *manifest* is a table with one row per utterance:

============ ===========================================================
column       content
============ ===========================================================
dialogue_id  the conversation (required)
speaker      who speaks (required)
turn         position inside the dialogue (required, numeric)
text         the transcript (optional column; empty = missing)
audio_path   an audio file (optional column; empty = missing)
video_path   a video file (optional column; empty = missing)
label        the emotion (optional; needed to train ``VideoC3D`` and
             ``TunedTextEncoder``)
split        ``train`` / ``valid`` / ``test`` (optional): extractors are fitted
             on the ``train`` rows only, choose their epoch on the ``valid``
             rows, and transform every row
============ ===========================================================

:func:`build_conversation_frame` turns it into ``dialogue_id, speaker, turn, text_*,
audio_*, visual_*``. A stream missing for some utterances is **not an error**: those rows
get an all-zero block (the data model's convention for a missing modality) and the
returned mask says which rows really had the stream.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .._params import accepts_validation_data, learns_from_labels
from ..conversation import DIALOGUE, METADATA_COLUMNS, SPEAKER, TURN

__all__ = [
    "build_conversation_frame",
    "read_features",
    "write_features",
    "MANIFEST_COLUMNS",
    "STREAMS",
]

#: Manifest columns (the first three are required).
MANIFEST_COLUMNS = (
    DIALOGUE, SPEAKER, TURN, "text", "audio_path", "video_path", "label", "split"
)  # fmt: skip
#: Output block -> manifest column holding its raw stream.
STREAMS = {"text": "text", "audio": "audio_path", "visual": "video_path"}
LABEL = "label"
SPLIT = "split"
#: Prefix of the mask columns in files written by :func:`write_features`.
MASK_PREFIX = "has_"


def _default_extractor(block, random_state, device, verbose):
    if block == "text":
        from .text import TextEncoder

        return TextEncoder(device=device, verbose=verbose, random_state=random_state)
    if block == "audio":
        from .audio import AudioFeatures

        return AudioFeatures(device=device, verbose=verbose, random_state=random_state)
    from .video import VideoC3D

    return VideoC3D(device=device, verbose=verbose, random_state=random_state)


def _is_fitted(estimator) -> bool:
    try:
        check_is_fitted(estimator, "n_features_out_")
    except NotFittedError:
        return False
    return True


def _present(values: pd.Series) -> np.ndarray:
    """Rows whose stream is given (not NaN/None, not an empty or blank string)."""
    present = values.notna().to_numpy()
    as_text = values.astype(str).str.strip()
    return present & (as_text != "").to_numpy()


def _stream(extractor, block, frame, items, rows):
    """What ``extractor`` reads for ``rows``: the items (texts, media paths), or for a
    label-trained text encoder the utterances with their dialogue metadata (its windows)."""
    if block != "text" or not learns_from_labels(extractor):
        return list(items[rows])
    part = frame.iloc[rows][[*METADATA_COLUMNS, "text"]]
    return part.rename(columns={"text": getattr(extractor, "text_column", "text")})


def _fit_extractor(extractor, block, frame, items, y, present, fit_mask, valid):
    """Fit an extractor on the ``fit_mask`` rows that have its stream and return the
    features of every row with the stream (``fit_transform``'s for the fitted rows: a
    cross-fitting extractor returns its out-of-fold features there)."""
    fit_rows = np.flatnonzero(present & fit_mask)
    if not len(fit_rows):
        raise ValueError(f"No 'train' row of the manifest has a {block} stream to fit on.")
    kwargs, target = {}, ()
    if learns_from_labels(extractor):
        if y is None:
            raise ValueError(
                f"{type(extractor).__name__} is trained on the emotion labels: the manifest "
                f"needs a {LABEL!r} column, or pass a fitted {block} extractor."
            )
        target = (y.to_numpy()[fit_rows],)
        held = np.flatnonzero(present & valid)
        if len(held) and accepts_validation_data(extractor):
            held_y = y.to_numpy()[held]
            kwargs["validation_data"] = (_stream(extractor, block, frame, items, held), held_y)
    fitted = extractor.fit_transform(
        _stream(extractor, block, frame, items, fit_rows), *target, **kwargs
    )
    values = np.zeros((len(frame), fitted.shape[1]), dtype=np.float32)
    values[fit_rows] = fitted
    other = np.flatnonzero(present & ~fit_mask)
    if len(other):
        values[other] = extractor.transform(_stream(extractor, block, frame, items, other))
    return values[present]


def _read_manifest(manifest, base_dir):
    if isinstance(manifest, (str, os.PathLike)):
        path = Path(manifest)
        if not path.is_file():
            raise FileNotFoundError(f"Manifest {str(path)!r} not found.")
        frame = pd.read_csv(path, keep_default_na=True)
        base = Path(base_dir) if base_dir is not None else path.parent
        return frame, base
    if not isinstance(manifest, pd.DataFrame):
        raise TypeError(
            f"manifest is a {type(manifest).__name__}: expected a DataFrame or a CSV path."
        )
    return manifest, Path(base_dir) if base_dir is not None else Path.cwd()


def build_conversation_frame(
    manifest,
    *,
    text="auto",
    audio="auto",
    visual="auto",
    base_dir=None,
    missing_files="error",
    return_mask=False,
    random_state=None,
    device="auto",
    verbose=0,
):
    """Extract text, audio and visual features for every utterance of a manifest.

    Text goes through :class:`TextEncoder`, audio through :class:`AudioFeatures`
    (openSMILE IS13-ComParE + MLP bottleneck), video through :class:`VideoC3D` (3D-CNN,
    trained on ``label``) - the front-end of paper Sec. III.

    Parameters
    ----------
    manifest : DataFrame or path
        The manifest table (see the module docstring) or a CSV file holding it.
    text, audio, visual : "auto", estimator or None, default="auto"
        The extractor of each block. ``"auto"`` uses a default one when the manifest has the
        stream's column (``text``, ``audio_path``, ``video_path``) and skips the block
        otherwise; None always skips it. A fitted estimator only transforms; an unfitted one
        is fitted (in place) on the rows that have the stream - fit extractors on the
        training manifest and pass them, fitted, for validation/test manifests.
    base_dir : path, default=None
        Directory that relative media paths are resolved against; default the manifest's
        directory (CSV path) or the working directory (DataFrame).
    missing_files : {"error", "zero"}, default="error"
        A listed media file that does not exist is an error, or treated as a missing stream.
    return_mask : bool, default=False
        Also return the mask.
    random_state : int or None, default=None
        Seed of the default extractors.
    device : str, default="auto"
        Torch device of the default extractors.
    verbose : int, default=0
        Progress output of the default extractors.

    Returns
    -------
    X : DataFrame
        ``dialogue_id, speaker, turn`` then ``text_*``, ``audio_*``, ``visual_*`` (float32),
        in manifest row order with the manifest's index. Rows without a stream hold zeros in
        that block.
    y : Series or None
        The ``label`` column (None when the manifest has none).
    mask : DataFrame of bool, only with ``return_mask=True``
        One column per produced block (``text``, ``audio``, ``visual``): True where the
        utterance really had the stream, False where its block is the all-zero filler.
        Models can use it to tell "silent" from "unknown"; :func:`write_features` stores it
        as ``has_<block>`` columns.
    """
    frame, base = _read_manifest(manifest, base_dir)
    if missing_files not in ("error", "zero"):
        raise ValueError(f"missing_files={missing_files!r}: expected 'error' or 'zero'.")
    if len(frame) == 0:
        raise ValueError("The manifest is empty: expected one row per utterance.")
    missing = [c for c in METADATA_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"The manifest is missing column(s) {missing}: expected {list(METADATA_COLUMNS)} "
            f"and any of 'text', 'audio_path', 'video_path', 'label'."
        )
    if not pd.api.types.is_numeric_dtype(frame[TURN]):
        raise ValueError(
            f"Manifest column {TURN!r} has dtype {frame[TURN].dtype}: expected numbers."
        )
    y = frame[LABEL].copy() if LABEL in frame.columns else None
    if y is not None and y.isna().any():
        raise ValueError(f"Manifest column {LABEL!r} has missing labels.")
    fit_mask, valid = np.ones(len(frame), dtype=bool), np.zeros(len(frame), dtype=bool)
    if SPLIT in frame.columns:
        split = frame[SPLIT].astype(str).str.strip().str.lower()
        unknown = sorted(set(split) - {"train", "valid", "test"})
        if unknown:
            raise ValueError(
                f"Manifest column {SPLIT!r} has value(s) {unknown[:3]}: expected 'train', "
                "'valid' or 'test'."
            )
        fit_mask, valid = (split == "train").to_numpy(), (split == "valid").to_numpy()

    extractors = {"text": text, "audio": audio, "visual": visual}
    blocks, masks = [], {}
    for block, column in STREAMS.items():
        extractor = extractors[block]
        auto = isinstance(extractor, str) and extractor == "auto"
        if extractor is None or (auto and column not in frame.columns):
            continue
        if isinstance(extractor, str):
            if extractor != "auto":
                raise ValueError(f"{block}={extractor!r}: expected 'auto', an estimator or None.")
            extractor = _default_extractor(block, random_state, device, verbose)
        if column not in frame.columns:
            raise ValueError(
                f"{block}= was given an extractor but the manifest has no {column!r} column."
            )
        present = _present(frame[column])
        items = frame[column].to_numpy(dtype=object)
        if block != "text":
            paths = [
                (Path(p) if Path(str(p)).is_absolute() else base / str(p)) if ok else None
                for p, ok in zip(items, present)
            ]
            for i, p in enumerate(paths):
                if p is not None and not p.is_file():
                    if missing_files == "error":
                        raise FileNotFoundError(
                            f"Manifest row {i}: {column} {str(p)!r} does not exist (pass "
                            "missing_files='zero' to treat it as a missing stream)."
                        )
                    present[i] = False
            items = np.asarray([str(p) for p in paths], dtype=object)
        rows = np.flatnonzero(present)
        values = None
        if len(rows) and _is_fitted(extractor):
            values = extractor.transform(_stream(extractor, block, frame, items, rows))
        elif len(rows):
            values = _fit_extractor(extractor, block, frame, items, y, present, fit_mask, valid)
        elif not _is_fitted(extractor):
            raise ValueError(
                f"No manifest row has a {column!r} stream, so the {block} extractor cannot be "
                f"fitted: pass a fitted one or {block}=None."
            )
        names = list(extractor.get_feature_names_out())
        # Missing stream -> all-zero block (the data model's missing-modality convention).
        block_values = np.zeros((len(frame), len(names)), dtype=np.float32)
        if values is not None:
            block_values[rows] = np.asarray(values, dtype=np.float32)
        blocks.append(pd.DataFrame(block_values, columns=names, index=frame.index))
        masks[block] = present
    if not blocks:
        raise ValueError(
            "No feature block was produced: the manifest needs at least one of the columns "
            "'text', 'audio_path', 'video_path' (with its extractor not None)."
        )
    X = pd.concat([frame[list(METADATA_COLUMNS)].copy(), *blocks], axis=1)
    mask = pd.DataFrame(masks, index=frame.index)
    return (X, y, mask) if return_mask else (X, y)


def write_features(path, X, y=None, mask=None) -> None:
    """Write a feature frame (plus ``label`` and ``has_<block>`` mask columns) to parquet/CSV.

    Parquet needs ``pyarrow`` (or ``fastparquet``); a ``.csv`` path needs nothing extra.
    """
    out = X.copy()
    if y is not None:
        out[LABEL] = np.asarray(y)
    if mask is not None:
        for block in mask.columns:
            out[f"{MASK_PREFIX}{block}"] = mask[block].to_numpy(dtype=bool)
    path = Path(path)
    if path.suffix.lower() == ".csv":
        out.to_csv(path, index=False)
        return
    try:
        out.to_parquet(path, index=False)
    except ImportError as exc:
        raise ImportError(
            f"Writing {str(path)!r} as parquet needs pyarrow: pip install pyarrow (or give the "
            "output a .csv name)."
        ) from exc


def read_features(path):
    """Read a file written by :func:`write_features` back into ``(X, y, mask)``."""
    path = Path(path)
    frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    y = frame.pop(LABEL) if LABEL in frame.columns else None
    mask_columns = [c for c in frame.columns if str(c).startswith(MASK_PREFIX)]
    mask = frame[mask_columns].rename(columns=lambda c: c[len(MASK_PREFIX) :]).astype(bool)
    return frame.drop(columns=mask_columns), y, mask
