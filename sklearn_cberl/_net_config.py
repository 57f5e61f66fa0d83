"""How ``CBERLClassifier``'s parameters configure its skorch net, and what fit reads back.

:func:`build_net` turns the estimator's parameters into a ``_CBERLNet``
(:mod:`sklearn_cberl._cberl_net`): the ``module__`` arguments of
:class:`~sklearn_cberl.nn.mgnn.MGNN` (:func:`module_params`), the loss (Eq. 19-20), the
optimiser and the callbacks (:func:`make_callbacks`: validation scorers, early stopping,
progress bar). :func:`training_summary` gives the fitted attributes from the trained net.
Not under ``nn/``: it reads the estimator and uses scikit-learn metrics.
"""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import f1_score
from skorch.callbacks import EarlyStopping, EpochScoring, ProgressBar
from skorch.helper import predefined_split

from ._cberl_net import _CBERLNet
from ._classifier_data import feature_statistics
from ._progress import PlainPrintLog, is_terminal
from .nn.data import collate_dialogues, inference_batch_size
from .nn.losses import CBERLLoss
from .nn.mgnn import MGNN

__all__ = ["build_net", "make_callbacks", "module_params", "training_summary"]


# --------------------------------------------------------------------------- scorers
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


def make_callbacks(*, validating, early_stopping, patience, progress_bar):
    """The estimator's skorch callbacks, as ``(name, callback)`` pairs.

    Parameters
    ----------
    validating : bool
        Whether there is a validation set (scorers and early stopping need one).
    early_stopping : {"waf1", "macro_f1", "loss"} or None
        Validation quantity to monitor (``valid_waf1``, ``valid_macro_f1``, ``valid_loss``);
        the best epoch's weights are restored in memory, never through checkpoint files.
    patience : int
        Epochs without improvement before stopping.
    progress_bar : bool
        Add skorch's per-batch progress bar.
    """
    callbacks = []
    if validating:
        scorer = EpochScoring(_valid_waf1, lower_is_better=False, name="valid_waf1")
        callbacks.append(("valid_waf1", scorer))
        if early_stopping == "macro_f1":
            scorer = EpochScoring(_valid_macro_f1, lower_is_better=False, name="valid_macro_f1")
            callbacks.append(("valid_macro_f1", scorer))
        if early_stopping is not None:
            monitor = {"waf1": "valid_waf1", "macro_f1": "valid_macro_f1"}.get(
                early_stopping, "valid_loss"
            )
            stopper = EarlyStopping(
                monitor=monitor,
                lower_is_better=monitor == "valid_loss",
                patience=patience,
                load_best=True,
            )
            callbacks.append(("early_stopping", stopper))
    if progress_bar:
        callbacks.append(("progress_bar", ProgressBar()))
    return callbacks


# --------------------------------------------------------------------------- configuration
def module_params(estimator, conv, dataset, attention_hidden):
    """``module__`` arguments of the :class:`~sklearn_cberl.nn.mgnn.MGNN` of ``estimator``.

    Parameters
    ----------
    estimator : CBERLClassifier
        Its parameters: context (Eq. 13-14), graph (Eq. 15-17), masking (Eq. 18), heads and
        in-network fusion (Eq. 8-12); its ``classes_``.
    conv : Conversations
        The training batch (feature width, modality blocks).
    dataset : DialogueDataset
        The training dialogues: the module standardises its input with their statistics
        (kept as buffers).
    attention_hidden : tuple of int
        The checked ``attention_hidden`` (Eq. 15).
    """
    mean, scale = feature_statistics(dataset.x.numpy())
    fusion_blocks = [s.stop - s.start for s in conv.blocks.values()]
    params = {
        "n_features": conv.X.shape[1],
        "n_classes": len(estimator.classes_),
        "hidden_size": estimator.hidden_size,
        "window_past": estimator.window_past,
        "window_future": estimator.window_future,
        "relations": estimator.relations,
        "max_speakers": estimator.max_speakers,
        "attention_hidden": attention_hidden,
        "n_layers": estimator.n_layers,
        "mask_rate": estimator.mask_rate,
        "dropout": estimator.dropout,
        "n_heads": estimator.n_estimators if estimator.ensemble == "adaboost" else 1,
        "voting": estimator.voting,
        "feature_mean": torch.from_numpy(mean),
        "feature_scale": torch.from_numpy(scale),
        "fusion_blocks": None if estimator.fusion is None else fusion_blocks,
        "fusion_components": estimator.fusion_components,
    }
    return {f"module__{name}": value for name, value in params.items()}


def build_net(estimator, conv, dataset, dataset_valid, attention_hidden, alpha, device):
    """The untrained :class:`~sklearn_cberl._cberl_net._CBERLNet` of ``estimator``.

    Parameters
    ----------
    estimator : CBERLClassifier
    conv : Conversations
        The training batch.
    dataset, dataset_valid : DialogueDataset
        The training dialogues and the validation dialogues (None: no validation, no early
        stopping).
    attention_hidden : tuple of int
        As in :func:`module_params`.
    alpha : ndarray of shape (n_classes,) or None
        Per-class weight of the focal loss (Eq. 19).
    device : torch.device
    """
    module = module_params(estimator, conv, dataset, attention_hidden)
    callbacks = make_callbacks(
        validating=dataset_valid is not None,
        early_stopping=estimator.early_stopping,
        patience=estimator.patience,
        progress_bar=bool(estimator.verbose and estimator.verbose > 1 and is_terminal()),
    )
    return _CBERLNet(
        module=MGNN,
        **module,
        criterion=CBERLLoss,
        criterion__gamma=estimator.gamma,
        criterion__alpha=None if alpha is None else torch.from_numpy(alpha),
        criterion__xi_recon=estimator.xi_recon,
        criterion__xi_focal=estimator.xi_focal,
        criterion__xi_fusion=estimator.xi_fusion,
        optimizer=torch.optim.Adam,
        optimizer__weight_decay=estimator.weight_decay,  # the lambda term of Eq. 19
        lr=estimator.lr,
        max_epochs=estimator.max_epochs,
        batch_size=estimator.batch_size,
        iterator_train__shuffle=True,
        iterator_train__collate_fn=collate_dialogues,
        iterator_valid__collate_fn=collate_dialogues,
        iterator_valid__batch_size=inference_batch_size(conv, estimator.batch_size),
        train_split=None if dataset_valid is None else predefined_split(dataset_valid),
        callbacks=callbacks,
        # Boosting diagnostics stay in the history but out of the epoch table, and the
        # table has no colour codes when it goes to a file.
        callbacks__print_log=PlainPrintLog(keys_ignored=["samme_error", "samme_alpha"]),
        device=str(device),
        verbose=estimator.verbose,
        boosting=estimator.ensemble == "adaboost",
        boosting_rate=estimator.boosting_rate,
    )


def training_summary(net, max_epochs):
    """Fitted attributes of the estimator from its trained net.

    Returns
    -------
    dict
        ``n_iter_`` (epochs run), ``best_epoch_`` (epoch whose weights were kept: the best
        validated one, else the last), ``estimator_weights_`` (the heads' SAMME votes) and
        ``estimator_errors_`` (their weighted errors in the kept epoch; NaN for one head).

    Warns
    -----
    ConvergenceWarning
        When training hit ``max_epochs`` with the best epoch in the last tenth of them.
    """
    history = net.history
    n_iter = len(history)
    stopper = dict(net.callbacks_).get("early_stopping")
    best = int(stopper.best_epoch_) if stopper is not None else 0
    # No validated epoch (e.g. interrupted in the first): the last weights are kept.
    best_epoch = best if best >= 1 else n_iter
    last = max_epochs - max(1, max_epochs // 10)
    if best >= 1 and n_iter == max_epochs and best_epoch > last:
        warnings.warn(
            f"CBERLClassifier: training ended at the epoch cap (max_epochs="
            f"{max_epochs}) while the validation {stopper.monitor} was still "
            f"improving (best epoch {best_epoch}); raise max_epochs.",
            ConvergenceWarning,
            stacklevel=3,  # the caller of CBERLClassifier.fit
        )
    weights = net.module_.estimator_weights.detach().cpu().numpy()
    errors = np.full(len(weights), np.nan)
    if len(weights) > 1 and "samme_error" in history[best_epoch - 1]:
        errors = np.asarray(history[best_epoch - 1, "samme_error"])
    return {
        "n_iter_": n_iter,
        "best_epoch_": best_epoch,
        "estimator_weights_": weights,
        "estimator_errors_": errors,
    }
