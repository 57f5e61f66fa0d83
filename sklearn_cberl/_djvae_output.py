"""What a fitted :class:`~sklearn_cberl.fusion.DJVAE` computes: the fused latent (Eq. 8
``f``), decoded features (Eq. 8 ``g``), the ELBO (Eq. 11) and the output column names.

A mixin so that :mod:`sklearn_cberl.fusion` holds the parameters and the fit; it reads only
the fitted attributes that ``DJVAE.fit`` documents (plus ``_columns`` and ``_seed``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._modality_blocks import fused_output, latent_input
from .conversation import METADATA_COLUMNS
from .nn.vae_loops import decode_latent, encode_mean, negative_elbo_sum

__all__ = ["DJVAEOutputMixin"]


class DJVAEOutputMixin:
    """Inference methods of :class:`~sklearn_cberl.fusion.DJVAE` (documented there)."""

    def _fused_names(self):
        return [f"fused_{i}" for i in range(self.n_components)]

    def transform(self, X):
        """Posterior mean ``mu`` of the fused latent (Eq. 8 ``f``), deterministic.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Same kind of input as in :meth:`fit`.

        Returns
        -------
        X_new : DataFrame or ndarray
            For a conversation frame: a frame with the same index, the metadata columns
            first and unchanged, then ``fused_0 .. fused_{k-1}`` (then the original modality
            columns when ``passthrough=True``). For a plain table: an array of shape
            ``(n_samples, n_components)`` (plus the modality columns with passthrough).
        """
        check_is_fitted(self, "module_")
        self._sync_device()
        conv, columns = self._validate(X, reset=False)
        values, present = self._standardise(conv, columns, fit=False)
        latent = encode_mean(self.module_, values, present, self.device_).astype(conv.X.dtype)
        return fused_output(
            X, conv, latent, columns, self._fused_names(), self.passthrough_, self.conversational_
        )

    def get_feature_names_out(self, input_features=None):
        """Output column names: metadata (conversation input), ``fused_*``, passthrough.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Checked against ``feature_names_in_``; the output names do not depend on it.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "module_")
        _check_feature_names_in(self, input_features)
        names = list(METADATA_COLUMNS) if self.conversational_ else []
        names += self._fused_names()
        if self.passthrough_:
            names += [n for m in self.modalities_ for n in self.block_features_[m]]
        return np.asarray(names, dtype=object)

    def inverse_transform(self, X):
        """Decode latent vectors back to modality features in the original scale (Eq. 8 ``g``).

        Parameters
        ----------
        X : DataFrame or array-like
            The output of :meth:`transform` (its ``fused_*`` columns are used; metadata and
            passthrough columns are ignored) or an array of shape (n_samples,
            n_components).

        Returns
        -------
        X_original : DataFrame or ndarray
            Reconstructed modality columns (in the order of ``block_features_``); a frame
            with the metadata columns first when ``X`` carries them, else an array.
        """
        check_is_fitted(self, "module_")
        self._sync_device()
        width = sum(map(len, self._columns.values())) if self.passthrough_ else 0
        Z, metadata = latent_input(X, self._fused_names(), width)
        decoded = decode_latent(self.module_, Z, self.device_)
        blocks = [
            self.scalers_[m].inverse_transform(decoded[:, b].astype(np.float64))
            for m, b in zip(self.modalities_, self.module_.blocks)
        ]
        values = np.hstack(blocks).astype(Z.dtype)
        if metadata is None:
            return values
        names = [n for m in self.modalities_ for n in self.block_features_[m]]
        return pd.concat([metadata, pd.DataFrame(values, index=X.index, columns=names)], axis=1)

    def score(self, X, y=None):
        """Mean evidence lower bound per utterance (Eq. 11; = minus the Eq. 12 loss).

        Higher is better (sklearn convention). With ``beta != 1`` the KL term is weighted
        by ``beta`` as in training.

        A one-sample Monte Carlo estimate with a generator seeded from ``random_state``,
        so repeated calls agree; the KL term is exact.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        check_is_fitted(self, "module_")
        self._sync_device()
        conv, columns = self._validate(X, reset=False)
        values, present = self._standardise(conv, columns, fit=False)
        share = values.shape[1] / len(columns)
        generator = torch.Generator(device=self.device_).manual_seed(self._seed)
        weights = torch.full((len(columns),), share, device=self.device_)
        total = negative_elbo_sum(self.module_, values, present, weights, self.beta, generator)
        return -total / values.shape[0]
