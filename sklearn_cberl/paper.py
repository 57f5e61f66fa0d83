"""The paper's constants and published numbers, in one place.

Everything here is read off the CBERL paper (its Tables I-VI); the estimators, the pipeline
helpers and the reproduction import it from here. Plain data only: importing this module
costs nothing.
"""

from __future__ import annotations

__all__ = [
    "DATASETS",
    "PAPER_AUGMENTATION",
    "PAPER_MINORITY",
    "PAPER_RESULTS",
    "TABLE_ORDER",
    "TABLE_VI_REFERENCE_SIZE",
]

#: Paper Table VI: synthetic utterances the EmoGAN adds per class.
#: Data sets ``cberl reproduce`` runs on (here, not in ``experiments``, so that the command's
#: ``--help`` does not import scikit-learn to list them).
DATASETS = ("demo", "meld-text", "iemocap", "meld")

PAPER_AUGMENTATION = {
    "iemocap": {
        "happy": 250,
        "neutral": 80,
        "sad": 120,
        "excited": 120,
        "angry": 250,
        "frustrated": 80,
    },
    "meld": {"sadness": 60, "fear": 200, "anger": 60, "disgust": 200},
}

#: Training-set sizes the paper's Table VI counts refer to (to scale them to other sizes).
TABLE_VI_REFERENCE_SIZE = {"meld": 9989, "iemocap": 5810}

#: Class order of the paper's tables.
TABLE_ORDER = {
    "meld": ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"],
    "iemocap": ["happy", "sad", "neutral", "angry", "excited", "frustrated"],
}

#: The minority classes whose F1 the paper reports (Table V).
PAPER_MINORITY = {"meld": ["fear", "disgust"], "iemocap": ["happy"]}

#: The paper's reported numbers (Tables I-V) for the comparison columns of the report.
PAPER_RESULTS = {
    "meld": {
        "CBERL": {"WAA": 67.78, "WAF1": 66.89, "F1 fear": 22.23, "F1 disgust": 24.65},
        "CBERL (no aug)": {"WAA": 66.23, "WAF1": 65.01},
        "Table V": {
            "N": {"fear": 3.15, "disgust": 2.96},
            "D": {"fear": 18.92, "disgust": 21.36},
            "M": {"fear": 13.40, "disgust": 17.71},
            "A": {"fear": 10.77, "disgust": 12.52},
            "full": {"fear": 22.23, "disgust": 24.65},
        },
    },
    "iemocap": {
        "CBERL": {"WAA": 69.36, "WAF1": 69.27, "F1 happy": 67.34},
        "CBERL (no aug)": {"WAA": 68.69, "WAF1": 68.41},
        # Table III: (fusion, gamma, mask, adaboost) -> WAF1
        "Table III": {
            "+---": 67.1,
            "-+--": 66.0,
            "--+-": 66.8,
            "---+": 65.9,
            "++--": 67.9,
            "+-+-": 68.5,
            "+--+": 68.0,
            "-++-": 67.4,
            "-+-+": 66.2,
            "--++": 68.3,
            "+++-": 68.8,
            "+-++": 69.0,
            "++-+": 68.2,
            "-+++": 67.9,
            "----": 64.1,
            "++++": 69.2,
        },
        "Table V": {
            "N": {"happy": 47.48},
            "D": {"happy": 65.34},
            "M": {"happy": 61.19},
            "A": {"happy": 58.62},
            "full": {"happy": 67.34},
        },
    },
}
