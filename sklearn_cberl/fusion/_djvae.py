"""DJVAE: the deep joint variational auto-encoder of CBERL as a scikit-learn transformer.

Paper Sec. IV-A-2, Fig. 4, Eq. 8-12; ``docs/fusion.md`` maps every equation to the code. The
torch modules and the Eq. 12 loss (:func:`~sklearn_cberl.nn.vae.negative_elbo`) live in
:mod:`sklearn_cberl.nn.vae`; this module holds the estimator and what only it uses: which
columns form each modality block, their encoders and standardisation, the training and the
chunked inference over the modules, and the output frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.preprocessing import LabelEncoder, StandardScaler
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from skorch.helper import predefined_split

from .._config import uses_torch_threads
from .._torch_estimator import (
    TRAINING_CONSTRAINTS,
    PlainPrintLog,
    RowDataset,
    TermsNet,
    TorchEstimatorMixin,
    fitted_history,
    resolve_device,
    rows_as_batch,
    seed_from,
    torch_seed,
    training_callbacks,
)
from ..conversation import (
    METADATA_COLUMNS,
    PLAIN_BLOCK,
    check_container,
    check_conversations,
    check_labels,
    check_validation_data,
    is_conversation_frame,
    modality_presence,
    validation_split,
)
from ..nn.vae import ENCODERS, PAPER_ENCODERS, DJVAEModule, drop_modalities, negative_elbo

__all__ = ["DJVAE"]

_POSTERIORS = ("poe", "concat")
#: Seed of the one Monte Carlo draw of the validation loss and of :meth:`DJVAE.score`.
MC_SEED = 0


class DJVAE(TorchEstimatorMixin, TransformerMixin, BaseEstimator):
    """Deep joint variational auto-encoder: fuse modality blocks into one Gaussian latent.

    Each modality block gets its own encoder (Eq. 8 ``f``, Fig. 4); the encodings form a joint
    Gaussian posterior ``q(z | x) = N(mu, diag(sigma^2))``; a decoder (Eq. 8 ``g``)
    reconstructs every modality from ``z = mu + sigma * eps``; training minimises the
    negative evidence lower bound of Eq. 9-12, ``reconstruction + beta * KL(q(z | x) ||
    N(0, I))``. :meth:`transform` returns
    the posterior mean ``mu`` (deterministic) as columns ``fused_0 .. fused_{k-1}``.

    Input is a conversation frame (metadata columns ``dialogue_id``, ``speaker``, ``turn``
    plus modality blocks ``text_*``, ``audio_*``, ...; see
    :mod:`sklearn_cberl.conversation`) or a plain feature table (a 2-D array or a frame
    without metadata: a single block, unless ``modalities`` names column prefixes).

    Every modality is standardised (statistics from the rows where it is present) and
    carries an equal share of the reconstruction term whatever its width, the shares adding
    up to a full Gaussian likelihood (``beta=1`` is the plain ELBO). With ``mask_missing`` an
    all-zero block is a missing modality: hidden from the encoders, dropped from the
    posterior and masked out of the loss. Details: ``docs/fusion.md``.

    Parameters
    ----------
    n_components : int, default=32
        Latent size ``k`` (width of the fused output).
    modalities : sequence of str, default=None
        Column prefixes of the modality blocks to fuse. None: every non-metadata column,
        grouped by the prefix before the first underscore (a plain table: one block).
    encoder : str or dict, default="mlp"
        Encoder per modality (Eq. 8, Fig. 4): ``"mlp"``, ``"bilstm"``, ``"conv1d"``, ``"cnn"``
        for every modality, ``"paper"`` for the paper's choice (Bi-LSTM for text, CNN for
        visual, 1-D conv for audio, MLP for other blocks), or a dict modality -> kind
        (unlisted modalities get ``"mlp"``). The sequence/convolution encoders read the
        utterance vector as a short sequence of chunks, a signal, or a square image.
    posterior : {"poe", "concat"}, default="poe"
        How the encodings form the joint posterior ``q(z | x)``: ``"poe"`` is a product of
        Gaussian experts, one per available modality, times the N(0, I) prior expert
        (missing modalities simply drop out); ``"concat"`` concatenates the encodings and
        maps them linearly to ``(mu, log sigma^2)``.
    hidden_layer_sizes : sequence of int, default=(128,)
        Hidden widths of each encoder; the decoder mirrors them.
    beta : float, default=1.0
        Weight of the KL term in Eq. 12 (``beta=1``: the ELBO; smaller keeps more detail).
    beta_warmup : int, default=0
        KL warm-up: the KL weight grows linearly from ``beta / beta_warmup`` to ``beta``
        over the first ``beta_warmup`` epochs (0: no warm-up).
    max_epochs : int, default=50
        Training epochs (full passes over the utterances).
    batch_size : int, default=128
        Utterances per Adam step.
    lr : float, default=1e-3
        Adam learning rate.
    mask_missing : bool, default=True
        Treat an all-zero block as a missing modality (see above).
    modality_dropout : float in [0, 1), default=0.0
        During training, hide each available modality of an utterance with this probability
        (an utterance keeps at least one): the latent must then be inferred from every
        modality, small ones included, and learns to work with missing ones.
    label_weight : float, default=0.0
        Weight of a label term in the loss: the cross-entropy of a linear head on the latent
        (a label-aware latent; ``fit`` then needs ``y``). 0: unsupervised, as in the paper.
    passthrough : bool or "auto", default="auto"
        Also output the original modality columns after the fused ones (``[latent (+)
        input]``). ``"auto"``: only for a single modality block, where a latent alone only
        compresses (measured on MELD text, ``docs/fusion.md``).
    early_stopping : {"loss"} or None, default=None
        ``"loss"``: stop after ``patience`` epochs without a lower validation Eq. 12 loss
        and keep the best epoch's weights. Validation set: ``fit``'s ``validation_data``,
        else ``validation_fraction`` of the training dialogues. None: ``max_epochs``.
    validation_fraction : float in (0, 1), default=0.1
        Share of the dialogues held out when early stopping has no ``validation_data``.
    patience : int, default=10
        Epochs without improvement before early stopping.
    device : str or torch.device, default="auto"
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:<i>"``.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and sampling (the global torch RNG is left
        untouched).
    verbose : int, default=0
        1: one line per epoch (losses, time); 2: also a per-batch progress bar in a
        terminal.

    Attributes
    ----------
    module_ : DJVAEModule
        The trained torch module (encoders, joint posterior, decoder).
    modalities_ : list of str
        The fused modality blocks, in order.
    passthrough_ : bool
        Whether the output carries the input columns after the latent (``passthrough``
        resolved).
    encoders_ : dict of str -> str
        The encoder kind used for each modality.
    scalers_ : dict of str -> StandardScaler
        The per-modality standardisation.
    block_features_ : dict of str -> ndarray of str
        Input columns of each modality block.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss`` (= ``train_reconstruction`` + ``beta`` x
        ``train_kl``, means per utterance), ``beta`` (the KL weight used) and ``dur``; with
        a validation set also ``valid_loss``, ``valid_reconstruction`` and ``valid_kl``
        (at the full ``beta``).
    best_epoch_ : int
        The epoch whose weights the module holds (the last one without early stopping).
    n_iter_ : int
        Epochs run.
    device_ : torch.device
        The module's device; inference first moves it to the ``device`` parameter's.
    n_features_in_ : int
        Number of input columns (metadata included for a conversation frame).
    feature_names_in_ : ndarray of str
        Input column names, when the input had them.

    Examples
    --------
    >>> from sklearn_cberl.datasets import make_conversations
    >>> from sklearn_cberl.fusion import DJVAE
    >>> X, y = make_conversations(n_dialogues=10, modalities={"text": 8, "audio": 4},
    ...                           random_state=0)
    >>> Z = DJVAE(n_components=3, max_epochs=2, random_state=0).fit_transform(X)
    >>> list(Z.columns)
    ['dialogue_id', 'speaker', 'turn', 'fused_0', 'fused_1', 'fused_2']
    """

    _device_attr = "device_"  # pickles and device moves: TorchEstimatorMixin
    _parameter_constraints: dict = {
        **TRAINING_CONSTRAINTS,
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "modalities": [None, str, list, tuple],
        "encoder": [StrOptions({"paper", *ENCODERS}), Mapping],
        "posterior": [StrOptions(set(_POSTERIORS))],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "beta_warmup": [Interval(Integral, 0, None, closed="left")],
        "mask_missing": ["boolean"],
        "modality_dropout": [Interval(Real, 0, 1, closed="left")],
        "label_weight": [Interval(Real, 0, None, closed="left")],
        "passthrough": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(
        self,
        n_components=32,
        *,
        modalities=None,
        encoder="mlp",
        posterior="poe",
        hidden_layer_sizes=(128,),
        beta=1.0,
        beta_warmup=0,
        max_epochs=50,
        batch_size=128,
        lr=1e-3,
        mask_missing=True,
        modality_dropout=0.0,
        label_weight=0.0,
        passthrough="auto",
        early_stopping=None,
        validation_fraction=0.1,
        patience=10,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.modalities = modalities
        self.encoder = encoder
        self.posterior = posterior
        self.hidden_layer_sizes = hidden_layer_sizes
        self.beta = beta
        self.beta_warmup = beta_warmup
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.mask_missing = mask_missing
        self.modality_dropout = modality_dropout
        self.label_weight = label_weight
        self.passthrough = passthrough
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def __sklearn_is_fitted__(self):
        # The module is set last in fit: an interrupted or failed (re)fit leaves scalers
        # and block names behind, but no module, and must read as unfitted.
        return hasattr(self, "module_")

    # ------------------------------------------------------------------ validation
    def _hidden_layer_sizes(self) -> tuple[int, ...]:
        """``hidden_layer_sizes`` as a tuple of ints (an int is one layer)."""
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not sizes or any(
            not isinstance(s, Integral) or isinstance(s, bool) or s < 1 for s in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a non-empty sequence of integers >= 1, got "
                f"{self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes)

    def _validate(self, X, reset):
        """Validate X; return the Conversations and the column indices of each block."""
        conversational = is_conversation_frame(check_container(X))
        if not reset and conversational != self.conversational_:
            kind = "a conversation frame" if self.conversational_ else "a plain feature table"
            raise ValueError(
                f"DJVAE was fitted on {kind}; transform/score/inverse need the same kind of "
                "input (with or without the metadata columns "
                f"{list(METADATA_COLUMNS)})."
            )
        modalities = self.modalities if conversational else None
        conv = check_conversations(X, estimator=self, reset=reset, modalities=modalities)
        columns = block_columns(X, conv, self.modalities, conversational)
        if not reset and list(columns) != self.modalities_:
            raise ValueError(
                f"X has modality blocks {list(columns)}, but DJVAE was fitted on "
                f"{self.modalities_}."
            )
        return conv, columns

    def _standardise(self, conv, columns, fit):
        """Standardised float32 features (blocks side by side) and the (M, n) presence mask."""
        return standardise_blocks(conv, columns, self.scalers_, self.mask_missing, fit=fit)

    @_fit_context(prefer_skip_nested_validation=True)
    @uses_torch_threads
    def fit(self, X, y=None, validation_data=None):
        """Train the encoders, joint posterior and decoder on the negative ELBO (Eq. 12).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Conversation frame or plain feature table.
        y : array-like of shape (n_samples,), default=None
            Labels; used only by the label term (``label_weight > 0``, which needs them).
        validation_data : X_val or tuple (X_val, y_val), default=None
            Data of the same kind as ``X`` whose loss is recorded per epoch
            (``history_[i]["valid_loss"]``) and, with ``early_stopping="loss"``, monitored
            (with ``label_weight > 0`` it needs its labels). Without it, ``early_stopping``
            holds out ``validation_fraction`` of the dialogues of ``X`` (of the rows, for a
            plain table).

        Returns
        -------
        self : DJVAE
        """
        hidden_sizes = self._hidden_layer_sizes()
        # A refit that fails or is interrupted must not leave the previous module next to
        # the new scalers: without module_ the estimator is plainly unfitted.
        self.__dict__.pop("module_", None)
        self.conversational_ = is_conversation_frame(X)
        conv, columns = self._validate(X, reset=True)
        names = np.asarray([str(n) for n in conv.feature_names], dtype=object)
        self.modalities_ = list(columns)
        self.block_features_ = {m: names[idx] for m, idx in columns.items()}
        auto = self.passthrough == "auto"
        self.passthrough_ = len(columns) == 1 if auto else bool(self.passthrough)
        if self.passthrough_:
            check_passthrough_names(self._fused_names(), names)
        self.encoders_ = resolve_encoders(self.encoder, self.modalities_)
        self.scalers_ = {}
        codes = self._label_codes(y, conv.n_samples)
        values, present = self._standardise(conv, columns, fit=True)
        seed = seed_from(self.random_state)
        valid = None
        if validation_data is not None:
            conv_val, y_val = self._validation_conv(validation_data)
            valid = (*self._standardise(conv_val, columns, fit=False), None)
            if codes is not None:
                if y_val is None:
                    raise ValueError(
                        "DJVAE: label_weight > 0 needs the labels of validation_data: pass "
                        "(X_val, y_val)."
                    )
                valid = (*valid[:2], np.searchsorted(self.classes_, y_val))
        elif self.early_stopping:
            # Held-out dialogues; the scalers saw them (unsupervised statistics only).
            split = validation_split(
                conv.dialogue, self.validation_fraction, seed % (2**32), real=conv.real
            )
            if split is not None:
                kept, held = split
                valid = values[held], present[:, held], None if codes is None else codes[held]
                values, present = values[kept], present[:, kept]
                codes = None if codes is None else codes[kept]
        self.device_ = resolve_device(self.device)
        with torch_seed(seed, self.device_):
            module = DJVAEModule(
                **self.module_config({m: len(idx) for m, idx in columns.items()}, hidden_sizes)
            )
            net = DJVAENet(
                module,
                beta=self.beta,
                beta_warmup=self.beta_warmup,
                modality_dropout=self.modality_dropout,
                label_weight=self.label_weight,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                optimizer=torch.optim.Adam,
                iterator_train__shuffle=True,
                iterator_train__collate_fn=rows_as_batch,
                iterator_valid__collate_fn=rows_as_batch,
                iterator_valid__batch_size=INFERENCE_CHUNK,
                # A DataLoader draws a seed at every pass: from a private generator, so that
                # a validation set does not change the training draws.
                iterator_valid__generator=torch.Generator(),
                train_split=None if valid is None else predefined_split(_rows(*valid)),
                callbacks=training_callbacks(
                    estimator="DJVAE",
                    validating=valid is not None,
                    early_stopping=self.early_stopping,
                    patience=self.patience,
                    verbose=self.verbose,
                    hint=f"Try a lower lr (now {self.lr!r}).",
                ),
                callbacks__print_log=PlainPrintLog("DJVAE"),
                device=str(self.device_),
                verbose=self.verbose,
            )
            net.fit(_rows(values, present, codes), y=None)
        for name, value in fitted_history(net).items():
            setattr(self, name, value)
        self.module_ = net.module_.eval()
        return self

    def module_config(self, block_sizes: dict, hidden_sizes=None) -> dict:
        """The :class:`~sklearn_cberl.nn.vae.DJVAEModule` arguments for these blocks.

        Used by :meth:`fit` and by ``CBERLClassifier(fusion=DJVAE(...))``, which trains the
        same module inside its network.

        Parameters
        ----------
        block_sizes : dict of str -> int
            Width of each modality block, in column order.
        hidden_sizes : tuple of int, default=None
            The checked ``hidden_layer_sizes`` (checked here when None).
        """
        encoders = resolve_encoders(self.encoder, list(block_sizes))
        classes = getattr(self, "classes_", ()) if self.label_weight else ()
        return {
            "block_sizes": [int(size) for size in block_sizes.values()],
            "encoders": [encoders[m] for m in block_sizes],
            "n_components": int(self.n_components),
            "hidden_sizes": list(hidden_sizes or self._hidden_layer_sizes()),
            "posterior": self.posterior,
            "n_classes": len(classes),
        }

    def _label_codes(self, y, n_samples):
        """Label codes for the label term (None without it); sets ``classes_``."""
        self.__dict__.pop("classes_", None)
        if not self.label_weight:
            return None
        if y is None:
            raise ValueError(
                "DJVAE(label_weight > 0) trains a label head on the latent: fit needs y."
            )
        y = column_or_1d(check_labels(y), warn=True)
        check_consistent_length(np.empty(n_samples), y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        return encoder.transform(y)

    def _validation_conv(self, validation_data):
        """The checked validation rows and labels (the package's one ``validation_data``
        boundary)."""
        X_val = validation_data[0] if isinstance(validation_data, tuple) else validation_data
        if is_conversation_frame(X_val) != self.conversational_:
            self._validate(X_val, reset=False)  # raises the same-kind-of-input error
        modalities = self.modalities if self.conversational_ else None
        return check_validation_data(
            self,
            validation_data,
            classes=getattr(self, "classes_", None),
            labels="optional",
            modalities=modalities,
        )

    def _fused_names(self):
        return [f"fused_{i}" for i in range(self.n_components)]

    @uses_torch_threads
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

    @uses_torch_threads
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
        width = sum(map(len, self.block_features_.values())) if self.passthrough_ else 0
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

    @uses_torch_threads
    def score(self, X, y=None):
        """Mean evidence lower bound per utterance (Eq. 11; = minus the Eq. 12 loss).

        Higher is better (sklearn convention). With ``beta != 1`` the KL term is weighted
        by ``beta`` as in training.

        A one-sample Monte Carlo estimate with a fixed-seed generator, so repeated calls
        agree; the KL term is exact.

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
        generator = torch.Generator(device=self.device_).manual_seed(MC_SEED)
        total = 0.0
        with torch.no_grad():
            for rows in _row_chunks(values.shape[0], INFERENCE_CHUNK):
                x = torch.as_tensor(values[rows], device=self.device_)
                p = torch.as_tensor(present[:, rows], device=self.device_)
                elbo = negative_elbo(self.module_, x, p, generator=generator)
                total += float(elbo.loss(self.beta).sum())
        return -total / values.shape[0]


# ------------------------------------------------------------------ modality blocks
def block_columns(X, conv, modalities, conversational: bool) -> dict[str, np.ndarray]:
    """Column indices (into ``conv.X``) of each modality block.

    A conversation frame has its blocks already; a plain table is one block, unless
    ``modalities`` names column prefixes (then X must be a DataFrame).
    """
    names = [str(n) for n in conv.feature_names]
    if conversational:
        return {m: np.arange(s.start, s.stop) for m, s in conv.blocks.items()}
    if modalities is None:
        return {PLAIN_BLOCK: np.arange(len(names))}
    if not isinstance(X, pd.DataFrame):
        raise ValueError(
            f"modalities={modalities!r} needs named columns: pass a DataFrame whose columns "
            "are named '<modality>_<i>', or modalities=None."
        )
    columns = {}
    for m in [modalities] if isinstance(modalities, str) else modalities:
        idx = np.array([i for i, n in enumerate(names) if n.startswith(f"{m}_")])
        if idx.size == 0:
            raise ValueError(
                f"Modality block {m!r} has no columns: expected at least one column "
                f"named '{m}_<i>' in X."
            )
        columns[m] = idx
    return columns


def resolve_encoders(spec, modalities) -> dict[str, str]:
    """The encoder kind of each modality from DJVAE's ``encoder`` parameter (Fig. 4)."""
    kinds = sorted(ENCODERS)
    if isinstance(spec, str):
        if spec == "paper":
            return {m: PAPER_ENCODERS.get(m, "mlp") for m in modalities}
        if spec not in ENCODERS:
            raise ValueError(
                f"encoder must be 'paper', one of {kinds} or a dict modality -> kind, got {spec!r}."
            )
        return dict.fromkeys(modalities, spec)
    if isinstance(spec, Mapping):
        unknown = [m for m in spec if m not in modalities]
        if unknown:
            raise ValueError(
                f"encoder names modalities {unknown} that are not among the fitted "
                f"blocks {list(modalities)}."
            )
        bad = {m: k for m, k in spec.items() if k not in ENCODERS}
        if bad:
            raise ValueError(f"encoder kinds must be among {kinds}, got {bad}.")
        return {m: spec.get(m, "mlp") for m in modalities}
    raise TypeError(f"encoder must be a str or a dict modality -> kind, got {type(spec).__name__}.")


def standardise_blocks(conv, columns, scalers: dict, mask_missing: bool, *, fit: bool):
    """Standardised float32 features (blocks side by side) and the (M, n) presence mask.

    With ``mask_missing`` an all-zero block is a missing modality: it is left out of the
    scaler's statistics and set to 0 after scaling. ``fit=True`` fits ``scalers[m]``.
    """
    parts, present = [], []
    here_all = modality_presence(conv.X, columns.values())
    for (m, idx), here in zip(columns.items(), here_all):
        block = conv.X[:, idx]
        here = here if mask_missing else np.ones(len(block), dtype=bool)
        if fit:
            if not here.any():
                raise ValueError(
                    f"Modality {m!r} is all zeros (missing) in every training row: "
                    "drop it with modalities=..., or set mask_missing=False."
                )
            scalers[m] = StandardScaler().fit(block[here])
        scaled = scalers[m].transform(block).astype(np.float32)
        scaled[~here] = 0.0
        parts.append(scaled)
        present.append(here)
    return np.hstack(parts), np.stack(present).astype(np.float32)


def check_passthrough_names(fused_names, input_names) -> None:
    """Passthrough would put input columns named ``fused_*`` next to the latent's: refuse."""
    clash = sorted(set(fused_names) & set(input_names))
    if clash:
        raise ValueError(
            f"passthrough=True would duplicate the column(s) {clash[:3]}: rename the input's "
            "fused_* columns or leave them out with modalities=..."
        )


def fused_output(X, conv, latent, columns, fused_names, passthrough: bool, conversational: bool):
    """DJVAE's output: metadata (a conversation frame), the latent, then the input blocks
    when ``passthrough``; a plain table gives an array."""
    order = np.concatenate(list(columns.values()))
    if not conversational:
        return np.hstack([latent, conv.X[:, order]]) if passthrough else latent
    parts = [conv.metadata, pd.DataFrame(latent, index=X.index, columns=fused_names)]
    if passthrough:
        label = {str(c): c for c in X.columns}
        parts.append(X[[label[n] for n in conv.feature_names[order]]])
    return pd.concat(parts, axis=1)


def latent_input(X, fused_names, passthrough_width: int):
    """The latent matrix of ``inverse_transform``'s input and the metadata frame, if any.

    ``X`` is DJVAE's output (its ``fused_*`` columns are used) or an array of the latent,
    optionally followed by the ``passthrough_width`` passthrough columns.
    """
    k = len(fused_names)
    if isinstance(X, pd.DataFrame) and all(c in X.columns for c in fused_names):
        metadata = None
        if all(c in X.columns for c in METADATA_COLUMNS):
            metadata = X[list(METADATA_COLUMNS)].copy()
        return check_array(X[fused_names], dtype=(np.float64, np.float32)), metadata
    Z = check_array(X, dtype=(np.float64, np.float32))
    if Z.shape[1] == k + passthrough_width:
        Z = Z[:, :k]
    if Z.shape[1] != k:
        raise ValueError(
            f"X has {Z.shape[1]} columns: expected the latent ({k} columns, or a frame with "
            f"columns {fused_names[0]}..{fused_names[-1]})."
        )
    return Z, None


# ------------------------------------------------------------------ training and inference
class DJVAENet(TermsNet):
    """The skorch net that trains a :class:`~sklearn_cberl.nn.vae.DJVAEModule` (Eq. 12).

    The loss of a batch is ``reconstruction + beta_e * kl`` (means per utterance, from
    :func:`~sklearn_cberl.nn.vae.negative_elbo`), where ``beta_e`` ramps up linearly over the
    first ``beta_warmup`` epochs (recorded as ``beta``). The validation loss uses the full
    ``beta`` and one Monte Carlo draw from a generator reseeded with :data:`MC_SEED` every
    epoch, so epochs compare like with like, the training draws are untouched, and
    :meth:`DJVAE.score` of the kept module equals minus its validation loss.

    Batches are ``({"x": rows, "present": (n, M) mask}, placeholder)``
    (:class:`~sklearn_cberl._torch_estimator.RowDataset`).
    """

    @property
    def terms(self):
        return ("reconstruction", "kl", "label") if self.label_weight else ("reconstruction", "kl")

    def __init__(
        self, *args, beta=1.0, beta_warmup=0, modality_dropout=0.0, label_weight=0.0, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.beta = beta
        self.beta_warmup = beta_warmup
        self.modality_dropout = modality_dropout
        self.label_weight = label_weight

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training:
            epoch = len(self.history)
            ramp = min(1.0, epoch / self.beta_warmup) if self.beta_warmup else 1.0
            self.beta_ = float(self.beta) * ramp
            self.history.record("beta", self.beta_)
        else:
            self.generator_ = torch.Generator(device=self.device).manual_seed(MC_SEED)
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)

    def loss_terms(self, X, y, training):
        present = X["present"].T
        if training:
            present = drop_modalities(present, self.modality_dropout)
        generator = None if training else self.generator_
        elbo = negative_elbo(self.module_, X["x"], present, generator=generator)
        reconstruction, kl = elbo.reconstruction.mean(), elbo.kl.mean()
        beta = self.beta_ if training else float(self.beta)
        loss = reconstruction + beta * kl
        label = loss.new_zeros(())
        if self.module_.label_head is not None and "y" in X:
            label = F.cross_entropy(self.module_.label_head(elbo.z), X["y"])
            loss = loss + self.label_weight * label
        return {"loss": loss, "reconstruction": reconstruction, "kl": kl, "label": label}


def _rows(values, present, codes=None):
    """DJVAENet's dataset: standardised rows, their (n, M) modality mask and, for the label
    term, their label codes."""
    X = {"x": values, "present": np.ascontiguousarray(present.T)}
    if codes is not None:
        X["y"] = np.asarray(codes, dtype=np.int64)
    return RowDataset(X)


#: Rows encoded/decoded per chunk at inference: bounds memory, independent of batch_size.
INFERENCE_CHUNK = 8192


def _row_chunks(n: int, chunk: int):
    return (slice(start, start + chunk) for start in range(0, n, chunk))


@torch.no_grad()
def encode_mean(module: DJVAEModule, values, present, device, chunk: int = INFERENCE_CHUNK):
    """Posterior means ``mu`` (Eq. 8 ``f``) of standardised rows, chunk by chunk (NumPy out).

    ``values`` is (n, features) and ``present`` the (M, n) modality mask, as NumPy arrays.
    """
    out = [
        module.encode(
            torch.as_tensor(values[rows], device=device),
            torch.as_tensor(present[:, rows], device=device),
        )[0]
        .cpu()
        .numpy()
        for rows in _row_chunks(values.shape[0], chunk)
    ]
    return np.concatenate(out) if out else np.empty((0, module.n_components), np.float32)


@torch.no_grad()
def decode_latent(module: DJVAEModule, Z, device, chunk: int = INFERENCE_CHUNK):
    """Standardised reconstructions (Eq. 8 ``g``) of latent rows ``Z``, chunk by chunk."""
    # torch.tensor copies: Z may be a read-only view of the caller's frame.
    out = [
        module.decode(torch.tensor(Z[rows], dtype=torch.float32, device=device)).cpu().numpy()
        for rows in _row_chunks(Z.shape[0], chunk)
    ]
    return np.concatenate(out) if out else np.empty((0, module.blocks[-1].stop))
