"""Datasets: the synthetic benchmark and loaders for the standard MERC releases."""

from ._synthetic import MELD_CLASS_WEIGHTS, MELD_CLASSES, make_conversations

__all__ = ["make_conversations", "MELD_CLASSES", "MELD_CLASS_WEIGHTS"]
