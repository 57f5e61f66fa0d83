"""The skorch net inside ``CBERLClassifier``: CBERL's loss and the SAMME boosting callback.

:class:`_CBERLNet` is the :class:`~skorch.NeuralNet` that trains
:class:`~sklearn_cberl.nn.mgnn.MGNN` with CBERL's loss (Eq. 20) and runs it for inference;
:class:`SAMMEBoosting` holds the AdaBoost (SAMME) rounds of the weak heads. How the
estimator's parameters configure the net: :mod:`sklearn_cberl._net_config`.

Not under ``nn/``: this is skorch training machinery (and uses the package's divergence
errors), not a torch module or loss.
"""

from __future__ import annotations

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.utils import to_tensor

from ._utils import check_finite_loss
from .nn.boosting import samme_alpha, samme_weights
from .nn.data import collate_dialogues

__all__ = ["SAMMEBoosting"]


# --------------------------------------------------------------------------- boosting
class SAMMEBoosting(Callback):
    """The SAMME (multi-class AdaBoost) rounds of the weak heads, interleaved with training.

    All of the boosting bookkeeping of a :class:`_CBERLNet` fit (``docs/classifier.md``,
    "Boosting"); the arithmetic is :mod:`sklearn_cberl.nn.boosting`:

    * in every training mini-batch, :meth:`head_weights` runs one SAMME pass over the heads'
      current predictions: head ``m + 1`` is trained on head ``m``'s weights up-weighted on
      its mistakes (:func:`~sklearn_cberl.nn.boosting.samme_weights`), and the heads'
      weighted errors are accumulated over the epoch;
    * after the training pass of every epoch, :meth:`on_training_pass_end` sets the heads'
      votes (``module_.estimator_weights``) to
      :func:`~sklearn_cberl.nn.boosting.samme_alpha` of the epoch's mean errors and records
      ``samme_error`` / ``samme_alpha`` in the history, so the validation pass and the saved
      best weights use the votes of the same epoch.

    skorch has no callback hook inside the loss or between an epoch's training and validation
    passes, so ``_CBERLNet.get_loss`` and ``_CBERLNet.run_single_epoch`` call those two
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


# --------------------------------------------------------------------------- skorch net
class _CBERLNet(NeuralNet):
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
        """Eval-mode outputs over a :class:`~sklearn_cberl.nn.data.DialogueDataset`, in its
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
