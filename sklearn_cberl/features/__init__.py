"""Feature extraction front-end: raw conversations (text, audio, video) -> the data model.

Paper Sec. III: text through a pre-trained language model, audio through openSMILE's
IS13-ComParE functionals reduced by an MLP, video through a 3D-CNN.
"""

from .text import DEFAULT_TEXT_MODEL, TextEncoder

__all__ = ["TextEncoder", "DEFAULT_TEXT_MODEL"]
