"""The fine-tuning engine of :class:`~sklearn_cberl.features.TunedTextEncoder`.

Loading the offline weights, tokenising (utterances or *window, utterance* pairs), the skorch
``NeuralNetClassifier`` that fine-tunes (with the toolkit's callbacks and history,
:mod:`sklearn_cberl._torch_estimator`), and batched inference of the tuned embeddings. The
functions take arrays and plain values; the estimator passes its parameters.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.utils.class_weight import compute_class_weight
from skorch.callbacks import EpochScoring, LRScheduler

from .._torch_estimator import (
    PlainPrintLog,
    evaluate,
    fitted_history,
    progress,
    torch_seed,
    training_callbacks,
)
from .text import _EXTRA_HINT, _model_path, _quiet_loading

__all__ = ["MONITORS", "embed", "fine_tune", "load_pretrained", "rows", "tokenize"]


def load_pretrained(model):
    """A fresh tokenizer and transformer from a local directory (fine-tuning changes the
    weights, so unlike :class:`TextEncoder` nothing is cached between fits)."""
    path = _model_path(model)
    try:
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise ImportError(f"TunedTextEncoder needs transformers: {_EXTRA_HINT}.") from exc
    with _quiet_loading(enabled=True):
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        transformer = AutoModel.from_pretrained(path, local_files_only=True)
    return tokenizer, transformer


def tokenize(tokenizer, targets, contexts, max_length) -> dict:
    """Token arrays padded to the longest input, plus ``pool_mask`` (the target's tokens)."""
    common = {"max_length": max_length, "padding": "longest", "return_tensors": "np"}
    if contexts is None:
        enc = tokenizer(targets, truncation=True, **common)
        pool = enc["attention_mask"]
    else:
        side = tokenizer.truncation_side
        tokenizer.truncation_side = "left"  # a long window loses its oldest turns first
        try:
            enc = tokenizer(contexts, targets, truncation="longest_first", **common)
        finally:
            tokenizer.truncation_side = side
        pool = np.zeros_like(enc["attention_mask"])
        for i in range(len(targets)):
            pool[i] = [s == 1 for s in enc.sequence_ids(i)]
    keys = ("input_ids", "attention_mask", "token_type_ids")
    tokens = {k: np.asarray(enc[k], dtype=np.int64) for k in keys if k in enc}
    tokens["pool_mask"] = np.asarray(pool, dtype=np.int64)
    return tokens


def rows(tokens: dict, index) -> dict:
    """The token arrays of some rows."""
    return {k: v[index] for k, v in tokens.items()}


def _waf1(net, X, y):
    """Validation weighted F1 in percent (skorch scorer), as every report prints it."""
    return 100 * f1_score(y, net.predict(X), average="weighted", zero_division=0)


#: ``early_stopping`` values -> the history key they monitor (the classifier's names).
MONITORS = {"waf1": "valid_waf1", "loss": "valid_loss"}


def _callbacks(n_steps, *, validating, early_stopping, patience, verbose, lr):
    """The learning-rate schedule, the validation WAF1, then the toolkit's callbacks."""
    warmup = max(1, n_steps // 10)

    def schedule(step):  # linear warm-up over a tenth of the steps, then linear decay to 0
        return min((step + 1) / warmup, max(0.0, (n_steps - step) / max(1, n_steps - warmup)))

    scheduler = LRScheduler(
        torch.optim.lr_scheduler.LambdaLR, lr_lambda=schedule, step_every="batch"
    )
    callbacks = [("lr_schedule", scheduler)]
    if validating:  # scored before the early stopping reads it
        scorer = EpochScoring(_waf1, lower_is_better=False, name="valid_waf1")
        callbacks.append(("valid_waf1", scorer))
    return callbacks + training_callbacks(
        estimator="TunedTextEncoder",
        validating=validating,
        early_stopping=early_stopping,
        patience=patience,
        verbose=verbose,
        monitor=MONITORS.get(early_stopping, "valid_loss"),
        hint=f"Try a lower lr (now {lr!r}).",
    )


def fine_tune(
    model,
    tokens,
    codes,
    valid,
    *,
    n_classes,
    max_epochs,
    batch_size,
    lr,
    weight_decay,
    dropout,
    class_weight,
    early_stopping,
    patience,
    device,
    verbose,
    seed,
):
    """Fine-tune a fresh copy of the transformer in ``model`` on ``tokens`` / label ``codes``.

    Parameters
    ----------
    model : str or path
        The local weights (:func:`load_pretrained`).
    tokens : dict of ndarray
        Token arrays of the training rows (:func:`tokenize`).
    codes : ndarray of int
        Label codes in ``range(n_classes)``.
    valid : tuple (tokens, codes) or None
        The validation set: its loss and weighted F1 are recorded per epoch and, with
        ``early_stopping``, the best epoch is kept.
    n_classes : int
    max_epochs, batch_size : int
    lr, weight_decay, dropout : float
    class_weight : {"balanced"} or None
        Cross-entropy class weights.
    early_stopping : {"waf1", "loss"} or None
        The monitored validation quantity (:data:`MONITORS`).
    patience : int
    device : torch.device
    verbose : int
    seed : int
        Seeds the head, dropout and batch order (forked torch RNG).

    Returns
    -------
    module : SentenceClassifier
        In eval mode.
    fitted : dict
        ``history_``, ``n_iter_``, ``best_epoch_`` (:func:`fitted_history`).
    """
    from skorch import NeuralNetClassifier
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    from ..nn.text import SentenceClassifier, collate_trimmed

    weight = None
    if class_weight == "balanced":
        present = np.unique(codes)
        w = np.ones(n_classes, dtype=np.float32)
        w[present] = compute_class_weight("balanced", classes=present, y=codes)
        weight = torch.from_numpy(w)
    n_steps = int(max_epochs) * math.ceil(len(codes) / int(batch_size))
    _, transformer = load_pretrained(model)
    with torch_seed(seed, device):
        net = NeuralNetClassifier(
            SentenceClassifier(transformer, n_classes, float(dropout)),
            criterion=torch.nn.CrossEntropyLoss,
            criterion__weight=weight,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=float(weight_decay),
            lr=float(lr),
            max_epochs=int(max_epochs),
            batch_size=int(batch_size),
            iterator_train__shuffle=True,
            iterator_train__collate_fn=collate_trimmed,
            iterator_valid__collate_fn=collate_trimmed,
            iterator_valid__batch_size=4 * int(batch_size),
            # A DataLoader draws a seed at every pass: from a private generator, so that a
            # validation set does not change the training draws.
            iterator_valid__generator=torch.Generator(),
            train_split=None if valid is None else predefined_split(Dataset(*valid)),
            classes=np.arange(n_classes),
            callbacks=_callbacks(
                n_steps,
                validating=valid is not None,
                early_stopping=early_stopping,
                patience=patience,
                verbose=verbose,
                lr=lr,
            ),
            callbacks__print_log=PlainPrintLog("TunedTextEncoder"),
            device=str(device),
            verbose=int(bool(verbose)),
        )
        net.fit(Dataset(tokens, codes), y=None)
    return net.module_.eval(), fitted_history(net)


def embed(module, tokens, *, batch_size, device, normalize, verbose) -> np.ndarray:
    """Tuned sentence embeddings of ``tokens`` in input order; batches of similar length.

    Parameters
    ----------
    module : SentenceClassifier
    tokens : dict of ndarray
    batch_size : int
        Rows per inference batch.
    device : torch.device
    normalize : bool
        L2-normalise the embeddings.
    verbose : int
        Progress lines when truthy.

    Returns
    -------
    ndarray of shape (n_rows, hidden), float32
    """
    from ..nn.text import trimmed

    n = len(tokens["input_ids"])
    order = np.argsort(-tokens["attention_mask"].sum(1), kind="stable")
    size = int(batch_size)
    out = np.empty((n, module.head.in_features), dtype=np.float32)

    def compute():
        batches = range(0, n, size)
        for start in progress(batches, desc="TunedTextEncoder: embedding", verbose=verbose):
            index = order[start : start + size]
            batch = {k: v.to(device) for k, v in trimmed(tokens, index).items()}
            out[index] = module.embed(**batch).float().cpu().numpy()

    evaluate(module, compute)
    module.eval()  # evaluate() hands modules back in train mode; this one only infers
    if normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
