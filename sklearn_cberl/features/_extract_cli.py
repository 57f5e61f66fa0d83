"""``cberl extract``: a manifest of raw conversations -> a feature file."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from ..conversation import DIALOGUE
from .manifest import STREAMS, build_conversation_frame, write_features
from .text import DEFAULT_TEXT_MODEL

__all__ = ["cli_extract"]


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="cberl extract",
        description="Extract text/audio/visual features for a manifest of raw conversations.",
    )
    parser.add_argument(
        "manifest",
        help="CSV with dialogue_id, speaker, turn, text, audio_path, video_path, label, split",
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
    parser.add_argument(
        "--text-fine-tune",
        action="store_true",
        help="fine-tune the text encoder on the 'label' column (TunedTextEncoder; with a "
        "'split' column: on the train rows, epoch chosen on the valid rows)",
    )
    parser.add_argument(
        "--text-model",
        default=DEFAULT_TEXT_MODEL,
        help="text model: the bundled all-MiniLM-L6-v2 or a local model directory",
    )
    parser.add_argument(
        "--text-context", type=int, default=0, help="fine-tuning: preceding turns read first"
    )
    parser.add_argument(
        "--text-cv",
        type=int,
        default=None,
        help="fine-tuning: cross-fit the training rows' text features over this many folds",
    )
    parser.add_argument("--text-epochs", type=int, default=3, help="fine-tuning: max epochs")
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
    from .text_tuning import TunedTextEncoder
    from .video import VideoC3D

    common = {"device": args.device, "verbose": args.verbose, "random_state": args.seed}
    extractors = {
        "text": None
        if args.no_text
        else TunedTextEncoder(
            args.text_components,
            model=args.text_model,
            context=args.text_context,
            cv=args.text_cv,
            max_epochs=args.text_epochs,
            **common,
        )
        if args.text_fine_tune
        else TextEncoder(args.text_components, model=args.text_model, **common),
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
