"""The skorch net inside ``CBERLClassifier``: its batches, its loss and SAMME rounds, its setup.

* **batches** - whole dialogues: :func:`dialogue_layout` puts a validated conversation batch
  in dialogue-major order, :class:`DialogueDataset` serves one dialogue per item and
  :func:`collate_dialogues` concatenates dialogues into one PyG-style node batch (features,
  ``batch``, ``position``, ``speaker``) that :meth:`MGNN.forward
  <sklearn_cberl.nn.mgnn.MGNN.forward>` builds its graph from on the training device;
* **the net** - :class:`CBERLNet`, the :class:`~skorch.NeuralNet` that trains
  :class:`~sklearn_cberl.nn.mgnn.MGNN` with CBERL's loss (Eq. 20) and runs it for inference,
  and :class:`SAMMEBoosting`, the callback holding the AdaBoost (SAMME) rounds of the heads;
* **setup** - :func:`make_net` builds the untrained net from plain values (the estimator's
  parameters, the module's arguments, the validation set) with the validation scorers and
  the package's training callbacks; :func:`boosting_summary` reads the fitted SAMME
  attributes back.

skorch is the training loop (optimiser, validation, early stopping with the best weights
restored in memory, the epoch table, the progress bar); this module only adds what CBERL
needs on top of it. No estimator is imported here.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochScoring
from skorch.helper import predefined_split
from skorch.utils import to_tensor

from .._torch_estimator import PlainPrintLog, check_finite_loss, training_callbacks
from ..conversation import modality_presence
from ..nn.mgnn import MGNN, CBERLLoss, samme_alpha, samme_weights

__all__ = [
    "CBERLNet",
    "DialogueDataset",
    "SAMMEBoosting",
    "boosting_summary",
    "collate_dialogues",
    "dialogue_dataset",
    "dialogue_layout",
    "inference_batch_size",
    "make_net",
]


# --------------------------------------------------------------------------- batches
#: Utterances per inference batch: prediction batch size does not change the results (each
#: dialogue is computed independently) and large batches amortise per-batch overhead.
INFERENCE_UTTERANCES = 4096


def dialogue_layout(conv):
    """Dialogue-major arrays of a validated batch: features, position, local speaker codes.

    Returns
    -------
    x : ndarray of shape (n, d), float32
    position, speaker : ndarray of shape (n,), int64
        Rank inside the dialogue; speakers numbered 0, 1, ... by first appearance in it.
    offsets : ndarray of shape (n_dialogues + 1,)
        Row range of each dialogue.
    """
    order = conv.order
    lengths = conv.lengths
    offsets = conv.offsets
    n = conv.n_samples
    # One definition of the in-dialogue rank: the container's, taken in dialogue-major order.
    position = conv.position[order]
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
    present : ndarray of bool, shape (n_modalities, n), default=None
        Which modalities each row has (for the in-network fusion); None: not needed.
    """

    def __init__(self, x, position, speaker, offsets, y=None, sample_weight=None, present=None):
        n = x.shape[0]
        self.present = None if present is None else torch.from_numpy(present.T.astype(np.float32))
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
        present = None if self.present is None else self.present[a:b]
        return (
            self.x[a:b],
            self.position[a:b],
            self.speaker[a:b],
            self.sample_weight[a:b],
            self.y[a:b],
            present,
        )


def dialogue_dataset(conv, y=None, sample_weight=None, *, presence=False):
    """:class:`DialogueDataset` of a validated batch; ``y`` / ``sample_weight`` in row order.

    ``presence``: also carry each row's modality presence (for the in-network fusion).
    """
    x, position, speaker, offsets = dialogue_layout(conv)
    order = conv.order
    present = None
    if presence:
        present = modality_presence(x, conv.blocks.values())
    return DialogueDataset(
        x,
        position,
        speaker,
        offsets,
        y=None if y is None else y[order],
        sample_weight=None if sample_weight is None else sample_weight[order],
        present=present,
    )


def inference_batch_size(conv, batch_size):
    """Dialogues per inference batch: about :data:`INFERENCE_UTTERANCES` utterances, at least
    ``batch_size`` dialogues."""
    mean_length = max(1.0, conv.n_samples / max(conv.n_dialogues, 1))
    return max(batch_size, int(INFERENCE_UTTERANCES // mean_length))


def collate_dialogues(items):
    """Stack dialogues into one node batch: ``({x, batch, position, speaker, sample_weight
    [, present]}, y)``.

    The dict is the PyG ``Batch`` layout (nodes concatenated dialogue by dialogue plus a
    ``batch`` vector); skorch moves it to the device and passes it to ``MGNN.forward``.
    """
    x, position, speaker, weight, y, present = zip(*items)
    lengths = torch.tensor([len(p) for p in position])
    batch = torch.repeat_interleave(torch.arange(len(items)), lengths)
    features = {
        "x": torch.cat(x),
        "batch": batch,
        "position": torch.cat(position),
        "speaker": torch.cat(speaker),
        "sample_weight": torch.cat(weight),
    }
    if present[0] is not None:
        features["present"] = torch.cat(present)
    return features, torch.cat(y)


# --------------------------------------------------------------------------- the net
class SAMMEBoosting(Callback):
    """The SAMME (multi-class AdaBoost) rounds of the weak heads, interleaved with training.

    All of the boosting bookkeeping of a :class:`CBERLNet` fit (``docs/classifier.md``,
    "Boosting"); the arithmetic is in :mod:`sklearn_cberl.nn.mgnn`:

    * in every training mini-batch, :meth:`head_weights` runs one SAMME pass over the heads'
      current predictions: head ``m + 1`` is trained on head ``m``'s weights up-weighted on
      its mistakes (:func:`~sklearn_cberl.nn.mgnn.samme_weights`), and the heads'
      weighted errors are accumulated over the epoch;
    * after the training pass of every epoch, :meth:`on_training_pass_end` sets the heads'
      votes (``module_.estimator_weights``) to
      :func:`~sklearn_cberl.nn.mgnn.samme_alpha` of the epoch's mean errors and records
      ``samme_error`` / ``samme_alpha`` in the history, so the validation pass and the saved
      best weights use the votes of the same epoch.

    skorch has no callback hook inside the loss or between an epoch's training and validation
    passes, so ``CBERLNet.get_loss`` and ``CBERLNet.run_single_epoch`` call those two
    methods. The net's ``boosting`` and ``boosting_rate`` parameters (stored in model files)
    are read at use.
    """

    def initialize(self):
        self.error_sum_ = 0.0
        self.weight_sum_ = 0.0
        return self

    def on_epoch_begin(self, net, **kwargs):
        self.error_sum_ = 0.0
        self.weight_sum_ = 0.0

    def on_train_end(self, net, **kwargs):
        # The accumulators are tensors on the training device, outside the attributes skorch
        # maps to the CPU when a CUDA pickle is loaded without CUDA: keep none after fit.
        self.initialize()

    def head_weights(self, net, logits, y_true, weight):
        """Utterance weights of each head, shape (n, M), from the batch's train-mode logits
        (n, M, K); None when not boosting (one head, or ``boosting=False``)."""
        if not (net.boosting and logits.shape[1] > 1):
            return None
        miss = logits.detach().argmax(-1) != y_true.unsqueeze(-1)
        n_classes = logits.shape[-1]
        head_weight, errors, _ = samme_weights(miss, weight, n_classes, net.boosting_rate)
        batch_weight = weight.sum().detach()
        self.error_sum_ = self.error_sum_ + errors.detach() * batch_weight
        self.weight_sum_ = self.weight_sum_ + batch_weight
        return head_weight

    def on_training_pass_end(self, net):
        """Set the heads' votes from the errors of the training pass that just ended."""
        module = net.module_
        if not (net.boosting and module.estimator_weights.numel() > 1):
            return
        if float(self.weight_sum_) > 0:
            error = self.error_sum_ / self.weight_sum_
            alpha = samme_alpha(error, module.n_classes, net.boosting_rate)
            module.estimator_weights.copy_(alpha)
            net.history.record("samme_error", error.cpu().tolist())
            net.history.record("samme_alpha", alpha.cpu().tolist())


class CBERLNet(NeuralNet):
    """skorch net with CBERL's loss (Eq. 20) and the SAMME weighting of the heads.

    ``get_loss`` receives the module's per-node outputs. In training the utterances of every
    head are re-weighted by the ``samme_boosting`` callback (:class:`SAMMEBoosting`, a default
    callback of this net), which also sets the heads' votes after each training pass.

    Parameters
    ----------
    boosting : bool, default=True
        Train the heads SAMME-style (``ensemble="adaboost"``).
    boosting_rate : float, default=1.0
        Shrinkage of every head's alpha.
    **kwargs
        :class:`~skorch.NeuralNet` parameters.
    """

    def __init__(self, *args, boosting=True, boosting_rate=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.boosting = boosting
        self.boosting_rate = boosting_rate

    def get_default_callbacks(self):
        return [*super().get_default_callbacks(), ("samme_boosting", SAMMEBoosting())]

    def _boosting(self):
        return dict(self.callbacks_).get("samme_boosting")

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
        boosting = self._boosting()
        head_weight = None
        if boosting is not None:
            head_weight = boosting.head_weights(self, logits, y_true, weight)
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
        super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        boosting = self._boosting()
        if training and boosting is not None:
            boosting.on_training_pass_end(self)

    def set_device(self, device):
        """Move the fitted module and criterion to ``device`` (a ``torch.device``), now."""
        if torch.device(self.device) != device:
            self.module_.to(device)
            self.criterion_.to(device)
            self.device = str(device)

    def infer_dialogues(self, dataset, batch_size, output):
        """Eval-mode outputs over a :class:`DialogueDataset`, in its
        (dialogue-major) order: the ensemble's SAMME decision (``output="decision"``) or the
        graph embeddings (``"embedding"``), as a float32 array."""
        # A private generator: iterating a DataLoader draws a base seed from the global
        # torch RNG otherwise, and predict must leave the user's RNG state alone.
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=False,
            collate_fn=collate_dialogues,
            generator=torch.Generator(),
        )
        module = self.module_
        parts = []
        for batch in loader:
            logits, embedding, *_ = self.evaluation_step(batch)
            value = module.decision(logits) if output == "decision" else embedding
            parts.append(value.detach().cpu().numpy())
        if parts:
            return np.concatenate(parts)
        width = module.n_classes if output == "decision" else module.embedding_size
        return np.zeros((0, width), dtype=np.float32)


# --------------------------------------------------------------------------- setup
def _valid_f1(net, X, y, average="weighted"):
    """F1 (%) of the ensemble on the validation dialogues (skorch scorer): ``"weighted"`` is
    WAF1, ``"macro"`` weighs every emotion equally. Percent, as in every report."""
    logits = net.forward(X, device=net.device)[0]
    pred = net.module_.decision(logits).argmax(-1).cpu().numpy()
    weight = X.sample_weight.numpy()
    if not weight.sum() > 0:  # an all-zero-weight validation split: score it unweighted
        weight = None
    return 100 * f1_score(y, pred, average=average, sample_weight=weight, zero_division=0)


#: The classifier's ``early_stopping`` values -> the history key they monitor.
MONITORS = {"waf1": "valid_waf1", "macro_f1": "valid_macro_f1", "loss": "valid_loss"}


def make_net(
    *,
    module_params: dict,
    criterion_params: dict,
    valid_dataset,
    lr: float,
    weight_decay: float,
    max_epochs: int,
    batch_size: int,
    valid_batch_size: int,
    early_stopping,
    patience: int,
    boosting: bool,
    boosting_rate: float,
    device,
    verbose,
) -> CBERLNet:
    """The untrained :class:`CBERLNet` of a classifier.

    Parameters
    ----------
    module_params : dict
        Arguments of :class:`~sklearn_cberl.nn.mgnn.MGNN`.
    criterion_params : dict
        Arguments of :class:`~sklearn_cberl.nn.mgnn.CBERLLoss` (Eq. 19-20).
    valid_dataset : DialogueDataset or None
        The validation dialogues (None: no validation, no early stopping). With them the
        history records ``valid_waf1`` every epoch (and ``valid_macro_f1`` when it is
        monitored).
    lr, weight_decay, max_epochs, batch_size
        Adam's step size and L2 penalty (the lambda term of Eq. 19), epochs, dialogues per
        training batch.
    valid_batch_size : int
        Dialogues per validation batch (:func:`inference_batch_size`).
    early_stopping : {"waf1", "macro_f1", "loss"} or None
        The monitored validation quantity (:data:`MONITORS`).
    patience : int
    boosting, boosting_rate
        SAMME rounds of the heads (:class:`SAMMEBoosting`).
    device : torch.device
    verbose : int
        1: the epoch table; 2: also a per-batch progress bar in a terminal.
    """
    validating = valid_dataset is not None
    callbacks = []
    if validating:
        scorer = EpochScoring(_valid_f1, lower_is_better=False, name="valid_waf1")
        callbacks.append(("valid_waf1", scorer))
        if early_stopping == "macro_f1":
            macro = partial(_valid_f1, average="macro")
            scorer = EpochScoring(macro, lower_is_better=False, name="valid_macro_f1")
            callbacks.append(("valid_macro_f1", scorer))
    callbacks += training_callbacks(
        estimator="CBERLClassifier",
        validating=validating,
        early_stopping=early_stopping,
        patience=patience,
        verbose=verbose,
        monitor=MONITORS.get(early_stopping, "valid_loss"),
    )
    return CBERLNet(
        module=MGNN,
        **{f"module__{k}": v for k, v in module_params.items()},
        criterion=CBERLLoss,
        **{f"criterion__{k}": v for k, v in criterion_params.items()},
        optimizer=torch.optim.Adam,
        optimizer__weight_decay=weight_decay,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        iterator_train__collate_fn=collate_dialogues,
        iterator_valid__collate_fn=collate_dialogues,
        iterator_valid__batch_size=valid_batch_size,
        train_split=predefined_split(valid_dataset) if validating else None,
        callbacks=callbacks,
        # Boosting diagnostics stay in the history but out of the epoch table, and the
        # table has no colour codes when it goes to a file.
        callbacks__print_log=PlainPrintLog(
            "CBERLClassifier", keys_ignored=["samme_error", "samme_alpha"]
        ),
        device=str(device),
        verbose=verbose,
        boosting=boosting,
        boosting_rate=boosting_rate,
    )


def boosting_summary(net, best_epoch: int) -> dict:
    """The heads' SAMME votes (``estimator_weights_``) and their weighted errors in the kept
    epoch (``estimator_errors_``; NaN for a single head)."""
    weights = net.module_.estimator_weights.detach().cpu().numpy()
    errors = np.full(len(weights), np.nan)
    if len(weights) > 1 and "samme_error" in net.history[best_epoch - 1]:
        errors = np.asarray(net.history[best_epoch - 1, "samme_error"])
    return {"estimator_weights_": weights, "estimator_errors_": errors}
