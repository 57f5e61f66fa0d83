"""Datasets: the synthetic benchmark and loaders for the standard MERC releases."""

from ._meld import MELD_SPLIT_FILES, embed_text, fix_mojibake, load_meld_minilm, load_meld_text
from ._mosi import MOSI_CLASSES, MOSI_FILES, load_mosi, make_imbalance
from ._pickle_layouts import LAYOUTS
from ._pickles import IEMOCAP_CLASSES, MELD_PICKLE_CLASSES, load_iemocap, load_meld
from ._synthetic import MELD_CLASS_WEIGHTS, MELD_CLASSES, make_conversations

__all__ = [
    "make_conversations",
    "MELD_CLASSES",
    "MELD_CLASS_WEIGHTS",
    "load_meld_text",
    "load_meld_minilm",
    "embed_text",
    "fix_mojibake",
    "MELD_SPLIT_FILES",
    "load_iemocap",
    "load_meld",
    "IEMOCAP_CLASSES",
    "MELD_PICKLE_CLASSES",
    "LAYOUTS",
    "load_mosi",
    "make_imbalance",
    "MOSI_CLASSES",
    "MOSI_FILES",
]
