"""``DJVAE`` (paper Sec. IV-A-2, Eq. 8-12) and everything only it uses.

:mod:`._djvae` holds the estimator, its modality blocks (columns, encoders,
standardisation), its skorch net and its chunked inference; the torch modules and the Eq. 12
loss are :mod:`sklearn_cberl.nn.vae`.
"""

from ._djvae import DJVAE

__all__ = ["DJVAE"]
