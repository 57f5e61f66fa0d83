"""sklearn-cberl: CBERL for imbalanced multimodal emotion recognition in conversations.

The three estimators compose in an ``imblearn.pipeline.Pipeline`` (or :class:`CBERLPipeline`,
which also routes a validation set to the classifier):
:class:`EmoGANSampler` (data level, paper Eq. 1-7) -> :class:`DJVAE` (representation level,
Eq. 8-12) -> :class:`CBERLClassifier` (model and loss level, Eq. 13-20);
:func:`make_cberl_pipeline` builds it with the paper's hyper-parameters.
"""

from .classifier import CBERLClassifier
from .fusion import DJVAE
from .pipeline import (
    PAPER_AUGMENTATION,
    AddPerClass,
    CBERLPipeline,
    UpToRatio,
    make_cberl_pipeline,
)
from .sampler import ConversationSampler, EmoGANSampler

__version__ = "0.1.0"

__all__ = [
    "EmoGANSampler",
    "ConversationSampler",
    "DJVAE",
    "CBERLClassifier",
    "CBERLPipeline",
    "make_cberl_pipeline",
    "AddPerClass",
    "UpToRatio",
    "PAPER_AUGMENTATION",
    "__version__",
]
