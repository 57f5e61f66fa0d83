"""``AudioFeatures``: openSMILE functionals, z-scored, reduced by an MLP auto-encoder.

Paper Sec. III: each utterance's audio is described by openSMILE's IS13-ComParE functionals
(6373-d; ``ComParE_2016`` in the ``opensmile`` package is that set), z-score normalised, and
reduced to 100-d by a self-supervised MLP. The ``opensmile`` PyPI package ships the
SMILExtract library inside its wheel; it comes with the optional ``audio`` extra
(``pip install "sklearn-cberl[audio]"``).
"""

from __future__ import annotations

import os
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted
from skorch.helper import predefined_split
from torch.nn import functional as F

from .._config import uses_torch_threads
from .._torch_estimator import (
    TRAINING_CONSTRAINTS,
    PlainPrintLog,
    RowDataset,
    TermsNet,
    fitted_history,
    resolve_device,
    rows_as_batch,
    seed_from,
    torch_seed,
    training_callbacks,
)
from ..conversation import validation_split
from ..nn.autoencoder import AutoEncoder
from ._media import media_and_dialogues

__all__ = ["AudioFeatures", "AutoEncoder"]

_EXTRA_HINT = "install the optional 'audio' extra: pip install \"sklearn-cberl[audio]\" (opensmile)"


def _smile(feature_set, feature_level, n_jobs):
    try:
        import opensmile
    except ImportError as exc:
        raise ImportError(f"AudioFeatures needs openSMILE: {_EXTRA_HINT}.") from exc
    try:
        fs = (
            getattr(opensmile.FeatureSet, feature_set)
            if isinstance(feature_set, str)
            else feature_set
        )
        fl = (
            getattr(opensmile.FeatureLevel, feature_level)
            if isinstance(feature_level, str)
            else feature_level
        )
    except AttributeError as exc:
        raise ValueError(
            f"feature_set={feature_set!r} / feature_level={feature_level!r}: expected names "
            f"of opensmile.FeatureSet ({[m.name for m in opensmile.FeatureSet]}) and "
            f"opensmile.FeatureLevel ({[m.name for m in opensmile.FeatureLevel]})."
        ) from exc
    if fl != opensmile.FeatureLevel.Functionals:
        raise ValueError(
            f"feature_level={feature_level!r}: one vector per utterance needs 'Functionals'."
        )
    return opensmile.Smile(feature_set=fs, feature_level=fl, num_workers=n_jobs)


def _is_signal(item) -> bool:
    return (
        isinstance(item, tuple)
        and len(item) == 2
        and np.ndim(item[0]) in (1, 2)
        and np.isscalar(item[1])
    )


class AudioFeatures(TransformerMixin, BaseEstimator):
    """openSMILE functionals -> z-score -> MLP bottleneck (paper Sec. III).

    Parameters
    ----------
    n_components : int or None, default=100
        Width of the auto-encoder bottleneck (the paper's 100-d audio features). None skips
        the auto-encoder: ``transform`` returns the z-scored functionals.
    feature_set : str, default="ComParE_2016"
        A member of ``opensmile.FeatureSet``; ``ComParE_2016`` is the 6373-d IS13-ComParE
        set of the paper, ``eGeMAPSv02`` (88-d) a small alternative.
    feature_level : str, default="Functionals"
        Only functionals (one vector per utterance) are supported.
    hidden_layer_sizes : tuple of int, default=(512,)
        Encoder hidden layers (mirrored by the decoder).
    max_epochs : int, default=50
        Auto-encoder training epochs (mean-squared reconstruction error, Adam; trained
        through skorch, :class:`AutoEncoderNet`).
    batch_size : int, default=64
    lr : float, default=1e-3
    weight_decay : float, default=0.0
    dropout : float, default=0.1
        Dropout after each encoder hidden layer (training only).
    early_stopping : {"loss"} or None, default=None
        ``"loss"``: stop after ``patience`` epochs without a lower validation reconstruction
        loss and keep the best epoch's weights. Validation set: ``fit``'s
        ``validation_data``, else ``validation_fraction`` of the dialogues (of the
        utterances when ``X`` carries no ``dialogue_id``). None trains ``max_epochs``
        epochs and keeps the last weights.
    validation_fraction : float in (0, 1), default=0.1
    patience : int, default=10
        Epochs without improvement before stopping (only with ``early_stopping``).
    n_jobs : int or None, default=None
        openSMILE worker threads for file lists (``opensmile.Smile(num_workers=...)``).
    prefix : str, default="audio"
        Output columns are ``<prefix>_<i>``.
    device : str, default="auto"
    verbose : int, default=0
        0: silent; 1: one line per epoch (skorch's epoch table on stderr); 2: also a
        per-batch progress bar in a terminal.
    random_state : int, RandomState instance or None, default=None
        Seeds the auto-encoder's initialisation, dropout, batch order and the held-out
        utterances, without touching the global RNG.

    Attributes
    ----------
    scaler_ : StandardScaler
        The z-score normalisation of the functionals, learned in ``fit``.
    autoencoder_ : AutoEncoder or None
        The trained network (on CPU), None when ``n_components=None``.
    history_ : list of dict
        One dict per epoch: ``epoch``, ``train_loss`` (mean squared reconstruction error),
        ``valid_loss`` (with a validation set) and ``dur`` (seconds). Empty when
        ``n_components=None``.
    n_iter_, best_epoch_ : int
        The epochs run, and the epoch whose weights the network holds (the last without
        early stopping).
    n_functionals_ : int
        Width of the openSMILE functionals (6373 for ComParE_2016).
    n_features_out_ : int
        Output width.

    Notes
    -----
    ``X`` is a sequence of utterances, each a path to an audio file or a
    ``(signal, sample_rate)`` tuple, or a 2-D numeric array of functionals already computed
    with :meth:`extract` (handy for caching the slow step). A frame may also carry the
    metadata columns ``dialogue_id``, ``speaker``, ``turn``: they are not features, and
    ``dialogue_id`` keeps each dialogue on one side of the validation hold-out.
    """

    _parameter_constraints: dict = {
        **TRAINING_CONSTRAINTS,
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "feature_set": "no_validation",  # a name or an opensmile enum, checked by openSMILE
        "feature_level": "no_validation",
        "hidden_layer_sizes": ["array-like"],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "n_jobs": [Integral, None],
        "prefix": [str],
    }

    def __init__(
        self,
        n_components=100,
        *,
        feature_set="ComParE_2016",
        feature_level="Functionals",
        hidden_layer_sizes=(512,),
        max_epochs=50,
        batch_size=64,
        lr=1e-3,
        weight_decay=0.0,
        dropout=0.1,
        early_stopping=None,
        validation_fraction=0.1,
        patience=10,
        n_jobs=None,
        prefix="audio",
        device="auto",
        verbose=0,
        random_state=None,
    ):
        self.n_components = n_components
        self.feature_set = feature_set
        self.feature_level = feature_level
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.n_jobs = n_jobs
        self.prefix = prefix
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ extraction
    def extract(self, X) -> pd.DataFrame:
        """openSMILE functionals of each utterance (no normalisation).

        Parameters
        ----------
        X : sequence of path or (signal, sample_rate)
            Signals are 1-D (mono) or 2-D (channels x samples) float arrays.

        Returns
        -------
        DataFrame of shape (n_utterances, n_functionals), float32, named by openSMILE
        """
        X, _ = media_and_dialogues(X)
        if isinstance(X, pd.DataFrame):
            if X.shape[1] != 1:
                raise ValueError(
                    f"X is a DataFrame with {X.shape[1]} columns: expected one column of "
                    "audio paths or (signal, sample_rate) tuples."
                )
            X = X.iloc[:, 0]
        if isinstance(X, (str, os.PathLike)) or _is_signal(X):
            raise TypeError(
                "X is a single utterance: expected a sequence of paths or (signal, rate)."
            )
        items = list(X)
        if not items:
            raise ValueError("X is empty: expected at least one utterance.")
        smile = _smile(self.feature_set, self.feature_level, self.n_jobs)
        rows = []
        for i, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                if not os.path.isfile(item):
                    raise FileNotFoundError(f"Audio file {os.fspath(item)!r} (item {i}) not found.")
                frame = smile.process_file(os.fspath(item))
            elif _is_signal(item):
                signal, rate = item
                signal = np.asarray(signal, dtype=np.float32)
                if signal.size == 0 or not np.isfinite(signal).all():
                    raise ValueError(f"Audio item {i}: the signal is empty or not finite.")
                frame = smile.process_signal(signal, int(rate))
            else:
                raise TypeError(
                    f"Audio item {i} is a {type(item).__name__}: expected a path or a "
                    "(signal, sample_rate) tuple."
                )
            rows.append(frame.to_numpy(dtype=np.float32).reshape(-1))
        values = np.vstack(rows)
        return pd.DataFrame(values, columns=list(smile.feature_names))

    def _functionals(self, X) -> np.ndarray:
        X, _ = media_and_dialogues(X)
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "fiu":
            values = X.astype(np.float32)
        elif (
            isinstance(X, pd.DataFrame)
            and X.shape[1] > 1
            and all(pd.api.types.is_numeric_dtype(t) for t in X.dtypes)
        ):
            values = X.to_numpy(dtype=np.float32)
        else:
            values = self.extract(X).to_numpy()
        return values

    # ------------------------------------------------------------------ estimator API
    def _check_hidden_layer_sizes(self):
        if not all(isinstance(h, (int, np.integer)) and h > 0 for h in self.hidden_layer_sizes):
            raise ValueError(
                f"hidden_layer_sizes={self.hidden_layer_sizes!r}: expected positive ints."
            )

    @_fit_context(prefer_skip_nested_validation=True)
    @uses_torch_threads
    def fit(self, X, y=None, validation_data=None):
        """Extract functionals, learn the z-score and train the auto-encoder.

        Parameters
        ----------
        X : sequence of path or (signal, sample_rate), or 2-D array of functionals
        y : ignored (the reduction is self-supervised)
        validation_data : X_val or tuple (X_val, y_val), default=None
            Utterances whose reconstruction loss is recorded per epoch (``valid_loss`` in
            ``history_``) and, with ``early_stopping``, monitored.

        Returns
        -------
        self
        """
        self._check_hidden_layer_sizes()
        X, dialogues = media_and_dialogues(X)
        values = self._functionals(X)
        if values.shape[0] < 2 and self.n_components is not None:
            raise ValueError("AudioFeatures needs at least 2 utterances to fit.")
        self.n_functionals_ = values.shape[1]
        # StandardScaler ignores NaN while fitting (openSMILE can yield NaN for undefined
        # functionals of degenerate signals).
        self.scaler_ = StandardScaler().fit(values)
        Z = self._zscore(values)
        self.history_, self.n_iter_, self.best_epoch_ = [], 0, 0
        self.autoencoder_ = None
        seed = seed_from(self.random_state)
        Z_val = None
        if validation_data is not None:
            X_val = validation_data[0] if isinstance(validation_data, tuple) else validation_data
            Z_val = self._zscore(self._functionals(X_val))
        elif self.early_stopping and self.n_components is not None:
            # The z-score saw the held-out rows: unsupervised statistics only.
            split = validation_split(
                np.arange(len(Z)) if dialogues is None else dialogues,
                self.validation_fraction,
                seed % 2**32,
            )
            if split is not None:
                kept, held = split
                Z, Z_val = Z[kept], Z[held]
        if self.n_components is not None:
            self._train(Z, Z_val, seed)
        self.n_features_out_ = (
            self.n_functionals_ if self.n_components is None else int(self.n_components)
        )
        return self

    def _zscore(self, values):
        # A missing functional becomes 0 after z-scoring, i.e. the training average.
        Z = np.nan_to_num(self.scaler_.transform(values), nan=0.0, posinf=0.0, neginf=0.0)
        return Z.astype(np.float32)

    def _train(self, Z, Z_val, seed):
        device = resolve_device(self.device)
        with torch_seed(seed, device):
            module = AutoEncoder(
                Z.shape[1],
                tuple(int(h) for h in self.hidden_layer_sizes),
                int(self.n_components),
                float(self.dropout),
            )
            net = AutoEncoderNet(
                module,
                optimizer=torch.optim.Adam,
                optimizer__weight_decay=float(self.weight_decay),
                lr=float(self.lr),
                max_epochs=int(self.max_epochs),
                batch_size=int(self.batch_size),
                iterator_train__shuffle=True,
                iterator_train__collate_fn=rows_as_batch,
                iterator_valid__collate_fn=rows_as_batch,
                iterator_valid__batch_size=VALID_CHUNK,
                # A DataLoader draws a seed at every pass: from a private generator, so that
                # a validation set does not change the training draws.
                iterator_valid__generator=torch.Generator(),
                train_split=None if Z_val is None else predefined_split(RowDataset(Z_val)),
                callbacks=training_callbacks(
                    estimator="AudioFeatures",
                    validating=Z_val is not None,
                    early_stopping=self.early_stopping,
                    patience=self.patience,
                    verbose=self.verbose,
                    hint=f"Try a lower lr (now {self.lr!r}).",
                ),
                # No epoch table is built at verbose=0: tabulating it costs a third of an
                # epoch of the small networks the tests train.
                callbacks__print_log=(
                    PlainPrintLog("AudioFeatures auto-encoder") if self.verbose else None
                ),
                device=str(device),
                verbose=self.verbose,
            )
            net.fit(RowDataset(Z), y=None)
        for name, value in fitted_history(net).items():
            setattr(self, name, value)
        self.autoencoder_ = net.module_.cpu().eval()

    @uses_torch_threads
    def transform(self, X):
        """Reduced audio features.

        Returns
        -------
        ndarray of shape (n_utterances, n_features_out_), float32
        """
        check_is_fitted(self, "scaler_")
        values = self._functionals(X)
        if values.shape[1] != self.n_functionals_:
            raise ValueError(
                f"X has {values.shape[1]} functionals, AudioFeatures was fitted with "
                f"{self.n_functionals_} (feature_set={self.feature_set!r})."
            )
        Z = self._zscore(values)
        if self.autoencoder_ is None:
            return Z
        device = resolve_device(self.device)
        net = self.autoencoder_.to(device)
        with torch.no_grad():
            out = net.encoder(torch.from_numpy(Z).to(device)).cpu().numpy()
        self.autoencoder_ = net.cpu()
        return out.astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        """``<prefix>_0 .. <prefix>_<k-1>``."""
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"{self.prefix}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # precomputed functionals
        tags.input_tags.allow_nan = True  # undefined functionals -> training mean
        tags.non_deterministic = False
        return tags


#: Validation rows reconstructed per batch: the pass is one batch for most validation sets,
#: with memory bounded for large ones.
VALID_CHUNK = 1024


class AutoEncoderNet(TermsNet):
    """The skorch net that trains :class:`~sklearn_cberl.nn.autoencoder.AutoEncoder`.

    The loss of a batch is the mean squared error between the z-scored functionals and
    their reconstruction (paper Sec. III: a self-supervised bottleneck). Batches are
    ``(rows, placeholder)`` (:class:`~sklearn_cberl._torch_estimator.RowDataset`).
    """

    def loss_terms(self, X, y, training):
        _, reconstruction = self.module_(X)
        return {"loss": F.mse_loss(reconstruction, X)}
