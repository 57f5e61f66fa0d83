"""Over-samplers for conversation frames (imbalanced-learn API).

* :class:`EmoGANSampler` - CBERL's multimodal emotion cycle-GAN (paper Sec. IV-A-1).
* :class:`ConversationSampler` - any imbalanced-learn over-sampler (SMOTE, ...) on the
  feature columns, with valid conversation metadata for the synthetic rows.

Where the synthetic rows go in a conversation is the data model's business
(:func:`sklearn_cberl.conversation.assemble_resampled`). :class:`SyntheticRowsWarning` (from
:mod:`sklearn_cberl.exceptions`) is public here too.
"""

from ..exceptions import SyntheticRowsWarning
from ._conversation import ConversationSampler
from ._emogan import EmoGANSampler

__all__ = ["ConversationSampler", "EmoGANSampler", "SyntheticRowsWarning"]
