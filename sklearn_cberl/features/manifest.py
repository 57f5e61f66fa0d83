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
label        the emotion (optional; needed to train ``VideoC3D``)
============ ===========================================================

:func:`build_conversation_frame` turns it into ``dialogue_id, speaker, turn, text_*,
audio_*, visual_*``. A stream missing for some utterances is **not an error**: those rows
get an all-zero block (the data model's convention for a missing modality) and the
returned mask says which rows really had the stream.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ..conversation import DIALOGUE, METADATA_COLUMNS, SPEAKER, TURN

__all__ = [
    "build_conversation_frame",
    "read_features",
    "write_features",
    "cli_extract",
    "MANIFEST_COLUMNS",
    "STREAMS",
]

#: Manifest columns (the first three are required).
MANIFEST_COLUMNS = (DIALOGUE, SPEAKER, TURN, "text", "audio_path", "video_path", "label")
#: Output block -> manifest column holding its raw stream.
STREAMS = {"text": "text", "audio": "audio_path", "visual": "video_path"}
LABEL = "label"
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
        if len(rows):
            subset = list(items[rows])
            if _is_fitted(extractor):
                values = extractor.transform(subset)
            elif block == "visual":
                if y is None:
                    raise ValueError(
                        "VideoC3D is trained on the emotion labels: the manifest needs a "
                        "'label' column, or pass a fitted visual extractor."
                    )
                values = extractor.fit(subset, y.to_numpy()[rows]).transform(subset)
            else:
                values = extractor.fit_transform(subset)
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


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="cberl extract",
        description="Extract text/audio/visual features for a manifest of raw conversations.",
    )
    parser.add_argument(
        "manifest", help="CSV with dialogue_id, speaker, turn, text, audio_path, video_path, label"
    )
    parser.add_argument("-o", "--output", required=True, help="output .parquet or .csv")
    parser.add_argument("--base-dir", default=None, help="resolve relative media paths here")
    parser.add_argument("--no-text", action="store_true")
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--no-video", action="store_true")
    parser.add_argument(
        "--text-components",
        type=int,
        default=None,
        help="PCA width of the text block (default: the model's 384)",
    )
    parser.add_argument("--audio-components", type=int, default=100)
    parser.add_argument("--video-components", type=int, default=512)
    parser.add_argument("--video-epochs", type=int, default=20)
    parser.add_argument(
        "--video-clip-shape",
        type=int,
        nargs=3,
        default=(16, 64, 64),
        metavar=("FRAMES", "HEIGHT", "WIDTH"),
        help="clips are resampled to this size before the 3D-CNN",
    )
    parser.add_argument("--missing-files", choices=("error", "zero"), default="error")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--verbose", type=int, default=0)
    return parser


def cli_extract(argv=None) -> int:
    """``cberl extract manifest.csv -o features.parquet``: entry point for the CLI."""
    args = _build_parser().parse_args(argv)
    from .audio import AudioFeatures
    from .text import TextEncoder
    from .video import VideoC3D

    common = {"device": args.device, "verbose": args.verbose, "random_state": args.seed}
    extractors = {
        "text": None if args.no_text else TextEncoder(args.text_components, **common),
        "audio": None if args.no_audio else AudioFeatures(args.audio_components, **common),
        "visual": None
        if args.no_video
        else VideoC3D(
            args.video_components,
            max_epochs=args.video_epochs,
            clip_shape=tuple(args.video_clip_shape),
            **common,
        ),
    }
    manifest = pd.read_csv(args.manifest)
    base = args.base_dir if args.base_dir is not None else str(Path(args.manifest).parent)
    # Streams whose column the manifest lacks are skipped, not errors.
    for block, column in STREAMS.items():
        if column not in manifest.columns:
            extractors[block] = None
    X, y, mask = build_conversation_frame(
        manifest,
        **extractors,
        base_dir=base,
        missing_files=args.missing_files,
        return_mask=True,
    )
    write_features(args.output, X, y, mask)
    widths = {b: int(X.columns.str.startswith(f"{b}_").sum()) for b in mask.columns}
    present = {b: int(mask[b].sum()) for b in mask.columns}
    print(
        f"Wrote {len(X)} utterances in {X[DIALOGUE].nunique()} dialogues to {args.output}: "
        f"blocks {widths}, utterances with each stream {present}."
    )
    return 0
