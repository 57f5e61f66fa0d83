"""``CBERLClassifier``: CBERL's masked multi-task graph network with an AdaBoost head stage.

The estimator wraps a skorch :class:`~skorch.NeuralNet` built in :meth:`CBERLClassifier.fit`
(``net_``) around :class:`sklearn_cberl.nn.mgnn.MGNN`. It is not a ``NeuralNetClassifier``
subclass: that would put skorch's own attributes in ``__init__``, return label indices, and
unpack DataFrames into keyword arguments (``DESIGN.md``). skorch provides the training loop,
the optimiser, validation, early stopping (best weights restored in memory, so parallel
``GridSearchCV`` jobs never share checkpoint files), the epoch table and the progress bar.

Batches are whole dialogues (``batch_size`` dialogues each); :func:`collate_dialogues` builds
the PyG-style node layout (features, ``batch``, ``position``, ``speaker``) and the graph is
built on the training device inside the module, vectorised (:mod:`sklearn_cberl.nn.graph`).
"""

from __future__ import annotations

import warnings
from functools import partial
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from skorch import NeuralNet
from skorch.callbacks import EarlyStopping, EpochScoring, ProgressBar
from skorch.helper import predefined_split
from skorch.utils import to_tensor

from ._progress import PlainPrintLog, is_terminal
from ._utils import check_finite_loss, resolve_device, seed_from, torch_seed
from .conversation import check_conversations, check_labels
from .nn.boosting import samme_alpha, samme_weights
from .nn.losses import CBERLLoss
from .nn.mgnn import MGNN

__all__ = ["CBERLClassifier", "DialogueDataset", "collate_dialogues"]

#: Utterances per inference batch: prediction batch size does not change the results (each
#: dialogue is computed independently) and large batches amortise per-batch overhead.
_INFERENCE_UTTERANCES = 4096


# --------------------------------------------------------------------------- data layout
def _layout(conv):
    """Dialogue-major arrays of a validated batch: features, position, local speaker codes."""
    order = conv.order
    lengths = conv.lengths
    offsets = conv.offsets
    n = conv.n_samples
    position = np.arange(n) - np.repeat(offsets[:-1], lengths)
    dialogue = conv.dialogue[order]
    speaker = conv.speaker[order]
    # Speakers numbered 0, 1, ... by first appearance inside each dialogue: factorising
    # (dialogue, speaker) pairs in dialogue-major order numbers a dialogue's speakers
    # consecutively, so subtracting the code of the dialogue's first row localises them.
    pair = dialogue.astype(np.int64) * (int(speaker.max(initial=0)) + 1) + speaker
    codes = pd.factorize(pair, sort=False)[0]
    first = codes[offsets[:-1]] if n else codes
    local = codes - np.repeat(first, lengths)
    # Frames are usually already in dialogue/turn order: skip the copy of the fancy index.
    rows = conv.X if np.array_equal(order, np.arange(n)) else conv.X[order]
    x = np.ascontiguousarray(rows, dtype=np.float32)
    return x, position.astype(np.int64), local.astype(np.int64), offsets


class DialogueDataset(torch.utils.data.Dataset):
    """Whole dialogues of a batch of utterances; item ``d`` is dialogue ``d``'s rows.

    Parameters
    ----------
    x : ndarray of shape (n, d), float32
        Features in dialogue-major order.
    position, speaker : ndarray of shape (n,)
        Rank inside the dialogue and dialogue-local speaker code of each row.
    offsets : ndarray of shape (n_dialogues + 1,)
        Row range of each dialogue.
    y, sample_weight : ndarray of shape (n,), default=None
        Label codes and weights (zeros / ones when None).
    """

    def __init__(self, x, position, speaker, offsets, y=None, sample_weight=None):
        n = x.shape[0]
        self.x = torch.from_numpy(x)
        self.position = torch.from_numpy(position)
        self.speaker = torch.from_numpy(speaker)
        self.y = torch.from_numpy(
            np.zeros(n, dtype=np.int64) if y is None else np.asarray(y, dtype=np.int64)
        )
        weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight)
        self.sample_weight = torch.from_numpy(weight.astype(np.float32))
        self.offsets = np.asarray(offsets, dtype=np.int64)

    def __len__(self):
        return len(self.offsets) - 1

    def __getitem__(self, d):
        a, b = int(self.offsets[d]), int(self.offsets[d + 1])
        return (
            self.x[a:b],
            self.position[a:b],
            self.speaker[a:b],
            self.sample_weight[a:b],
            self.y[a:b],
        )


def collate_dialogues(items):
    """Stack dialogues into one node batch: ``({x, batch, position, speaker, sample_weight}, y)``.

    The dict is the PyG ``Batch`` layout (nodes concatenated dialogue by dialogue plus a
    ``batch`` vector); skorch moves it to the device and passes it to ``MGNN.forward``.
    """
    x, position, speaker, weight, y = zip(*items)
    lengths = torch.tensor([len(p) for p in position])
    batch = torch.repeat_interleave(torch.arange(len(items)), lengths)
    features = {
        "x": torch.cat(x),
        "batch": batch,
        "position": torch.cat(position),
        "speaker": torch.cat(speaker),
        "sample_weight": torch.cat(weight),
    }
    return features, torch.cat(y)


def _valid_f1(net, X, y, average="weighted"):
    """F1 (%) of the ensemble on the validation dialogues (skorch scorer): ``"weighted"`` is
    WAF1, ``"macro"`` weighs every emotion equally. Percent, as in every report."""
    logits = net.forward(X, device=net.device)[0]
    pred = net.module_.decision(logits).argmax(-1).cpu().numpy()
    weight = X.sample_weight.numpy()
    if not weight.sum() > 0:  # an all-zero-weight validation split: score it unweighted
        weight = None
    return 100 * f1_score(y, pred, average=average, sample_weight=weight, zero_division=0)


_valid_waf1 = partial(_valid_f1, average="weighted")
_valid_macro_f1 = partial(_valid_f1, average="macro")


# --------------------------------------------------------------------------- skorch net
class _CBERLNet(NeuralNet):
    """skorch net with CBERL's loss (Eq. 20) and the SAMME weighting of the heads.

    ``get_loss`` receives the module's per-node outputs. In training it re-weights the
    utterances for every head from the current mini-batch predictions of the heads before it
    (:func:`samme_weights`) and accumulates each head's weighted error over the epoch; after
    the training pass of every epoch the heads' votes (``module_.estimator_weights``) are set
    from those errors (:func:`samme_alpha`), so the validation pass and the saved best
    weights use the votes of the same epoch.
    """

    def __init__(self, *args, boosting=True, boosting_rate=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.boosting = boosting
        self.boosting_rate = boosting_rate

    def get_loss(self, y_pred, y_true, X=None, training=False):
        logits, _, error, mask, elbo = y_pred
        y_true = to_tensor(y_true, device=self.device)
        weight = X["sample_weight"]
        n_classes = logits.shape[-1]
        epoch = len(self.history)
        if not training:
            # Validation loss of the ensemble that is actually used for prediction.
            decision = self.module_.decision(logits) / max(n_classes - 1, 1)
            _, focal, _ = self.criterion_(decision, y_true, weight=weight)
            check_finite_loss(focal, estimator="CBERLClassifier", epoch=epoch, term="valid loss")
            return focal
        head_weight = None
        if self.boosting and logits.shape[1] > 1:
            miss = logits.detach().argmax(-1) != y_true.unsqueeze(-1)
            head_weight, errors, _ = samme_weights(miss, weight, n_classes, self.boosting_rate)
            batch_weight = weight.sum().detach()
            self.samme_error_sum_ = self.samme_error_sum_ + errors.detach() * batch_weight
            self.samme_weight_sum_ = self.samme_weight_sum_ + batch_weight
        total, focal, recon = self.criterion_(
            logits,
            y_true,
            error=error,
            mask=mask.bool(),
            weight=weight,
            head_weight=head_weight,
            elbo=elbo if self.module_.fusion is not None else None,
        )
        check_finite_loss(
            total,
            estimator="CBERLClassifier",
            epoch=epoch,
            term="training loss (Eq. 20)",
            hint="Try a lower lr, a smaller gamma, or standardised features.",
        )
        self.history.record_batch("train_focal", float(focal.detach()))
        self.history.record_batch("train_recon", float(recon.detach()))
        return total

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training:
            self.samme_error_sum_ = 0.0
            self.samme_weight_sum_ = 0.0
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        if training and self.boosting and self.module_.estimator_weights.numel() > 1:
            if float(self.samme_weight_sum_) > 0:
                error = self.samme_error_sum_ / self.samme_weight_sum_
                alpha = samme_alpha(error, self.module_.n_classes, self.boosting_rate)
                self.module_.estimator_weights.copy_(alpha)
                self.history.record("samme_error", error.cpu().tolist())
                self.history.record("samme_alpha", alpha.cpu().tolist())


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
    fusion : {None, "vae"}, default=None
        ``"vae"`` fuses the modality blocks *inside* the network and trains fusion, context,
        graph and heads as a whole (paper Sec. IV-A): a DJVAE encoder (one MLP per block,
        product of experts, Eq. 8-11) turns each utterance into a latent of
        ``fusion_components`` that the Bi-LSTM reads, and the per-feature negative ELBO (Eq.
        12) joins the loss with weight ``xi_fusion``. None feeds the concatenated blocks
        (or the output of a separate :class:`~sklearn_cberl.DJVAE` step) to the Bi-LSTM.
    fusion_components : int, default=32
        Latent width of ``fusion="vae"``.
    xi_fusion : float, default=1.0
        Weight of the fusion ELBO term in the total loss (``fusion="vae"`` only).
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
    net_ : skorch.NeuralNet
        The trained network (``net_.module_`` is the :class:`~sklearn_cberl.nn.mgnn.MGNN`,
        ``net_.history`` the training history).
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
        "fusion": [StrOptions({"vae"}), None],
        "fusion_components": [Interval(Integral, 1, None, closed="left")],
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
        fusion_components=32,
        xi_fusion=1.0,
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
        self.fusion_components = fusion_components
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

    # ----------------------------------------------------------------------- helpers
    def _check_attention_hidden(self):
        hidden = tuple(self.attention_hidden)
        if not hidden or not all(isinstance(h, Integral) and h >= 1 for h in hidden):
            raise ValueError(
                "attention_hidden must be a non-empty tuple of positive ints (the Eq. 15 MLP "
                f"widths, e.g. (200, 110)); got {self.attention_hidden!r}."
            )
        return tuple(int(h) for h in hidden)

    def _check_y(self, X, y):
        if y is None:
            raise ValueError("CBERLClassifier requires y to be passed, but the target y is None.")
        check_labels(y)
        y = column_or_1d(y, warn=True)
        check_consistent_length(X, y)
        check_classification_targets(y)
        return y

    def _check_validation_data(self, validation_data, X, modalities):
        """Validate ``(X_val, y_val)``; return its real (not synthetic) rows and labels."""
        if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
            raise TypeError("validation_data must be a tuple (X_val, y_val).")
        X_val, y_val = validation_data
        try:
            conv_val = check_conversations(
                X_val, estimator=self, reset=False, modalities=modalities, dtype=np.float32
            )
        except ValueError as error:
            fitted = getattr(self, "feature_names_in_", None)
            given = getattr(X_val, "columns", None)
            if fitted is None or given is None or set(map(str, given)) == set(fitted):
                raise
            raise ValueError(
                "validation_data does not have the columns the classifier is trained on "
                f"(training: {list(fitted[:4])}..., validation: {list(given[:4])}...). "
                "Inside a Pipeline the validation set must first go through the earlier "
                "steps: fit a sklearn_cberl.CBERLPipeline (make_cberl_pipeline returns one) "
                "with fit(X, y, validation_data=(X_val, y_val))."
            ) from error
        y_val = self._check_y(X_val, y_val)
        unknown = np.setdiff1d(np.unique(y_val), self.classes_)
        if unknown.size:
            raise ValueError(f"validation_data has labels {unknown.tolist()} not present in y.")
        if conv_val.synthetic is not None:  # validate on real utterances only
            conv_val, y_val = conv_val.take(conv_val.real), y_val[conv_val.real]
        return conv_val, y_val

    def _dataset(self, conv, y=None, sample_weight=None):
        x, position, speaker, offsets = _layout(conv)
        order = conv.order
        return DialogueDataset(
            x,
            position,
            speaker,
            offsets,
            y=None if y is None else y[order],
            sample_weight=None if sample_weight is None else sample_weight[order],
        )

    # ----------------------------------------------------------------------- fit
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
        self._validate_params()
        # A refit that fails (bad input, divergence) must not leave the previous network
        # behind: without net_ the estimator is plainly unfitted (__sklearn_is_fitted__).
        self.__dict__.pop("net_", None)
        attention_hidden = self._check_attention_hidden()
        modalities = self.modalities
        conv = check_conversations(
            X, estimator=self, reset=True, modalities=modalities, dtype=np.float32
        )
        y = self._check_y(X, y)
        sample_weight = _check_sample_weight(sample_weight, conv.X, ensure_non_negative=True)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        n_classes = len(self.classes_)
        if n_classes < 2:
            raise ValueError(
                "CBERLClassifier needs samples of at least 2 classes in y; got 1 class: "
                f"{self.classes_.tolist()}."
            )
        y_codes = encoder.transform(y)
        weighted_classes = np.unique(y_codes[sample_weight > 0])
        if len(weighted_classes) < 2:
            raise ValueError(
                "CBERLClassifier needs samples of at least 2 classes with a positive "
                f"sample_weight; got {len(weighted_classes)} class(es) after weighting."
            )
        device = resolve_device(self.device)
        seed = seed_from(self.random_state)

        # Class weights (focal alpha) from the full training labels.
        alpha = None
        if self.class_weight is not None:
            alpha = compute_class_weight(
                self.class_weight, classes=self.classes_, y=y, sample_weight=sample_weight
            ).astype(np.float32)

        valid_dataset = None
        self.validation_dialogues_ = conv.dialogue_ids[:0]
        if validation_data is not None:
            conv_val, y_val = self._check_validation_data(validation_data, X, modalities)
            valid_dataset = self._dataset(conv_val, encoder.transform(y_val))
        elif self.validation_fraction is not None:
            # Validate on real utterances only: synthetic rows (marked by the samplers) are
            # near-copies of their sources, and those in a validation dialogue were made from
            # validation utterances, so they are dropped from both sides.
            real_dialogues = np.unique(conv.dialogue[conv.real])
            if len(real_dialogues) >= 2:
                splitter = GroupShuffleSplit(
                    n_splits=1, test_size=self.validation_fraction, random_state=seed % (2**31)
                )
                _, held = next(splitter.split(real_dialogues, groups=real_dialogues))
                in_valid = np.isin(conv.dialogue, real_dialogues[held])
                self.validation_dialogues_ = conv.dialogue_ids[np.sort(real_dialogues[held])]
                valid_rows = np.flatnonzero(in_valid & conv.real)
                valid_dataset = self._dataset(
                    conv.take(valid_rows), y_codes[valid_rows], sample_weight[valid_rows]
                )
                train_rows = np.flatnonzero(~in_valid)
                conv = conv.take(train_rows)
                y_codes, sample_weight = y_codes[train_rows], sample_weight[train_rows]
        dataset = self._dataset(conv, y_codes, sample_weight)

        # Standardise with the training rows' statistics (the module keeps them as buffers).
        # float64 statistics: float32 squares overflow for features of scale ~1e20.
        train_x = dataset.x.numpy().astype(np.float64)
        mean = train_x.mean(0)
        scale = train_x.std(0)
        scale[~np.isfinite(scale) | (scale < 1e-8 * np.maximum(1.0, np.abs(mean)))] = 1.0
        mean, scale = mean.astype(np.float32), scale.astype(np.float32)

        n_heads = self.n_estimators if self.ensemble == "adaboost" else 1
        blocks = [s.stop - s.start for s in conv.blocks.values()]
        mean_length = max(1.0, conv.n_samples / max(conv.n_dialogues, 1))
        infer_batch = max(self.batch_size, int(_INFERENCE_UTTERANCES // mean_length))
        callbacks = []
        if valid_dataset is not None:
            callbacks.append(
                (
                    "valid_waf1",
                    EpochScoring(_valid_waf1, lower_is_better=False, name="valid_waf1"),
                )
            )
            if self.early_stopping == "macro_f1":
                callbacks.append(
                    (
                        "valid_macro_f1",
                        EpochScoring(_valid_macro_f1, lower_is_better=False, name="valid_macro_f1"),
                    )
                )
            if self.early_stopping is not None:
                monitor = {"waf1": "valid_waf1", "macro_f1": "valid_macro_f1"}.get(
                    self.early_stopping, "valid_loss"
                )
                callbacks.append(
                    (
                        "early_stopping",
                        EarlyStopping(
                            monitor=monitor,
                            lower_is_better=monitor == "valid_loss",
                            patience=self.patience,
                            load_best=True,
                        ),
                    )
                )
        if self.verbose and self.verbose > 1 and is_terminal():
            callbacks.append(("progress_bar", ProgressBar()))

        self.net_ = _CBERLNet(
            module=MGNN,
            module__n_features=conv.X.shape[1],
            module__n_classes=n_classes,
            module__hidden_size=self.hidden_size,
            module__window_past=self.window_past,
            module__window_future=self.window_future,
            module__relations=self.relations,
            module__max_speakers=self.max_speakers,
            module__attention_hidden=attention_hidden,
            module__n_layers=self.n_layers,
            module__mask_rate=self.mask_rate,
            module__dropout=self.dropout,
            module__n_heads=n_heads,
            module__voting=self.voting,
            module__feature_mean=torch.from_numpy(mean),
            module__feature_scale=torch.from_numpy(scale),
            module__fusion_blocks=None if self.fusion is None else blocks,
            module__fusion_components=self.fusion_components,
            criterion=CBERLLoss,
            criterion__gamma=self.gamma,
            criterion__alpha=None if alpha is None else torch.from_numpy(alpha),
            criterion__xi_recon=self.xi_recon,
            criterion__xi_focal=self.xi_focal,
            criterion__xi_fusion=self.xi_fusion,
            optimizer=torch.optim.Adam,
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train__shuffle=True,
            iterator_train__collate_fn=collate_dialogues,
            iterator_valid__collate_fn=collate_dialogues,
            iterator_valid__batch_size=infer_batch,
            train_split=None if valid_dataset is None else predefined_split(valid_dataset),
            callbacks=callbacks,
            # Boosting diagnostics stay in the history but out of the epoch table, and the
            # table has no colour codes when it goes to a file.
            callbacks__print_log=PlainPrintLog(keys_ignored=["samme_error", "samme_alpha"]),
            device=str(device),
            verbose=self.verbose,
            boosting=self.ensemble == "adaboost",
            boosting_rate=self.boosting_rate,
        )
        with torch_seed(seed, device):
            try:
                # skorch ends training on KeyboardInterrupt and returns normally (the
                # weights of the best validated epoch are restored): a usable model.
                self.net_.fit(dataset, y=None)
            except BaseException:
                del self.net_  # diverged or failed: no half-trained network is kept
                raise
        # Keep no reference to the training data in the fitted estimator (pickle size).
        self.net_.train_split = None
        # The per-epoch SAMME accumulators are tensors on the training device, outside the
        # attributes skorch maps to the CPU when a CUDA pickle is loaded without CUDA.
        for name in ("samme_error_sum_", "samme_weight_sum_"):
            vars(self.net_).pop(name, None)

        history = self.net_.history
        self.n_iter_ = len(history)
        stopper = dict(self.net_.callbacks_).get("early_stopping")
        best = int(stopper.best_epoch_) if stopper is not None else 0
        # No validated epoch (e.g. interrupted in the first): the last weights are kept.
        self.best_epoch_ = best if best >= 1 else self.n_iter_
        last = self.max_epochs - max(1, self.max_epochs // 10)
        if best >= 1 and self.n_iter_ == self.max_epochs and self.best_epoch_ > last:
            warnings.warn(
                f"CBERLClassifier: training ended at the epoch cap (max_epochs="
                f"{self.max_epochs}) while the validation {stopper.monitor} was still "
                f"improving (best epoch {self.best_epoch_}); raise max_epochs.",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.estimator_weights_ = self.net_.module_.estimator_weights.detach().cpu().numpy()
        errors = np.full(n_heads, np.nan)
        if n_heads > 1 and "samme_error" in history[self.best_epoch_ - 1]:
            errors = np.asarray(history[self.best_epoch_ - 1, "samme_error"])
        self.estimator_errors_ = errors
        return self

    # ----------------------------------------------------------------------- inference
    def _infer(self, X, output):
        """Run the network over X; ``output`` in {"decision", "embedding"}; input row order."""
        check_is_fitted(self)
        self._sync_device()
        conv = check_conversations(
            X, estimator=self, reset=False, modalities=self.modalities, dtype=np.float32
        )
        dataset = self._dataset(conv)
        mean_length = max(1.0, conv.n_samples / max(conv.n_dialogues, 1))
        size = max(self.batch_size, int(_INFERENCE_UTTERANCES // mean_length))
        # A private generator: iterating a DataLoader draws a base seed from the global
        # torch RNG otherwise, and predict must leave the user's RNG state alone.
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=size,
            shuffle=False,
            collate_fn=collate_dialogues,
            generator=torch.Generator(),
        )
        module = self.net_.module_
        parts = []
        for batch in loader:
            logits, embedding, *_ = self.net_.evaluation_step(batch)
            value = module.decision(logits) if output == "decision" else embedding
            parts.append(value.detach().cpu().numpy())
        if parts:
            values = np.concatenate(parts)
        else:
            width = len(self.classes_) if output == "decision" else module.embedding_size
            values = np.zeros((0, width), dtype=np.float32)
        return conv.to_input_order(values)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "net_")

    def _sync_device(self):
        """Move the fitted network to the device of the ``device`` parameter, now.

        Lets a fitted model change device with ``set_params(device="cpu")``; skorch already
        maps a CUDA pickle to the CPU when CUDA is missing (with a ``DeviceWarning``).
        """
        device = resolve_device(self.device)
        if torch.device(self.net_.device) != device:
            self.net_.module_.to(device)
            self.net_.criterion_.to(device)
            self.net_.device = str(device)

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
