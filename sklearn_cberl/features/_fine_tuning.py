"""The fine-tuning engine of :class:`~sklearn_cberl.features.TunedTextEncoder`.

Loading the offline weights, tokenising (utterances or *window, utterance* pairs), the skorch
``NeuralNetClassifier`` that fine-tunes, and batched inference of the tuned embeddings. The
functions read the estimator's parameters, as :mod:`sklearn_cberl._net_config` does for the
classifier.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils.class_weight import compute_class_weight
from skorch.callbacks import Callback

from .._torch_estimator import (
    PlainPrintLog,
    check_finite_loss,
    evaluate,
    is_terminal,
    progress,
    torch_seed,
)
from .text import _EXTRA_HINT, _model_path, _quiet_loading

__all__ = ["embed", "fine_tune", "load_pretrained", "rows", "tokenize"]


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


class _FiniteLoss(Callback):
    """A NaN/inf training loss is a clear error, not a silently useless encoder."""

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        check_finite_loss(
            row["train_loss"],
            estimator="TunedTextEncoder",
            epoch=row["epoch"],
            hint="Try a lower lr.",
        )


def _waf1(net, X, y):
    """Validation weighted F1 in percent (skorch scorer), as every report prints it."""
    return 100 * f1_score(y, net.predict(X), average="weighted", zero_division=0)


def _callbacks(est, n_steps, validating):
    from skorch.callbacks import EarlyStopping, EpochScoring, LRScheduler, ProgressBar

    warmup = max(1, n_steps // 10)

    def schedule(step):  # linear warm-up over a tenth of the steps, then linear decay to 0
        return min((step + 1) / warmup, max(0.0, (n_steps - step) / max(1, n_steps - warmup)))

    scheduler = LRScheduler(
        torch.optim.lr_scheduler.LambdaLR, lr_lambda=schedule, step_every="batch"
    )
    callbacks = [("lr_schedule", scheduler), ("finite_loss", _FiniteLoss())]
    if validating:
        scorer = EpochScoring(_waf1, lower_is_better=False, name="valid_waf1")
        callbacks.append(("valid_waf1", scorer))
        if est.early_stopping:
            monitor = "valid_waf1" if est.early_stopping == "waf1" else "valid_loss"
            stopper = EarlyStopping(
                monitor=monitor,
                lower_is_better=monitor == "valid_loss",
                patience=int(est.patience),
                load_best=True,  # in memory, no checkpoint files
            )
            callbacks.append(("early_stopping", stopper))
    if est.verbose and est.verbose > 1 and is_terminal():  # per-batch bar (skorch's)
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks


def fine_tune(est, tokens, codes, groups, valid, seed):
    """Fine-tune a fresh copy of ``est.model`` on ``tokens`` / label ``codes``.

    ``valid`` is ``(tokens, codes)`` of the validation set or None; without it and with
    early stopping, ``est.validation_fraction`` of the dialogues (``groups``; rows when None)
    are held out. Returns ``(module, history, kept_epoch)``; the module is in eval mode.
    """
    from skorch import NeuralNetClassifier
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    from ..nn.text import SentenceClassifier, collate_trimmed

    n_classes = len(est.classes_)
    if valid is None and est.early_stopping:
        split = GroupShuffleSplit(1, test_size=est.validation_fraction, random_state=seed)
        keep, held = next(
            split.split(codes, groups=np.arange(len(codes)) if groups is None else groups)
        )
        valid = (rows(tokens, held), codes[held])
        tokens, codes = rows(tokens, keep), codes[keep]
    weight = None
    if est.class_weight == "balanced":
        present = np.unique(codes)
        w = np.ones(n_classes, dtype=np.float32)
        w[present] = compute_class_weight("balanced", classes=present, y=codes)
        weight = torch.from_numpy(w)
    n_steps = int(est.max_epochs) * math.ceil(len(codes) / int(est.batch_size))
    _, transformer = load_pretrained(est.model)
    with torch_seed(seed, est.device_):
        net = NeuralNetClassifier(
            SentenceClassifier(transformer, n_classes, float(est.dropout)),
            criterion=torch.nn.CrossEntropyLoss,
            criterion__weight=weight,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=float(est.weight_decay),
            lr=float(est.lr),
            max_epochs=int(est.max_epochs),
            batch_size=int(est.batch_size),
            iterator_train__shuffle=True,
            iterator_train__collate_fn=collate_trimmed,
            iterator_valid__collate_fn=collate_trimmed,
            iterator_valid__batch_size=4 * int(est.batch_size),
            train_split=None if valid is None else predefined_split(Dataset(*valid)),
            classes=np.arange(n_classes),
            callbacks=_callbacks(est, n_steps, valid is not None),
            callbacks__print_log=PlainPrintLog("TunedTextEncoder"),
            device=str(est.device_),
            verbose=int(bool(est.verbose)),
        )
        net.fit(Dataset(tokens, codes), y=None)
    keys = ("epoch", "train_loss", "valid_loss", "valid_waf1", "dur")
    history = [{k: float(row[k]) for k in keys if k in row} for row in net.history]
    stopper = dict(net.callbacks_).get("early_stopping")
    kept = int(stopper.best_epoch_) if stopper is not None else len(history)
    module = net.module_.eval()
    return module, history, kept


def embed(est, module, tokens) -> np.ndarray:
    """Tuned sentence embeddings of ``tokens`` in input order; batches of similar length."""
    from ..nn.text import trimmed

    n = len(tokens["input_ids"])
    order = np.argsort(-tokens["attention_mask"].sum(1), kind="stable")
    size = 4 * int(est.batch_size)
    out = np.empty((n, module.head.in_features), dtype=np.float32)

    def compute():
        batches = range(0, n, size)
        for start in progress(batches, desc="TunedTextEncoder: embedding", verbose=est.verbose):
            index = order[start : start + size]
            batch = {k: v.to(est.device_) for k, v in trimmed(tokens, index).items()}
            out[index] = module.embed(**batch).float().cpu().numpy()

    evaluate(module, compute)
    module.eval()  # evaluate() hands modules back in train mode; this one only infers
    if est.normalize:
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out
