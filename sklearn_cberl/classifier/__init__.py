"""``CBERLClassifier`` (paper Sec. IV-A-3 to IV-B, Eq. 13-20) and everything only it uses.

* :mod:`._classifier` - the estimator: parameters, input checks, ``fit`` and prediction;
* :mod:`._net` - its skorch net (:class:`CBERLNet`: CBERL's loss and the SAMME rounds of the
  heads), dialogue batching, and the net's setup from plain values.

The torch network itself is :class:`sklearn_cberl.nn.mgnn.MGNN`.
"""

from ._classifier import CBERLClassifier
from ._net import CBERLNet

__all__ = ["CBERLClassifier", "CBERLNet"]
