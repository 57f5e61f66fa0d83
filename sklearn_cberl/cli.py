"""The ``cberl`` command line."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _demo(args) -> int:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupShuffleSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .conversation import METADATA_COLUMNS
    from .datasets import make_conversations
    from .metrics import emotion_report, format_report

    X, y = make_conversations(n_dialogues=args.n_dialogues, random_state=args.seed)
    print(f"Synthetic conversations: {len(X)} utterances in {X['dialogue_id'].nunique()} dialogues")
    print((y.value_counts(normalize=True) * 100).round(2).rename("% of utterances").to_string())
    train, test = next(
        GroupShuffleSplit(test_size=0.3, random_state=args.seed).split(X, y, X["dialogue_id"])
    )
    features = X.drop(columns=list(METADATA_COLUMNS))
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=0.05))
    baseline.fit(features.iloc[train], y.iloc[train])
    y_pred = baseline.predict(features.iloc[test])
    print("\nPer-utterance logistic regression (context-free baseline), held-out dialogues:")
    print(format_report(emotion_report(y.iloc[test], y_pred, labels=np.unique(y))))
    return 0


def _extract(args) -> int:
    from .features import cli_extract

    return cli_extract(args.rest)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cberl",
        description="CBERL: imbalanced multimodal emotion recognition in conversations.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the main job on built-in synthetic conversations")
    demo.add_argument("--n-dialogues", type=int, default=200)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    # `cberl extract` keeps its own parser (sklearn_cberl.features.manifest); pass argv through.
    extract = sub.add_parser(
        "extract", add_help=False, help="raw conversations (manifest) -> feature frame"
    )
    extract.add_argument("rest", nargs=argparse.REMAINDER)
    extract.set_defaults(func=_extract)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["extract"]:
        # argparse.REMAINDER drops a leading option such as --help: hand over directly.
        return _extract(argparse.Namespace(rest=argv[1:]))
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
