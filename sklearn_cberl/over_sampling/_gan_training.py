"""How EmoGAN is trained and sampled (paper Eq. 1-7 and the sampling step).

Everything :class:`~sklearn_cberl.over_sampling.EmoGANSampler` does with torch, on
standardised tensors already on the training device; the estimator (:mod:`._emogan`)
validates the data, standardises it, splits off the validation rows and assembles the
output. In the order a fit uses them:

* **translation sources** - :func:`nearest_classes` and :class:`SourceSampler` draw the
  utterances ``T_i`` that ``G_T->S(T_i, Z_r)`` translates into a requested class ``r`` (Eq. 2
  and sampling time): from ``r`` itself with probability ``self_fraction``, otherwise from its
  nearest classes;
* **the emotion classifiers** - :func:`train_emotion_classifier` trains ``EC_s``
  (class-balanced cross-entropy) through skorch and returns it frozen;
  :class:`CrossFittedJudges` are the filter's judges: ``k`` copies of ``EC_s``, each trained
  without one fold of the real rows, a candidate being judged by the copy that never saw its
  source row. ``EC_s`` itself cannot judge: the generator was trained to satisfy it (``L_RC``,
  Eq. 2) on the very rows it was fitted on, and it accepted 100 % of candidates;
  :func:`fit_judges` trains both;
* **the GAN** - :class:`EmoGANNet`, the skorch net of the two-player game (generator step on
  Eq. 5, then discriminator step on Eq. 3, per minibatch), and :func:`train_gan`, which
  builds and fits it;
* **sampling** - :func:`generate`: vectorised rounds of candidates, the filter and its
  fallback.

Every network trains through skorch (:mod:`sklearn_cberl._torch_estimator`): the same
callbacks (finite-loss check, early stopping, epoch table) and the same history format as
every other estimator of the package.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.model_selection import KFold, StratifiedKFold
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.helper import predefined_split
from skorch.utils import to_tensor

from .._torch_estimator import (
    PlainPrintLog,
    RowDataset,
    TermsNet,
    fitted_history,
    rows_as_batch,
    torch_seed,
    training_callbacks,
    user_stacklevel,
)
from ..exceptions import SyntheticRowsWarning, TrainingDivergedError
from ..nn.gan import EmotionClassifier

__all__ = [
    "MAX_CANDIDATES_PER_ROW",
    "MAX_FILTER_ROUNDS",
    "MIN_LIFT",
    "RECOGNISED",
    "PROBE_SIZE",
    "CrossFittedJudges",
    "EmoGANNet",
    "SourceSampler",
    "acceptance_weights",
    "choose_generation",
    "fit_judges",
    "generate",
    "nearest_classes",
    "probe_sources",
    "proximity_weights",
    "real_acceptance",
    "translate_candidates",
    "train_emotion_classifier",
    "train_gan",
]

#: Candidate rounds drawn per class at most (each sized for the missing rows at the
#: acceptance rate seen so far).
MAX_FILTER_ROUNDS = 10
#: Candidates drawn per requested row at most: the bound on the filter's extra draws (at
#: 2 % acceptance it still fills the request).
MAX_CANDIDATES_PER_ROW = 50
#: ``choose_generation``: the judges recognise a class when they accept this share of its
#: real rows (MOSI's negatives: 1.0; MELD-starved's anger and surprise: 0.1-0.3) ...
RECOGNISED = 0.5
#: ... and neighbour translations are trusted for a class they do not recognise when they
#: are accepted this many times as often as its real rows (demo data: 3.6-17; MELD: <= 2).
MIN_LIFT = 3.0
#: Candidates translated from each source class to measure its acceptance
#: (:func:`probe_sources`).
PROBE_SIZE = 256
NAME = "EmoGANSampler"
HINT = (
    "Lower `lr` (currently {lr}) or `lambda_adversarial`, or check the input features for "
    "extreme values."
)
#: Eq. 5's terms (and the mode-seeking term), in :meth:`EmoGAN.generator_loss` names.
TERMS = ("identity", "adversarial", "classification", "target_classification", "diversity")
#: The terms of the validation loss (Eq. 5 without its adversarial term).
VALID_TERMS = ("identity", "classification", "target_classification")
#: Validation rows per batch: the validation loss is one pass, whatever ``batch_size``.
VALID_CHUNK = 8192


# --------------------------------------------------------------------------- sources
def nearest_classes(Xs: np.ndarray, y_codes: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    """For each class, the ``k`` other classes with the closest centroid (Euclidean)."""
    k = min(k, n_classes - 1)
    counts = np.bincount(y_codes, minlength=n_classes).astype(np.float64)
    sums = np.zeros((n_classes, Xs.shape[1]))
    np.add.at(sums, y_codes, Xs)
    centroids = sums / np.maximum(counts, 1)[:, None]
    dist = ((centroids[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    return np.argsort(dist, axis=1, kind="stable")[:, :k]


def proximity_weights(neighbours: np.ndarray, self_fraction: float) -> np.ndarray:
    """Source-class weights by proximity: row ``r`` puts ``self_fraction`` on ``r`` itself
    and the rest evenly on its nearest classes (all of it on ``r`` without neighbours)."""
    n_classes, k = neighbours.shape
    weights = np.zeros((n_classes, n_classes))
    for r in range(n_classes):
        if k:
            weights[r, neighbours[r]] = (1.0 - self_fraction) / k
            weights[r, r] = self_fraction
        else:
            weights[r, r] = 1.0
    return weights


class SourceSampler:
    """Draws source utterances for a requested class ``r`` on the training device.

    ``weights[r, s]`` is the probability that a source for class ``r`` comes from class
    ``s`` (rows sum to 1; :func:`proximity_weights` during GAN training, the measured
    acceptance of :func:`acceptance_weights` at sampling time); inside a class every
    utterance is equally likely. Tensor ops over the whole request.
    """

    def __init__(self, y_codes, weights, device):
        n_classes = len(weights)
        order = np.argsort(y_codes, kind="stable")
        counts = np.bincount(y_codes, minlength=n_classes)
        self.rows = torch.as_tensor(order, device=device)
        self.offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)[:-1]]), device=device)
        self.counts = torch.as_tensor(counts, device=device)
        self.labels = torch.as_tensor(y_codes, dtype=torch.long, device=device)
        self.y_codes = np.asarray(y_codes)
        self.weights = torch.as_tensor(np.asarray(weights), dtype=torch.float64, device=device)

    def with_weights(self, weights) -> SourceSampler:
        """The same utterances with other source-class weights."""
        return SourceSampler(self.y_codes, weights, self.rows.device)

    def draw(self, r: torch.Tensor) -> torch.Tensor:
        """Row indices of one source utterance per entry of ``r`` (LongTensor of class codes)."""
        if len(r) == 0:
            return r.clone()
        cls = torch.multinomial(self.weights[r], 1).squeeze(1)
        return self.draw_from(cls)

    def draw_from(self, cls: torch.Tensor) -> torch.Tensor:
        """Row indices of one utterance of each class in ``cls``, uniformly inside the class."""
        counts = self.counts[cls]
        within = (torch.rand(cls.shape, device=cls.device) * counts).long()
        within = torch.minimum(within, counts - 1)
        return self.rows[self.offsets[cls] + within]


# --------------------------------------------------------------------------- EC_s and judges
def train_emotion_classifier(
    X_t, y_t, n_classes, *, hidden_size, max_epochs, lr, batch_size, verbose=0, title=NAME
):
    """An ``EC_s`` trained through skorch with class-balanced cross-entropy, returned frozen.

    Balanced weights (as ``class_weight="balanced"``): a classifier biased to the majority
    would push the rare-class translations of Eq. 2 towards the majority and reject most
    rare-class candidates in the filter. Adam with ``weight_decay=1e-4``; no validation set
    (``max_epochs`` epochs, the last weights kept).

    Parameters
    ----------
    X_t, y_t : Tensor
        Standardised rows and their class codes, on the training device.
    n_classes, hidden_size, max_epochs, lr, batch_size, verbose
        As the sampler's parameters (``max_epochs`` is ``classifier_max_epochs``).
    title : str, default="EmoGANSampler"
        Title of the epoch table and name in divergence messages.

    Returns
    -------
    classifier : EmotionClassifier
        In eval mode, ``requires_grad`` off.
    history : list of dict
        One dict per epoch: ``epoch``, ``train_loss``, ``dur``.
    """
    counts = torch.bincount(y_t, minlength=n_classes).to(X_t.dtype)
    weight = counts.sum() / (n_classes * counts.clamp(min=1))
    net = NeuralNet(
        EmotionClassifier(X_t.shape[1], n_classes, hidden_size),
        torch.nn.CrossEntropyLoss,
        criterion__weight=weight,
        optimizer=torch.optim.Adam,
        optimizer__weight_decay=1e-4,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        train_split=None,
        iterator_train__shuffle=True,
        iterator_train__collate_fn=rows_as_batch,
        callbacks=training_callbacks(
            estimator=title,
            validating=False,
            early_stopping=None,
            patience=1,
            verbose=verbose,
            hint="EC_s pre-training diverged. " + HINT.format(lr=lr),
        ),
        callbacks__print_log=PlainPrintLog(title),
        device=str(X_t.device),
        verbose=verbose,
    )
    net.fit(RowDataset(X_t, y_t), y=None)
    classifier = net.module_.eval().requires_grad_(False)
    return classifier, fitted_history(net)["history_"]


class CrossFittedJudges:
    """``k`` emotion classifiers, each fitted without one fold of the real rows.

    Parameters
    ----------
    X_t, y_t : Tensor
        Standardised real rows and their class codes.
    n_classes, n_folds, random_state
        Folds are stratified when every class has at least ``n_folds`` rows.
    **train
        Passed to :func:`train_emotion_classifier`.
    """

    def __init__(self, X_t, y_t, n_classes, n_folds, random_state, **train):
        y = y_t.cpu().numpy()
        stratify = np.bincount(y, minlength=n_classes).min() >= n_folds
        splitter = (StratifiedKFold if stratify else KFold)(
            n_splits=n_folds, shuffle=True, random_state=random_state
        )
        self.fold = torch.empty(len(y), dtype=torch.long, device=y_t.device)
        self.models = []
        for i, (fit_rows, held) in enumerate(splitter.split(np.zeros(len(y)), y)):
            self.fold[torch.as_tensor(held, device=y_t.device)] = i
            rows = torch.as_tensor(fit_rows, device=y_t.device)
            title = f"{NAME} (filter judge {i + 1}/{n_folds})"
            model, _ = train_emotion_classifier(
                X_t[rows], y_t[rows], n_classes, title=title, **train
            )
            self.models.append(model)

    @torch.no_grad()
    def proba(self, x: torch.Tensor, source_rows: torch.Tensor) -> torch.Tensor:
        """Class probabilities of each candidate by the judge that never saw its source."""
        out = x.new_empty(x.shape[0], self.models[0].net[-1].out_features)
        folds = self.fold[source_rows]
        for i, model in enumerate(self.models):
            rows = folds == i
            if bool(rows.any()):
                out[rows] = torch.softmax(model(x[rows]), dim=1)
        return out


def fit_judges(X_t, y_t, n_classes, *, filter_folds, seed, **train):
    """``EC_s`` on all real rows (frozen: the classifier of Eq. 1-2 the generator trains on)
    and, with ``filter_folds``, the filter's cross-fitted judges (else None).

    Returns
    -------
    classifier, history, judges
        ``EC_s``, its per-epoch history (``classifier_history_``) and the judges.
    """
    classifier, history = train_emotion_classifier(
        X_t, y_t, n_classes, title=f"{NAME} (EC_s)", **train
    )
    if not filter_folds:
        return classifier, history, None
    # The filter's judges never saw the source of the candidate they judge.
    judges = CrossFittedJudges(X_t, y_t, n_classes, filter_folds, seed % (2**31), **train)
    return classifier, history, judges


# --------------------------------------------------------------------------- the GAN
class EmoGANNet(TermsNet):
    """The skorch net of EmoGAN's two-player training (Eq. 5-7).

    The module is an :class:`~sklearn_cberl.nn.gan.EmoGAN`; two optimizers (``optimizer_``
    for both generators, ``optimizer_discriminator_`` for the discriminators, both of class
    ``optimizer`` with the ``optimizer__*`` arguments) alternate inside every minibatch:
    :meth:`train_step` takes one step of the generators on Eq. 5 (the adversarial term
    against fixed discriminators, Eq. 7), then one of the discriminators on Eq. 3 (Eq. 6)
    against the rows just generated. The second optimizer is added the way skorch's
    documentation ("Subclassing NeuralNet") adds components, in :meth:`initialize_optimizer`;
    the alternating updates are a custom :meth:`train_step` (skorch steps all of its
    optimizers on one loss otherwise). Everything else - batches, validation, callbacks,
    history, early stopping with the best epoch's ``EmoGAN`` restored - is skorch's own, so
    no hand-written loop is left.

    Batches are ``(S, y)``: real utterances and their class codes
    (:class:`~sklearn_cberl._torch_estimator.RowDataset`). Each is paired with requested
    classes ``r``, drawn uniformly from ``targets``, and utterances ``T`` drawn from ``pool``
    by ``sources`` for those classes, as at sampling time (Eq. 2).

    Recorded per epoch: ``train_loss`` (Eq. 5 + ``lambda_diversity`` x the mode-seeking
    term, the generators' objective), ``train_<term>`` for every term of
    :data:`TERMS` and ``train_discriminator`` (negated Eq. 3, the discriminators' objective);
    with validation rows ``valid_loss`` (Eq. 5 without its adversarial term, which is
    measured against discriminators that change every epoch and so does not compare across
    epochs) and ``valid_<term>`` for :data:`VALID_TERMS`. The validation draws (``r``,
    ``T``, noise) come from a torch RNG reseeded with ``valid_seed`` every epoch and forked
    from the training stream: epochs compare like with like, and the fit is the same with
    or without a validation set.

    Parameters
    ----------
    module : EmoGAN
    classifier : EmotionClassifier
        The frozen ``EC_s`` of ``L_C`` / ``L_RC`` (Eq. 1-2); never trained, never put in
        training mode.
    pool : Tensor
        All standardised real rows (the translation sources index it).
    sources : SourceSampler
    targets : LongTensor
        Class codes being over-sampled (``r`` is drawn from them).
    lambdas : dict
        ``lambda_identity``, ``lambda_adversarial``, ``lambda_classification``,
        ``lambda_diversity``.
    valid_seed : int, default=0
    **kwargs
        :class:`~skorch.NeuralNet` parameters.
    """

    terms = (*TERMS, "discriminator")

    def __init__(
        self, module, *, classifier, pool, sources, targets, lambdas, valid_seed=0, **kwargs
    ):
        # Set before NeuralNet.__init__: skorch registers a torch module assigned to a
        # constructed net as a component to move, switch to training mode and optimise;
        # EC_s is fixed and stays in eval mode (no dropout) while the generators learn.
        self.classifier = classifier
        self.pool = pool
        self.sources = sources
        self.targets = targets
        self.lambdas = dict(lambdas)
        self.valid_seed = valid_seed
        super().__init__(module, **kwargs)

    def initialize_optimizer(self, *args, **kwargs):
        # Both players get the ``optimizer`` arguments (lr, betas): Eq. 6-7 use one Adam
        # setting, and one ``lr`` keeps the sampler's single learning-rate parameter.
        gan = self.module_
        args, kwargs = self.get_params_for_optimizer("optimizer", gan.named_generator_parameters())
        self.optimizer_ = self.optimizer(*args, **kwargs)
        named = gan.discriminators.named_parameters(prefix="discriminators")
        args, kwargs = self.get_params_for_optimizer("optimizer", named)
        self.optimizer_discriminator_ = self.optimizer(*args, **kwargs)
        return self

    def _pair(self, batch):
        """``(S, y, T, r)`` of a batch: the requested classes and the utterances to translate
        are drawn per minibatch (Eq. 2)."""
        Xi, yi = unpack_data(batch)
        s, y_s = to_tensor(Xi, device=self.device), to_tensor(yi, device=self.device)
        r = self.targets[torch.randint(len(self.targets), (len(s),), device=s.device)]
        return s, y_s, self.pool[self.sources.draw(r)], r

    def _record(self, prefix, names, terms):
        values = torch.stack([terms[name] for name in names]).tolist()  # one device sync
        for name, value in zip(names, values):
            self.history.record_batch(f"{prefix}_{name}", value)

    def train_step(self, batch, **fit_params):
        self._set_training(True)
        gan = self.module_
        s, y_s, t, r = self._pair(batch)
        # Eq. 7: the generators' step on Eq. 5, against discriminators that do not move.
        gan.discriminators.requires_grad_(False)
        total, terms, fake = gan.generator_loss(self.classifier, s, y_s, t, r, **self.lambdas)
        self.optimizer_.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer_.step()
        gan.discriminators.requires_grad_(True)
        # Eq. 6: the discriminators' step on Eq. 3, real rows against the rows just made.
        d_loss = gan.discriminator_loss(torch.cat([s, t]), fake.detach())
        self.optimizer_discriminator_.zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizer_discriminator_.step()
        self._record("train", self.terms, {**terms, "discriminator": d_loss.detach()})
        return {"loss": total.detach(), "y_pred": None}

    def validation_step(self, batch, **fit_params):
        self._set_training(False)
        with torch.no_grad():
            s, y_s, t, r = self._pair(batch)
            _, terms, _ = self.module_.generator_loss(self.classifier, s, y_s, t, r, **self.lambdas)
        classification = terms["classification"] + terms["target_classification"]
        loss = (
            self.lambdas["lambda_identity"] * terms["identity"]
            + self.lambdas["lambda_classification"] * classification
        )
        self._record("valid", VALID_TERMS, terms)
        return {"loss": loss, "y_pred": None}

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if training or iterator is None:
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
        with torch_seed(self.valid_seed, self.device):  # the same draws every epoch
            return super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)


def train_gan(
    gan, classifier, X_t, y_t, sources, targets, *, rows, valid, lambdas, max_epochs,
    batch_size, lr, early_stopping, patience, verbose, seed,
) -> dict:  # fmt: skip
    """Train ``gan`` in place through :class:`EmoGANNet`; return its fitted history.

    Parameters
    ----------
    gan : EmoGAN
    classifier : EmotionClassifier
        The frozen ``EC_s``.
    X_t, y_t : Tensor
        Standardised real rows and their class codes (translation sources index ``X_t``).
    sources : SourceSampler
    targets : LongTensor
        Class codes being over-sampled.
    rows : LongTensor
        The rows minibatches are drawn from (all rows but the held-out validation rows).
    valid : tuple (rows, codes) of Tensor, or None
        Validation rows (standardised) and their class codes.
    lambdas : dict
        Weights of Eq. 5 and the mode-seeking term.
    max_epochs, batch_size, lr, early_stopping, patience, verbose
        As the sampler's parameters.
    seed : int
        Seed of the validation draws.

    Returns
    -------
    dict
        ``history_``, ``n_iter_``, ``best_epoch_``
        (:func:`~sklearn_cberl._torch_estimator.fitted_history`).
    """
    net = EmoGANNet(
        gan,
        classifier=classifier,
        pool=X_t,
        sources=sources,
        targets=targets,
        lambdas=lambdas,
        valid_seed=seed,
        # beta1 = 0.5: the usual Adam momentum for GANs (DCGAN); 0.9 oscillates more.
        optimizer=torch.optim.Adam,
        optimizer__betas=(0.5, 0.999),
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train__shuffle=True,
        iterator_train__collate_fn=rows_as_batch,
        iterator_valid__collate_fn=rows_as_batch,
        iterator_valid__batch_size=VALID_CHUNK,
        train_split=None if valid is None else predefined_split(RowDataset(*valid)),
        callbacks=training_callbacks(
            estimator=NAME,
            validating=valid is not None,
            early_stopping=early_stopping,
            patience=patience,
            verbose=verbose,
            hint=HINT.format(lr=lr),
        ),
        callbacks__print_log=PlainPrintLog(f"{NAME} (GAN)"),
        device=str(X_t.device),
        verbose=verbose,
    )
    net.fit(RowDataset(X_t[rows], y_t[rows]), y=None)
    gan.eval()
    return fitted_history(net)


# --------------------------------------------------------------------------- sampling
@torch.no_grad()
def accepts(judges, x, source_rows, code: int, threshold=None):
    """The filter's verdict on candidates ``x`` of class ``code`` translated from
    ``source_rows``: the judge that never saw the source assigns it to ``code`` or, with a
    ``threshold``, gives ``code`` a probability of at least ``threshold``.

    Returns
    -------
    ok : BoolTensor
    proba : Tensor
        The judges' class probabilities.
    """
    proba = judges.proba(x, source_rows)
    ok = proba.argmax(dim=1) == code
    if threshold is not None:
        ok |= proba[:, code] >= threshold
    return ok, proba


@torch.no_grad()
def class_threshold(judges, X_t, sources, code: int, quantile) -> float | None:
    """The ``quantile`` of the probabilities of class ``code`` that the judges give the real
    rows of that class (each judged by the judge that never saw it); None without a
    ``quantile`` or rows."""
    rows = class_rows(sources, code)
    if quantile is None or not len(rows):
        return None
    proba = judges.proba(X_t[rows], rows)[:, code]
    # "lower": at least 1 - quantile of the real rows reach the threshold
    return float(torch.quantile(proba.double(), float(quantile), interpolation="lower"))


def class_rows(sources, code: int) -> torch.Tensor:
    """Indices of the real rows of class ``code``."""
    start = int(sources.offsets[code])
    return sources.rows[start : start + int(sources.counts[code])]


@torch.no_grad()
def translate_candidates(gan, X_t, src, code: int, kernel=None):
    """Candidates of class ``code`` translated from the rows ``src`` (plus the smoothing
    ``kernel``'s noise when given), and which are finite; non-finite ones are zeroed so the
    judges can score the batch. The one way both :func:`probe_sources` and :func:`generate`
    make candidates, so that the probe measures what sampling will draw."""
    x = gan.translate(X_t[src], torch.full_like(src, code))
    if kernel is not None:
        x = x + torch.randn_like(x) * kernel
    finite = torch.isfinite(x).all(dim=1)
    return torch.where(finite[:, None], x, torch.zeros_like(x)), finite


def probe_sources(
    gan, judges, X_t, sources, code: int, candidates, n_probe: int = PROBE_SIZE, threshold=None,
    kernel=None,
):  # fmt: skip
    """Share of translations into class ``code`` the filter accepts, per source class.

    ``n_probe`` utterances of each class in ``candidates`` (uniform, with replacement) are
    translated with ``G_T->S(x, Z_code)`` and judged by the cross-fitted judge that never saw
    each source, as at sampling time.

    Returns
    -------
    ndarray of shape (len(candidates),)
        The acceptance rate of each candidate source class.
    """
    device = X_t.device
    cls = torch.as_tensor(np.asarray(candidates), dtype=torch.long, device=device)
    cls = cls.repeat_interleave(n_probe)
    src = sources.draw_from(cls)
    x, ok = translate_candidates(gan, X_t, src, code, kernel)
    ok &= accepts(judges, x, src, code, threshold)[0]
    return ok.view(len(candidates), n_probe).double().mean(dim=1).cpu().numpy()


def real_acceptance(judges, X_t, sources, code: int, threshold=None) -> float:
    """Share of the real rows of class ``code`` that the filter would accept: each judged by
    the judge that never saw it (what the acceptance of candidates compares with)."""
    rows = class_rows(sources, code)
    if not len(rows):
        return float("nan")
    return float(accepts(judges, X_t[rows], rows, code, threshold)[0].double().mean())


def smoothing_kernel(X_t, sources, code: int, smoothing: float):
    """Per-feature standard deviation of the Gaussian kernel added to translations into
    class ``code``: ``smoothing`` x Silverman's factor x the class's per-feature standard
    deviation (the smoothed bootstrap's kernel); None when ``smoothing`` is 0."""
    rows = class_rows(sources, code)
    if not smoothing or len(rows) < 2:
        return None
    n, d = len(rows), X_t.shape[1]
    factor = (4.0 / ((d + 2) * n)) ** (1.0 / (d + 4))
    return smoothing * factor * X_t[rows].std(dim=0)


def choose_generation(real: float, neighbour_acceptance) -> str:
    """``"translate"`` when the filter can vouch for translations from neighbour classes,
    else ``"same_class"``.

    The judges' verdict on a translated neighbour utterance means something when they
    recognise the class's own real rows (``real`` >= :data:`RECOGNISED`), or when the best
    neighbour's translations are accepted at least :data:`MIN_LIFT` times as often as the
    class's real rows (the generator moved them where the judges clearly see the class).
    Otherwise an accepted translation is indistinguishable from the judges' false
    positives (balanced judges of a class they rarely recognise call a wide region by its
    name), and the class is generated from its own utterances.

    Parameters
    ----------
    real : float
        Share of the class's real rows the filter accepts (:func:`real_acceptance`).
    neighbour_acceptance : array-like
        Acceptance of the translations from each neighbour class (:func:`probe_sources`).
    """
    neighbour = float(np.max(neighbour_acceptance)) if len(neighbour_acceptance) else 0.0
    if real >= RECOGNISED or (neighbour > 0 and neighbour >= MIN_LIFT * real):
        return "translate"
    return "same_class"


def acceptance_weights(prior: np.ndarray, acceptance: np.ndarray) -> np.ndarray:
    """Source-class weights for one requested class: ``prior`` (proximity) times the
    measured ``acceptance``, normalised; the prior when no source class is accepted."""
    weights = prior * acceptance
    total = weights.sum()
    return weights / total if total > 0 else prior / prior.sum()


@torch.no_grad()
def generate(
    gan, judges, X_t, sources, code: int, count: int, *, label, lr, fill=None, expected=0.5,
    threshold=None, kernel=None,
):  # fmt: skip
    """Up to ``count`` synthetic rows of class ``code`` (standardised) and their sources.

    Vectorised rounds of candidates ``G_T->S(x, Z_r)``. With ``judges`` (the filter) a
    candidate is kept only when the cross-fitted judge that never saw its source row
    assigns it to ``code``. Each round draws enough candidates for the missing rows at the
    acceptance rate seen so far (``expected`` before the first round), for at most
    :data:`MAX_FILTER_ROUNDS` rounds and :data:`MAX_CANDIDATES_PER_ROW` x ``count``
    candidates. If fewer pass, fewer rows are returned and a :class:`SyntheticRowsWarning`
    gives the counts - unless ``fill="rejected"``, which fills the remainder with the
    rejected candidates of highest judged probability (the behaviour before the filter was
    obeyed; it adds rows a judge assigns to another class). Non-finite candidates are never
    kept.

    Returns
    -------
    rows, sources : ndarray
        The synthetic rows and the index of the real row each was translated from.
    stats : dict
        ``requested``, ``candidates``, ``accepted``, ``filled``, ``added`` and ``sources``
        (distinct source utterances of the added rows) - ``filter_stats_``.
    acceptance : dict
        Share accepted: ``all``, ``same_class``, ``neighbour_class``, and ``real``: the
        share of the real rows of the class the judges accept (:func:`real_acceptance`) -
        ``acceptance_rate_``.
    """
    device = X_t.device
    label = label.item() if isinstance(label, np.generic) else label  # repr 1, not np.int64(1)
    kept_x, kept_src = [], []
    best_x = X_t.new_zeros((0, X_t.shape[1]))
    best_src = torch.zeros(0, dtype=torch.long, device=device)
    best_p = X_t.new_zeros(0)
    # candidates and accepted ones by source kind: [same class, neighbour class]
    tried = torch.zeros(2, dtype=torch.long, device=device)
    passed = torch.zeros(2, dtype=torch.long, device=device)
    budget = MAX_CANDIDATES_PER_ROW * count
    remaining, drawn, rounds = count, 0, 0
    while remaining > 0 and rounds < MAX_FILTER_ROUNDS and drawn < budget:
        rounds += 1
        m = remaining
        if judges is not None:
            seen = int(tried.sum())
            rate = float(passed.sum()) / seen if seen else expected
            m = math.ceil(1.25 * remaining / max(rate, 1.0 / MAX_CANDIDATES_PER_ROW))
            m = min(max(m, 32), budget - drawn)
        src = sources.draw(torch.full((m,), code, dtype=torch.long, device=device))
        x, finite = translate_candidates(gan, X_t, src, code, kernel)
        drawn += m
        ok = finite
        if judges is not None:
            verdict, proba = accepts(judges, x, src, code, threshold)
            ok = ok & verdict
        kind = (sources.labels[src] != code).long()  # 0 same class, 1 neighbour
        tried += torch.bincount(kind, minlength=2)
        passed += torch.bincount(kind[ok], minlength=2)
        accepted = torch.nonzero(ok).squeeze(1)[:remaining]
        kept_x.append(x[accepted])
        kept_src.append(src[accepted])
        remaining -= len(accepted)
        if judges is not None and fill == "rejected":
            # Keep the best `remaining` rejected candidates for the fallback fill.
            rejected = torch.nonzero(finite & ~ok).squeeze(1)
            best_x = torch.cat([best_x, x[rejected]])
            best_src = torch.cat([best_src, src[rejected]])
            best_p = torch.cat([best_p, proba[rejected, code]])
            top = torch.argsort(best_p, descending=True, stable=True)[:count]
            best_x, best_src, best_p = best_x[top], best_src[top], best_p[top]
    accepted = count - remaining
    filled = 0
    if remaining > 0 and judges is None:
        raise TrainingDivergedError(
            f"{NAME}: the generator produced non-finite rows for class {label!r}. "
            + HINT.format(lr=lr)
        )
    if remaining > 0 and fill == "rejected" and len(best_p):
        filled = min(remaining, len(best_p))
        kept_x.append(best_x[:filled])
        kept_src.append(best_src[:filled])
        warnings.warn(
            f"{NAME}: only {accepted} of {count} synthetic rows of class {label!r} "
            f"passed the filter in {drawn} candidates; fill='rejected' added {filled} "
            "rejected candidates (those the judges rated most likely of that class), rows "
            "an independent judge assigns to another class. See acceptance_rate_.",
            SyntheticRowsWarning,
            stacklevel=user_stacklevel(),
        )
    elif remaining > 0:
        rate = float(passed.sum()) / max(int(tried.sum()), 1)
        warnings.warn(
            f"{NAME}: only {accepted} of {count} synthetic rows of class {label!r} passed "
            f"the filter ({drawn} candidates, {rate:.0%} accepted); {accepted} added, "
            f"{count - accepted} fewer than requested (n_synthetic_, filter_stats_). More "
            "GAN epochs may help; filter_synthetic=False keeps every candidate.",
            SyntheticRowsWarning,
            stacklevel=user_stacklevel(),
        )
    added = accepted + filled
    src_all = torch.cat(kept_src) if kept_src else torch.zeros(0, dtype=torch.long)
    stats = {
        "requested": count,
        "candidates": drawn,
        "accepted": accepted,
        "filled": filled,
        "added": added,
        "sources": int(torch.unique(src_all).numel()),
    }
    tried, passed = tried.tolist(), passed.tolist()
    acceptance = {
        "all": sum(passed) / sum(tried) if sum(tried) else float("nan"),
        "same_class": passed[0] / tried[0] if tried[0] else float("nan"),
        "neighbour_class": passed[1] / tried[1] if tried[1] else float("nan"),
        "real": float("nan") if judges is None else real_acceptance(
            judges, X_t, sources, code, threshold
        ),
    }
    rows = torch.cat(kept_x) if kept_x else X_t.new_zeros((0, X_t.shape[1]))
    return rows.cpu().numpy(), src_all.cpu().numpy(), stats, acceptance
