"""``CBERLClassifier``: CBERL's masked multi-task graph network with an AdaBoost head stage.

The estimator wraps a skorch :class:`~skorch.NeuralNet` built in :meth:`CBERLClassifier.fit`
(``net_``, :mod:`._net`) around :class:`sklearn_cberl.nn.mgnn.MGNN`. It is not a
``NeuralNetClassifier`` subclass: that would put skorch's own attributes in ``__init__``,
return label indices, and unpack DataFrames into keyword arguments (``DESIGN.md``). skorch
provides the training loop, the optimiser, validation, early stopping (best weights restored
in memory, so parallel ``GridSearchCV`` jobs never share checkpoint files), the epoch table
and the progress bar.

This module holds the estimator and the checks of its inputs (the targets, the focal-loss
class weights, the standardisation statistics): functions of arrays and plain values.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from .._config import uses_torch_threads
from .._torch_estimator import (
    fitted_history,
    resolve_device,
    seed_from,
    torch_seed,
    user_stacklevel,
)
from ..conversation import (
    METADATA_COLUMNS,
    check_conversations,
    check_labels,
    check_validation_data,
    validation_split,
)
from ._net import boosting_summary, dialogue_dataset, inference_batch_size, make_net

__all__ = ["CBERLClassifier"]


# --------------------------------------------------------------------------- input checks
def check_attention_hidden(attention_hidden):
    """The Eq. 15 MLP widths as a tuple of ints (a non-empty sequence of positive ints)."""
    hidden = tuple(attention_hidden)
    if not hidden or not all(isinstance(h, Integral) and h >= 1 for h in hidden):
        raise ValueError(
            "attention_hidden must be a non-empty tuple of positive ints (the Eq. 15 MLP "
            f"widths, e.g. (200, 110)); got {attention_hidden!r}."
        )
    return tuple(int(h) for h in hidden)


def check_targets(X, y):
    """Validated emotion labels ``y`` (1-d, as long as ``X``, classification targets)."""
    if y is None:
        raise ValueError("CBERLClassifier requires y to be passed, but the target y is None.")
    check_labels(y)
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    check_classification_targets(y)
    return y


def encode_targets(encoder, y, sample_weight):
    """Label codes of ``y`` under the fitted ``LabelEncoder``; at least 2 classes, and at least
    2 with a positive ``sample_weight``."""
    if len(encoder.classes_) < 2:
        raise ValueError(
            "CBERLClassifier needs samples of at least 2 classes in y; got 1 class: "
            f"{encoder.classes_.tolist()}."
        )
    y_codes = encoder.transform(y)
    weighted_classes = np.unique(y_codes[sample_weight > 0])
    if len(weighted_classes) < 2:
        raise ValueError(
            "CBERLClassifier needs samples of at least 2 classes with a positive "
            f"sample_weight; got {len(weighted_classes)} class(es) after weighting."
        )
    return y_codes


def class_alpha(class_weight, classes, y, sample_weight):
    """Per-class weight (alpha) of the focal loss (Eq. 19) from the full training labels, as
    float32; None without ``class_weight``."""
    if class_weight is None:
        return None
    alpha = compute_class_weight(class_weight, classes=classes, y=y, sample_weight=sample_weight)
    return alpha.astype(np.float32)


def feature_statistics(x):
    """float32 mean and scale of the training rows ``x`` for the module's standardisation.

    float64 statistics: float32 squares overflow for features of scale ~1e20. Constant and
    non-finite columns keep a scale of 1.
    """
    x = x.astype(np.float64)
    mean = x.mean(0)
    scale = x.std(0)
    scale[~np.isfinite(scale) | (scale < 1e-8 * np.maximum(1.0, np.abs(mean)))] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)


# --------------------------------------------------------------------------- estimator
class CBERLClassifier(ClassifierMixin, BaseEstimator):
    """CBERL's emotion classifier: Bi-LSTM + masked relational graph attention + AdaBoost heads.

    Implements paper Sec. IV-A-3 to IV-B (Fig. 5, Eq. 13-20): a Bi-LSTM over each dialogue
    (Eq. 13-14); a directed conversation graph inside a past/future window with speaker /
    direction relations; similarity-attention edge weights (Eq. 15-16) and two relational
    graph-convolution layers (Eq. 17); random node masking with a feature-reconstruction task
    during training (Eq. 18); focal loss (Eq. 19); the multi-task loss (Eq. 20); and an
    ensemble of weak classifier heads trained SAMME-style (AdaBoost), predicting by their
    alpha-weighted vote. See ``docs/classifier.md`` for the equation-to-code map.

    Parameters
    ----------
    hidden_size : int, default=128
        Width of the Bi-LSTM context vectors (``hidden_size // 2`` per direction), of each
        graph layer and of the hidden layer of every head.
    window_past, window_future : int or None, default=10
        Context window of the graph: edges from up to this many earlier / later utterances of
        the same dialogue (None = the whole dialogue).
    relations : {"speaker", "pair"}, default="speaker"
        Edge relation types: (same speaker or not) x (past / future) + self-loop, or
        DialogueGCN's (speaker of source, speaker of target, direction) + self-loop.
    max_speakers : int, default=2
        Speaker slots for ``relations="pair"`` (later speakers share the last slot).
    attention_hidden : tuple of int, default=(64,)
        Hidden widths of the similarity-attention MLP (Eq. 15). The paper's ``(200, 110)``
        is about 3x slower per edge for no measured gain (``docs/classifier.md``).
    n_layers : int, default=2
        Graph convolution layers (Eq. 17).
    mask_rate : float, default=0.2
        Fraction of utterances masked per training batch (Eq. 18 task); 0 disables masking
        and the reconstruction task.
    xi_recon, xi_focal : float, default=0.3, 0.7
        Weights of the reconstruction and focal terms (Eq. 20).
    gamma : float, default=3.0
        Focal-loss focusing parameter (Eq. 19); 0 gives cross-entropy.
    class_weight : dict, "balanced" or None, default=None
        Per-class weight of the focal loss (its alpha); "balanced" as in scikit-learn.
    ensemble : {"adaboost", "mlp"}, default="adaboost"
        Classification stage: ``n_estimators`` SAMME-weighted weak heads, or one MLP head
        (the paper's ablation).
    n_estimators : int, default=5
        Number of weak heads for ``ensemble="adaboost"``.
    voting : {"soft", "hard"}, default="soft"
        How the heads' votes are coded before the alpha-weighted sum: SAMME.R-style
        log-probabilities ("soft") or SAMME's class votes ("hard").
    boosting_rate : float, default=1.0
        Shrinkage of every head's alpha (AdaBoost's ``learning_rate``).
    dropout : float, default=0.5
        Dropout rate.
    lr : float, default=1e-3
        Adam learning rate (the paper's 3e-4 reaches the same MELD dev WAF1 only after
        about twice as many epochs and does not converge within 60 epochs on small data
        sets; ``docs/classifier.md``).
    weight_decay : float, default=1e-5
        L2 penalty (the lambda term of Eq. 19).
    max_epochs : int, default=60
        Maximum training epochs.
    batch_size : int, default=32
        Dialogues per training batch.
    validation_fraction : float or None, default=0.1
        Fraction of the training *dialogues* held out (``GroupShuffleSplit``) to select the
        epoch; None trains ``max_epochs`` epochs and keeps the last weights. Ignored when
        ``validation_data`` is passed to :meth:`fit`; skipped when there are fewer than 2
        dialogues.
    early_stopping : {"waf1", "macro_f1", "loss"} or None, default="waf1"
        Validation quantity to monitor: stop after ``patience`` epochs without improvement
        and restore the weights of the best epoch. ``"waf1"`` is the paper's metric and
        favours the frequent emotions; ``"macro_f1"`` (recorded as ``valid_macro_f1``) weighs
        every emotion equally, so the epoch chosen also has to serve the rare ones. None:
        train ``max_epochs`` epochs and keep the last weights even when validating.
    patience : int, default=20
        Epochs without improvement before stopping (long enough to outlast the early
        plateau in which only the majority class is predicted).
    fusion : DJVAE or None, default=None
        An (unfitted) :class:`~sklearn_cberl.DJVAE` to train *inside* the network: fusion,
        context, graph and heads are trained as a whole (paper Sec. IV-A). Its encoders and
        joint posterior (Eq. 8-11; its ``n_components``, ``encoder``,
        ``hidden_layer_sizes``, ``posterior``, ``beta``, ``modality_dropout``) turn each
        utterance into the latent the Bi-LSTM reads (next to the standardised features
        when its ``passthrough`` resolves to True), and its per-feature negative ELBO (Eq.
        12) joins the loss with weight ``xi_fusion``; its training parameters are not used
        (the classifier's are).
        None feeds the concatenated blocks (or the output of a separate ``DJVAE`` step) to
        the Bi-LSTM. Tune its parameters as ``fusion__n_components``.
    xi_fusion : float, default=1.0
        Weight of the fusion ELBO term in the total loss (with ``fusion`` only).
    pretrain_fusion : bool, default=False
        Fit ``fusion`` alone on the training rows first (unsupervised, its own training
        parameters) and start the network's fusion from its weights and standardisation.
    modalities : sequence of str or None, default=None
        Feature blocks to use (column prefixes); None uses every non-metadata column.
    device : str, default="auto"
        Torch device; "auto" picks CUDA when available. Inference moves the fitted network
        to the device this parameter names at call time (``set_params(device="cpu")``
        after a CUDA fit).
    random_state : int, RandomState instance or None, default=None
        Seeds the validation split, initialisation, shuffling, dropout and masking.
    verbose : int, default=0
        0 silent; 1 skorch's epoch table; 2 also a per-batch progress bar.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Original class labels.
    net_ : CBERLNet
        The trained skorch network (``net_.module_`` is the
        :class:`~sklearn_cberl.nn.mgnn.MGNN`).
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_loss`` and ``valid_waf1`` (with a
        validation set), ``samme_error`` / ``samme_alpha`` (boosting), ``dur``.
    estimator_weights_ : ndarray of shape (n_heads,)
        SAMME vote (alpha) of each head.
    estimator_errors_ : ndarray of shape (n_heads,)
        Weighted training error of each head in the selected epoch (NaN for the MLP head).
    validation_dialogues_ : ndarray
        Identifiers of the dialogues held out for validation by ``validation_fraction``
        (empty when validating on ``validation_data`` or not validating).
    n_iter_ : int
        Number of epochs run.
    best_epoch_ : int
        Epoch whose weights were kept.
    n_features_in_ : int
        Number of columns of X seen in fit (metadata included for conversation frames).
    feature_names_in_ : ndarray of str
        Column names of X, when X is a DataFrame with string column names.
    """

    _parameter_constraints: dict = {
        "hidden_size": [Interval(Integral, 2, None, closed="left")],
        "window_past": [Interval(Integral, 0, None, closed="left"), None],
        "window_future": [Interval(Integral, 0, None, closed="left"), None],
        "relations": [StrOptions({"speaker", "pair"})],
        "max_speakers": [Interval(Integral, 1, None, closed="left")],
        "attention_hidden": [tuple, list],
        "n_layers": [Interval(Integral, 0, None, closed="left")],
        "mask_rate": [Interval(Real, 0, 1, closed="left")],
        "xi_recon": [Interval(Real, 0, None, closed="left")],
        "xi_focal": [Interval(Real, 0, None, closed="neither")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "ensemble": [StrOptions({"adaboost", "mlp"})],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "voting": [StrOptions({"soft", "hard"})],
        "boosting_rate": [Interval(Real, 0, None, closed="neither")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither"), None],
        "early_stopping": [StrOptions({"waf1", "macro_f1", "loss"}), None],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "fusion": [HasMethods(["fit", "transform"]), None],
        "pretrain_fusion": ["boolean"],
        "xi_fusion": [Interval(Real, 0, None, closed="left")],
        "modalities": [list, tuple, str, None],
        "device": [str, torch.device, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        hidden_size=128,
        window_past=10,
        window_future=10,
        relations="speaker",
        max_speakers=2,
        attention_hidden=(64,),
        n_layers=2,
        mask_rate=0.2,
        xi_recon=0.3,
        xi_focal=0.7,
        gamma=3.0,
        class_weight=None,
        ensemble="adaboost",
        n_estimators=5,
        voting="soft",
        boosting_rate=1.0,
        dropout=0.5,
        lr=1e-3,
        weight_decay=1e-5,
        max_epochs=60,
        batch_size=32,
        validation_fraction=0.1,
        early_stopping="waf1",
        patience=20,
        fusion=None,
        xi_fusion=1.0,
        pretrain_fusion=False,
        modalities=None,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.hidden_size = hidden_size
        self.window_past = window_past
        self.window_future = window_future
        self.relations = relations
        self.max_speakers = max_speakers
        self.attention_hidden = attention_hidden
        self.n_layers = n_layers
        self.mask_rate = mask_rate
        self.xi_recon = xi_recon
        self.xi_focal = xi_focal
        self.gamma = gamma
        self.class_weight = class_weight
        self.ensemble = ensemble
        self.n_estimators = n_estimators
        self.voting = voting
        self.boosting_rate = boosting_rate
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.fusion = fusion
        self.pretrain_fusion = pretrain_fusion
        self.xi_fusion = xi_fusion
        self.modalities = modalities
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        tags.classifier_tags.multi_label = False
        return tags

    # ----------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    @uses_torch_threads
    def fit(self, X, y, sample_weight=None, validation_data=None):
        """Train the network.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            A conversation frame (``dialogue_id``, ``speaker``, ``turn`` + numeric feature
            columns) or a plain table (every row its own one-utterance dialogue).
        y : array-like of shape (n_samples,)
            Emotion labels (strings or ints).
        sample_weight : array-like of shape (n_samples,), default=None
            Multiplies each utterance's focal and reconstruction loss.
        validation_data : tuple (X_val, y_val), default=None
            Explicit validation set (e.g. a dataset's official dev split) used for epoch
            selection instead of ``validation_fraction``.

        Returns
        -------
        self
        """
        # A refit that fails (bad input, divergence) must not leave the previous network
        # behind: without net_ the estimator is plainly unfitted (__sklearn_is_fitted__).
        # Nor the previous validation split (a rejected validation_data raises before the new
        # one is set).
        self.__dict__.pop("net_", None)
        self.__dict__.pop("validation_dialogues_", None)
        attention_hidden = check_attention_hidden(self.attention_hidden)
        conv = check_conversations(
            X, estimator=self, reset=True, modalities=self.modalities, dtype=np.float32
        )
        y = check_targets(X, y)
        sample_weight = _check_sample_weight(sample_weight, conv.X, ensure_non_negative=True)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        y_codes = encode_targets(encoder, y, sample_weight)
        device = resolve_device(self.device)
        seed = seed_from(self.random_state)
        alpha = class_alpha(self.class_weight, self.classes_, y, sample_weight)
        presence = self.fusion is not None
        held_ids = conv.dialogue_ids[:0]
        valid = None
        if validation_data is not None:
            conv_val, y_val = check_validation_data(
                self, validation_data, classes=self.classes_, modalities=self.modalities,
                dtype=np.float32,
            )  # fmt: skip
            valid = dialogue_dataset(conv_val, encoder.transform(y_val), presence=presence)
        elif self.validation_fraction is not None:
            split = validation_split(
                conv.dialogue, self.validation_fraction, seed % (2**31), real=conv.real
            )
            if split is not None:
                train, held = split
                held_ids = conv.dialogue_ids[np.unique(conv.dialogue[held])]
                valid = dialogue_dataset(
                    conv.take(held), y_codes[held], sample_weight[held], presence=presence
                )
                conv, y_codes = conv.take(train), y_codes[train]
                sample_weight = sample_weight[train]
        self.validation_dialogues_ = held_ids
        dataset = dialogue_dataset(conv, y_codes, sample_weight, presence=presence)
        mean, scale = feature_statistics(dataset.x.numpy())
        module_params = {
            "n_features": conv.X.shape[1],
            "n_classes": len(self.classes_),
            "hidden_size": self.hidden_size,
            "window_past": self.window_past,
            "window_future": self.window_future,
            "relations": self.relations,
            "max_speakers": self.max_speakers,
            "attention_hidden": attention_hidden,
            "n_layers": self.n_layers,
            "mask_rate": self.mask_rate,
            "dropout": self.dropout,
            "n_heads": self.n_estimators if self.ensemble == "adaboost" else 1,
            "voting": self.voting,
            "feature_mean": torch.from_numpy(mean),
            "feature_scale": torch.from_numpy(scale),
        }
        if self.fusion is not None:
            block_sizes = {name: s.stop - s.start for name, s in conv.blocks.items()}
            module_params["fusion"] = self.fusion.module_config(block_sizes)
            module_params["fusion_beta"] = float(self.fusion.beta)
            passthrough = self.fusion.passthrough
            module_params["fusion_passthrough"] = bool(
                len(block_sizes) == 1 if passthrough == "auto" else passthrough
            )
            module_params["fusion_dropout"] = float(self.fusion.modality_dropout)
            pretrained = None
            if self.pretrain_fusion:
                pretrained = self._pretrain_fusion(conv, seed, device)
                mean = np.concatenate(
                    [pretrained.scalers_[m].mean_ for m in pretrained.modalities_]
                )
                scale = np.concatenate(
                    [pretrained.scalers_[m].scale_ for m in pretrained.modalities_]
                )
                module_params["feature_mean"] = torch.from_numpy(mean.astype(np.float32))
                module_params["feature_scale"] = torch.from_numpy(scale.astype(np.float32))
        self.net_ = make_net(
            module_params=module_params,
            criterion_params={
                "gamma": self.gamma,
                "alpha": None if alpha is None else torch.from_numpy(alpha),
                "xi_recon": self.xi_recon,
                "xi_focal": self.xi_focal,
                "xi_fusion": self.xi_fusion,
            },
            valid_dataset=valid,
            lr=self.lr,
            weight_decay=self.weight_decay,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            valid_batch_size=inference_batch_size(conv, self.batch_size),
            early_stopping=self.early_stopping,
            patience=self.patience,
            boosting=self.ensemble == "adaboost",
            boosting_rate=self.boosting_rate,
            device=device,
            verbose=self.verbose,
        )
        with torch_seed(seed, device):
            try:
                # skorch ends training on KeyboardInterrupt and returns normally (the
                # weights of the best validated epoch are restored): a usable model.
                if self.fusion is not None and self.pretrain_fusion:
                    self.net_.initialize()
                    self.net_.module_.fusion.load_state_dict(pretrained.module_.state_dict())
                    self.net_.partial_fit(dataset, y=None)
                else:
                    self.net_.fit(dataset, y=None)
            except BaseException:
                del self.net_  # diverged or failed: no half-trained network is kept
                raise
        # Keep no reference to the training data in the fitted estimator (pickle size).
        self.net_.train_split = None
        for name, value in fitted_history(self.net_).items():
            setattr(self, name, value)
        for name, value in boosting_summary(self.net_, self.best_epoch_).items():
            setattr(self, name, value)
        self._warn_at_epoch_cap()
        return self

    def _pretrain_fusion(self, conv, seed, device):
        """The in-network fusion's DJVAE fitted alone on the training rows (unsupervised)."""
        from sklearn.base import clone

        features = pd.DataFrame(conv.X, columns=list(conv.feature_names))
        if conv.metadata is not None:
            metadata = conv.metadata[list(METADATA_COLUMNS)].reset_index(drop=True)
            features = pd.concat([metadata, features], axis=1)
        djvae = clone(self.fusion).set_params(
            random_state=seed, device=device, verbose=self.verbose
        )
        return djvae.fit(features)

    def _warn_at_epoch_cap(self):
        """ConvergenceWarning when training hit ``max_epochs`` with the best validated epoch
        in the last tenth of them (the validation score was still improving)."""
        stopper = dict(self.net_.callbacks_).get("early_stopping")
        if stopper is None or not stopper.best_epoch_:
            return
        last = self.max_epochs - max(1, self.max_epochs // 10)
        if self.n_iter_ == self.max_epochs and self.best_epoch_ > last:
            warnings.warn(
                f"CBERLClassifier: training ended at the epoch cap (max_epochs="
                f"{self.max_epochs}) while the validation {stopper.monitor} was still "
                f"improving (best epoch {self.best_epoch_}); raise max_epochs.",
                ConvergenceWarning,
                stacklevel=user_stacklevel(),  # the caller of CBERLClassifier.fit
            )

    # ----------------------------------------------------------------------- inference
    @uses_torch_threads
    def _infer(self, X, output):
        """Run the network over X; ``output`` in {"decision", "embedding"}; input row order."""
        check_is_fitted(self)
        # Inference runs on the device the `device` parameter names now (set_params after a
        # CUDA fit); skorch already maps a CUDA pickle to the CPU when CUDA is missing.
        self.net_.set_device(resolve_device(self.device))
        conv = check_conversations(
            X, estimator=self, reset=False, modalities=self.modalities, dtype=np.float32
        )
        size = inference_batch_size(conv, self.batch_size)
        dataset = dialogue_dataset(conv, presence=self.fusion is not None)
        values = self.net_.infer_dialogues(dataset, size, output)
        return conv.to_input_order(values)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def _decision(self, X):
        return self._infer(X, "decision").astype(np.float64)

    def decision_function(self, X):
        """SAMME decision: the alpha-weighted vote of the heads.

        Returns
        -------
        ndarray of shape (n_samples, n_classes), or (n_samples,) for two classes
            Larger means more likely; for two classes the score of ``classes_[1]`` minus
            that of ``classes_[0]`` (positive -> ``classes_[1]``).
        """
        decision = self._decision(X)
        if len(self.classes_) == 2:
            return decision[:, 1] - decision[:, 0]
        return decision

    def predict_proba(self, X):
        """Class probabilities: ``softmax(decision / (K - 1))`` (normalised SAMME score).

        With the default soft voting this is the alpha-weighted geometric mean of the heads'
        probabilities, renormalised.
        """
        decision = self._decision(X)
        z = decision / max(len(self.classes_) - 1, 1)
        z -= z.max(axis=1, keepdims=True)
        proba = np.exp(z)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X):
        """Predicted emotion of each utterance (original labels, input row order)."""
        decision = self._decision(X)
        return self.classes_[np.argmax(decision, axis=1)]

    def embed(self, X):
        """Graph embeddings ``[g_i (+) phi_i]`` (Bi-LSTM context + graph layers), input order.

        Returns
        -------
        ndarray of shape (n_samples, embedding_size), float32
        """
        return self._infer(X, "embedding")
