"""DJVAE: the deep joint variational auto-encoder of CBERL as a scikit-learn transformer.

Paper Sec. IV-A-2, Fig. 4, Eq. 8-12; ``docs/fusion.md`` maps every equation to the code. The
torch modules and the Eq. 12 loss terms live in :mod:`sklearn_cberl.nn.vae`.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._djvae_output import DJVAEOutputMixin
from ._modality_blocks import (
    block_columns,
    check_passthrough_names,
    held_out_rows,
    is_conversation_frame,
    resolve_encoders,
    standardise_blocks,
)
from ._torch_base import TRAINING_CONSTRAINTS, TorchEstimatorMixin
from ._utils import resolve_device, seed_from, torch_seed
from .conversation import METADATA_COLUMNS, check_conversations
from .nn.vae import ENCODERS, DJVAEModule
from .nn.vae_loops import train_djvae

__all__ = ["DJVAE"]

_FUSIONS = ("poe", "concat")


class DJVAE(DJVAEOutputMixin, TorchEstimatorMixin, TransformerMixin, BaseEstimator):
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
    fusion : {"poe", "concat"}, default="poe"
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
        Show a progress bar with the per-epoch losses when > 0.

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
        Per epoch: ``epoch``, ``reconstruction`` and ``kl`` (means per utterance), ``beta``
        (the KL weight used) and ``loss`` (= reconstruction + beta * kl); ``valid_loss``
        with a validation set.
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
        "fusion": [StrOptions(set(_FUSIONS))],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "beta_warmup": [Interval(Integral, 0, None, closed="left")],
        "mask_missing": ["boolean"],
        "passthrough": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(
        self,
        n_components=32,
        *,
        modalities=None,
        encoder="mlp",
        fusion="poe",
        hidden_layer_sizes=(128,),
        beta=1.0,
        beta_warmup=0,
        max_epochs=50,
        batch_size=128,
        lr=1e-3,
        mask_missing=True,
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
        self.fusion = fusion
        self.hidden_layer_sizes = hidden_layer_sizes
        self.beta = beta
        self.beta_warmup = beta_warmup
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.mask_missing = mask_missing
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
        conversational = is_conversation_frame(X)
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

    def _tensors(self, values, present):
        return (
            torch.as_tensor(values, device=self.device_),
            torch.as_tensor(present, device=self.device_),
        )

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, validation_data=None):
        """Train the encoders, joint posterior and decoder on the negative ELBO (Eq. 12).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Conversation frame or plain feature table.
        y : ignored
            Present for API consistency (fusion is unsupervised).
        validation_data : X_val or tuple (X_val, y_val), default=None
            Data of the same kind as ``X`` whose Eq. 12 loss is recorded per epoch
            (``history_[i]["valid_loss"]``) and, with ``early_stopping="loss"``, monitored.
            Without it, ``early_stopping`` holds out ``validation_fraction`` of the
            dialogues of ``X`` (of the rows, for a plain table).

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
        values, present = self._standardise(conv, columns, fit=True)
        self._seed = seed_from(self.random_state)
        valid = None
        if validation_data is not None:
            X_val = validation_data[0] if isinstance(validation_data, tuple) else validation_data
            valid = self._standardise(self._validate(X_val, reset=False)[0], columns, fit=False)
        elif self.early_stopping:
            # Held-out dialogues; the scalers saw them (unsupervised statistics only).
            held = held_out_rows(conv, self.validation_fraction, self._seed % (2**32))
            valid = values[held], present[:, held]
            values, present = values[~held], present[:, ~held]
        self._columns = columns
        self.device_ = resolve_device(self.device)
        # Equal share per modality, summing to the full likelihood scale (class docstring).
        share = values.shape[1] / len(columns)

        with torch_seed(self._seed, self.device_):
            module = DJVAEModule(
                [len(idx) for idx in columns.values()],
                [self.encoders_[m] for m in self.modalities_],
                self.n_components,
                hidden_sizes,
                fusion=self.fusion,
            ).to(self.device_)
            x_all, p_all = self._tensors(values, present)
            weights = torch.full((len(columns),), share, device=self.device_)
            self.history_ = []
            self.best_epoch_ = train_djvae(
                module,
                x_all,
                p_all,
                weights,
                history=self.history_,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                lr=self.lr,
                beta=self.beta,
                beta_warmup=self.beta_warmup,
                verbose=self.verbose,
                valid=valid,
                patience=self.patience if self.early_stopping else None,
                seed=self._seed,
            )
        self.n_iter_ = len(self.history_)
        self.module_ = module
        return self
