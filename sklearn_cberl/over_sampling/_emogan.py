"""``EmoGANSampler`` (paper Sec. IV-A-1, Eq. 1-7): validates the data (training rows,
``validation_data``, the dialogue-level validation split: :mod:`sklearn_cberl.conversation`),
standardises it, and ties together the networks (:mod:`sklearn_cberl.nn.gan`), their training
and sampling (:mod:`._gan_training`, on the toolkit of :mod:`sklearn_cberl._torch_estimator`)
and the placement of the synthetic rows (:func:`sklearn_cberl.conversation.assemble_resampled`).

To follow ``fit_resample``: this module, :mod:`._gan_training`, :mod:`sklearn_cberl.nn.gan`,
:mod:`sklearn_cberl.conversation` and :mod:`sklearn_cberl._torch_estimator`."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from imblearn.over_sampling.base import BaseOverSampler
from imblearn.utils import check_sampling_strategy, check_target_type
from sklearn.base import _fit_context
from sklearn.preprocessing import StandardScaler, label_binarize
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length

from .._config import uses_torch_threads
from .._torch_estimator import (
    TRAINING_CONSTRAINTS,
    TorchEstimatorMixin,
    resolve_device,
    seed_from,
    torch_seed,
)
from ..conversation import (
    PLACEMENTS,
    assemble_resampled,
    check_conversations,
    check_labels,
    check_validation_data,
    densify_sparse_frame,
    validation_split,
    wrap_like,
)
from ..exceptions import TrainingDivergedError
from ..nn import gan as _gan
from ..strategies import UpToRatio
from ._gan_training import (
    HINT,
    NAME,
    SourceSampler,
    acceptance_weights,
    choose_generation,
    class_threshold,
    fit_judges,
    generate,
    nearest_classes,
    probe_sources,
    proximity_weights,
    real_acceptance,
    smoothing_kernel,
    train_gan,
)

__all__ = ["EmoGANSampler"]

_LAMBDAS = ("lambda_identity", "lambda_adversarial", "lambda_classification", "lambda_diversity")


class EmoGANSampler(TorchEstimatorMixin, BaseOverSampler):
    """Over-sample emotions with CBERL's multimodal emotion cycle-GAN (paper Sec. IV-A-1).

    Two generators (``G_S->T`` and ``G_T->S``, the latter conditioned on an emotion one-hot
    ``Z``), one discriminator per modality ``D_T,F`` and a frozen emotion classifier ``EC_s``
    are trained with the EmoGAN loss (Eq. 5 = ``lambda_identity`` x identity Eq. 4 +
    ``lambda_adversarial`` x adversarial Eq. 3 + ``lambda_classification`` x (``L_C`` Eq. 1 +
    ``L_RC`` Eq. 2)), alternating Adam updates of the generators (Eq. 7) and the
    discriminators (Eq. 6) in every minibatch; every network trains through skorch. To add
    ``n`` utterances of class ``r``, real utterances of ``r`` and of its nearest classes are
    translated with ``G_T->S(x, Z_r)``, all modalities in one pass, in a standardised space;
    with ``filter_synthetic`` only candidates that an independent judge assigns to ``r`` are
    kept - a rejected candidate never enters the output (unless ``fill="rejected"``): when
    too few pass, fewer rows are added and a :class:`SyntheticRowsWarning` gives the counts.
    After training, each requested class is generated one of two ways
    (``generation="auto"``): translated from its own and its nearest classes' utterances,
    each source class weighted by how often the judges accept its translations, when the
    judges can vouch for such translations; otherwise from its own utterances, with the
    smoothed bootstrap's kernel and a filter relative to the class's real rows (issue 27,
    ``docs/sampler.md``). Original rows come first and unchanged, synthetic rows are
    appended with metadata (see ``placement``) and a ``synthetic`` mark.

    Read more in ``docs/sampler.md``.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default=0.1
        How many utterances to add per class. A float ``r`` in (0, 1] raises every class
        smaller than ``r`` x the majority count to that count, for any number of classes
        (:class:`~sklearn_cberl.strategies.UpToRatio`); 0.1 was chosen on validation data
        for the full pipeline (``docs/sampler.md``). Also imbalanced-learn's strings, a dict
        of *target* counts, or a callable ``y -> dict`` such as
        :class:`~sklearn_cberl.strategies.AddPerClass` (the paper's Table VI additions).
    lambda_identity, lambda_adversarial, lambda_classification : float, default=1.0, 0.5, 0.5
        ``lambda_1..3`` of Eq. 5: weights of the identity loss (Eq. 4), the generators'
        adversarial loss (Eq. 3) and ``L_C + L_RC`` (Eq. 1-2).
    lambda_diversity : float, default=0.0
        Weight of a mode-seeking term added to Eq. 5 (not in the paper; Mao et al., CVPR
        2019): two noise draws for one source must give different translations. At weight
        1 it cost 3-15 points of validation WAF1 (``docs/sampler.md``): off by default.
    hidden_size, latent_size : int, default=128, 32
        Hidden width of the generators' trunk, the discriminators and ``EC_s``; size of the
        Gaussian noise fed to the generators (0: deterministic translations).
    max_epochs : int, default=30
        GAN training epochs (passes over the real utterances).
    batch_size : int, default=64
        Minibatch size (utterances) for ``EC_s`` and the GAN; small batches give the GAN
        enough steps on small data sets (256 left it near the identity map on MOSI).
    lr : float, default=1e-3
        Adam learning rate of ``EC_s``, the generators and the discriminators.
    classifier_max_epochs : int, default=20
        Pre-training epochs of the emotion classifier ``EC_s`` (class-balanced
        cross-entropy on the real data); it is frozen afterwards.
    filter_synthetic : bool, default=True
        Keep only candidates that the judge which never saw their source row assigns to
        the requested class (``filter_folds`` copies of ``EC_s``, each trained without one
        fold). Candidates are drawn in rounds sized by the acceptance rate seen so far, at
        most ``MAX_FILTER_ROUNDS`` (10) rounds and ``MAX_CANDIDATES_PER_ROW`` (50)
        candidates per requested row; if fewer pass, fewer rows are added and a
        :class:`SyntheticRowsWarning` gives the counts (``n_synthetic_``,
        ``filter_stats_``, ``acceptance_rate_``). False keeps every candidate.
    filter_folds : int, default=3
        Number of cross-fitted judges of the filter.
    fill : {"rejected"} or None, default=None
        None: never add a rejected candidate. ``"rejected"``: fill a shortfall with the
        rejected candidates the judges rated most likely of the class (the behaviour
        before the filter was obeyed; those rows are assigned to another class by an
        independent judge), with a :class:`SyntheticRowsWarning`.
    generation : {"auto", "translate", "same_class"}, default="auto"
        How each requested class is generated. ``"translate"``: from the class's own and
        its ``n_neighbor_classes`` nearest classes' utterances, each source class weighted
        by its proximity weight times the measured acceptance of its translations
        (``source_weights_``), judged by the argmax filter. ``"same_class"``: from the
        class's own utterances only, with the ``smoothing`` kernel and the
        ``filter_quantile`` filter. ``"auto"``: per class, ``"translate"`` when the judges
        recognise at least half of the class's real rows or accept the best neighbour's
        translations at least 3 times as often as those real rows, else ``"same_class"``
        (``generation_``; chosen on validation data, see ``docs/sampler.md``). Without the
        filter ``"auto"`` translates.
    filter_quantile : float in [0, 1], default=0.25
        Same-class generation only: also accept a candidate whose judged probability of
        the class is at least this quantile of the probabilities the judges give the
        class's own real rows (each judged by the judge that never saw it) - "at least as
        recognisable as 1 - filter_quantile of the real rows". Where the judges recognise
        few real rows of a class, the argmax rule alone keeps translations of a few typical
        utterances only (18 of anger's 138 on MELD-starved). Not in the paper.
    smoothing : float, default=1.0
        Same-class generation only: add Gaussian noise to each translation before the
        filter, ``smoothing`` x Silverman's factor x the class's per-feature standard
        deviation (the kernel of ``RandomOverSampler(shrinkage=smoothing)``). A same-class
        translation is a near-copy of its source (the generator's noise moves it by a few
        percent of a nearest-neighbour distance); 0 adds nothing. Not in the paper.
    early_stopping : {"loss"} or None, default=None
        ``"loss"``: stop the GAN after ``patience`` epochs without a lower validation loss
        (Eq. 5 without its adversarial term) and keep the best epoch's networks. Validation
        set: ``fit_resample``'s ``validation_data``, else ``validation_fraction`` of the
        training dialogues. None: ``max_epochs`` epochs, the last networks kept.
    validation_fraction : float in (0, 1), default=0.1
        Share of the dialogues (of the rows, for a plain table) held out of the GAN's
        minibatches when ``early_stopping`` has no ``validation_data``; ``EC_s``, the judges
        and the translation sources still see every row. With fewer than 2 dialogues
        nothing is held out (no early stopping).
    patience : int, default=10
        GAN epochs without improvement before early stopping.
    n_neighbor_classes : int, default=1
        Number of nearest classes (centroid distance in the standardised space) whose
        utterances also serve as translation sources for a class. 0 translates only
        utterances of the class itself.
    self_source_fraction : float, default=0.5
        Share of the translation sources drawn from the requested class itself during GAN
        training (the rest from its ``n_neighbor_classes`` nearest classes). When a class
        is translated, with the filter, each source class's share is this proximity weight
        times the measured acceptance of its translations, renormalised
        (``source_weights_``): a source class whose translations the judges reject is not
        drawn.
    placement : {"after_source", "standalone"}, default="after_source"
        Metadata of synthetic rows of a conversation frame
        (:func:`sklearn_cberl.conversation.assemble_resampled`).
        ``"after_source"``: the source's dialogue and speaker, a (float) turn between the
        source and the next utterance. ``"standalone"``: a new one-utterance dialogue with
        an unused id, turn 0, the source's speaker.
    device : str or torch.device, default="auto"
        Torch device; ``"auto"`` picks CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the GAN, the emotion classifiers, the validation split and the sampling; the
        user's global RNGs are left untouched.
    verbose : int, default=0
        1: one line per epoch of ``EC_s``, of each filter judge and of the GAN (skorch's
        epoch tables, on stderr); 2: also a per-batch progress bar in a terminal.

    Attributes
    ----------
    sampling_strategy_ : dict
        Class label -> number of synthetic rows to add.
    classes_ : ndarray
        Class labels, in the order of ``EC_s``'s outputs and the one-hot ``Z``.
    sample_indices_ : ndarray of shape (n_samples_out,)
        For each output row, the index of the real input row it comes from: real rows map
        to themselves, a synthetic row to its translated source utterance.
    synthetic_mask_ : ndarray of bool, shape (n_samples_out,)
        True for the synthetic output rows.
    gan_, generator_, discriminators_ : EmoGAN, ResidualGenerator, dict, or None
        All GAN networks; ``G_T->S`` (makes the synthetic rows); block -> discriminator.
    emotion_classifier_, scaler_ : EmotionClassifier, StandardScaler, or None
        ``EC_s`` (frozen) and the per-feature standardisation the networks work in.
    history_ : list of dict
        Per GAN epoch (means over its minibatches, weighted by their size): ``epoch``;
        ``train_loss`` (the generators' objective: Eq. 5 + ``lambda_diversity`` x the
        mode-seeking term); ``train_identity`` (Eq. 4), ``train_adversarial`` (Eq. 3,
        generator side), ``train_classification`` (``L_C``, Eq. 1),
        ``train_target_classification`` (``L_RC``, Eq. 2), ``train_diversity`` (the
        mode-seeking term), ``train_discriminator`` (the discriminators' objective, negated
        Eq. 3); with a validation set ``valid_loss`` (Eq. 5 without its adversarial term)
        and ``valid_identity``, ``valid_classification``, ``valid_target_classification``;
        ``dur`` (seconds). Empty when nothing was trained.
    classifier_history_ : list of dict
        Per ``EC_s`` pre-training epoch: ``epoch``, ``train_loss`` (class-balanced
        cross-entropy), ``dur``.
    n_iter_ : int
        GAN epochs run (0 when nothing was trained).
    best_epoch_ : int
        The GAN epoch whose networks are kept: the best validated one with
        ``early_stopping``, else the last (0 when nothing was trained).
    source_classes_ : dict
        Class label -> labels of the nearest classes used as extra translation sources.
    source_acceptance_ : dict
        Requested class label -> {source class label: share of ``PROBE_SIZE`` (256)
        translations from that class the filter accepted}, measured after GAN training
        (empty without the filter).
    source_weights_ : dict
        Requested class label -> {source class label: probability that a source is drawn
        from it at sampling time} (proximity weight x ``source_acceptance_``, normalised;
        the proximity weights alone without the filter or when nothing was accepted).
    generation_ : dict
        Requested class label -> ``"translate"`` or ``"same_class"`` (see ``generation``).
    n_synthetic_ : dict
        Requested class label -> number of synthetic rows actually added (fewer than
        ``sampling_strategy_`` when the filter accepted too few candidates).
    filter_stats_ : dict
        Class label -> ``{"requested", "candidates", "accepted", "filled", "added",
        "sources"}``: rows asked for, candidates drawn, accepted ones kept, rejected ones
        filled in (``fill="rejected"`` only), rows added, distinct source utterances of
        the added rows.
    acceptance_rate_ : dict
        Class label -> share of the candidates the filter accepted: ``"all"``,
        ``"same_class"`` (translated from the class itself), ``"neighbour_class"``
        (translated from a nearest class; NaN when none was drawn) and ``"real"`` (the
        share of the class's real rows the filter as applied would accept, each judged by
        the judge that never saw it: for ``"translate"`` classes how recognisable the class
        is at all, for ``"same_class"`` ones at least ``1 - filter_quantile``; NaN without
        the filter).
    feature_blocks_ : dict of str -> slice
        The columns of each modality block in the feature matrix the networks see
        (metadata columns excluded); one discriminator per block.
    device_ : torch.device
        The device the networks were trained on (a pickle holds them on the CPU).
    n_features_in_, feature_names_in_ : int, ndarray of str
        Columns of ``X`` seen in ``fit_resample`` (metadata included) and their names.

    Notes
    -----
    When ``sampling_strategy`` asks for no new rows, nothing is trained (the network
    attributes are None, ``history_`` is empty); ``validation_data`` is checked all the
    same. Integer or boolean feature columns become float64 when rows are
    added; the output frame has a fresh ``RangeIndex``, as imbalanced-learn's samplers.

    Examples
    --------
    >>> from sklearn_cberl.datasets import make_conversations
    >>> from sklearn_cberl import EmoGANSampler
    >>> X, y = make_conversations(n_dialogues=20, modalities={"text": 8, "audio": 4},
    ...                           random_state=0)
    >>> sampler = EmoGANSampler(sampling_strategy="auto", max_epochs=2,
    ...                         classifier_max_epochs=2, random_state=0)
    >>> X_res, y_res = sampler.fit_resample(X, y)
    >>> bool(y_res.value_counts().nunique() == 1)  # "auto": every class to the majority
    True
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        **TRAINING_CONSTRAINTS,
        "lambda_identity": [Interval(Real, 0, None, closed="left")],
        "lambda_adversarial": [Interval(Real, 0, None, closed="left")],
        "lambda_classification": [Interval(Real, 0, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "latent_size": [Interval(Integral, 0, None, closed="left")],
        "classifier_max_epochs": [Interval(Integral, 1, None, closed="left")],
        "filter_synthetic": ["boolean"],
        "fill": [StrOptions({"rejected"}), None],
        "filter_quantile": [Interval(Real, 0, 1, closed="both")],
        "smoothing": [Interval(Real, 0, None, closed="left")],
        "generation": [StrOptions({"auto", "translate", "same_class"})],
        "n_neighbor_classes": [Interval(Integral, 0, None, closed="left")],
        "lambda_diversity": [Interval(Real, 0, None, closed="left")],
        "filter_folds": [Interval(Integral, 2, None, closed="left")],
        "self_source_fraction": [Interval(Real, 0, 1, closed="both")],
        "placement": [StrOptions(set(PLACEMENTS))],
    }

    def __init__(
        self,
        *,
        sampling_strategy=0.1,
        lambda_identity=1.0,
        lambda_adversarial=0.5,
        lambda_classification=0.5,
        lambda_diversity=0.0,
        hidden_size=128,
        latent_size=32,
        max_epochs=30,
        batch_size=64,
        lr=1e-3,
        classifier_max_epochs=20,
        filter_synthetic=True,
        filter_folds=3,
        fill=None,
        generation="auto",
        filter_quantile=0.25,
        smoothing=1.0,
        early_stopping=None,
        validation_fraction=0.1,
        patience=10,
        n_neighbor_classes=1,
        self_source_fraction=0.5,
        placement="after_source",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        super().__init__(sampling_strategy=sampling_strategy)
        self.lambda_identity = lambda_identity
        self.lambda_adversarial = lambda_adversarial
        self.lambda_classification = lambda_classification
        self.hidden_size = hidden_size
        self.latent_size = latent_size
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.classifier_max_epochs = classifier_max_epochs
        self.filter_synthetic = filter_synthetic
        self.fill = fill
        self.generation = generation
        self.filter_quantile = filter_quantile
        self.smoothing = smoothing
        self.n_neighbor_classes = n_neighbor_classes
        self.lambda_diversity = lambda_diversity
        self.filter_folds = filter_folds
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.self_source_fraction = self_source_fraction
        self.placement = placement
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_X_y(self, X, y):
        # imblearn's default coerces X to numbers (string dialogue ids and speakers would
        # fail): validate through the data model instead.
        check_labels(y)
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        conv = check_conversations(densify_sparse_frame(X), estimator=self, reset=True)
        check_consistent_length(conv.X, y)
        return conv, y, binarize_y

    def _counts(self, y) -> dict:
        """Rows to add per class; a float is :class:`UpToRatio` for any number of classes
        (imbalanced-learn reads floats for binary targets only)."""
        strategy = self.sampling_strategy
        if isinstance(strategy, Real) and not isinstance(strategy, bool):
            strategy = UpToRatio(strategy)
        return check_sampling_strategy(strategy, y, self._sampling_type)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, **params):
        """Check the inputs and set ``sampling_strategy_``; use :meth:`fit_resample`."""
        _, y, _ = self._check_X_y(X, y)
        self.sampling_strategy_ = self._counts(y)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @uses_torch_threads
    def fit_resample(self, X, y, validation_data=None, **params):
        """Train the EmoGAN on ``(X, y)`` and return the data with synthetic rows appended.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            A conversation frame (``dialogue_id``, ``speaker``, ``turn`` + modality
            columns), a frame without metadata columns, or a numeric array.
        y : array-like of shape (n_samples,)
            Emotion labels.
        validation_data : tuple (X_val, y_val), default=None
            Rows of the same kind whose validation loss is recorded per GAN epoch
            (``history_[i]["valid_loss"]``) and, with ``early_stopping``, monitored.
            Checked (columns, lengths, labels seen in ``y``) even when nothing is trained.

        Returns
        -------
        X_resampled : same container as X, shape (n_samples + n_new, n_features)
            The input rows first (unchanged), then the synthetic rows.
        y_resampled : same container as y
            Their labels.
        """
        # Same steps as imblearn's SamplerMixin.fit_resample, except that the output is
        # assembled here: imblearn casts a resampled frame back to the input dtypes, which
        # would truncate the fractional turns of synthetic utterances.
        conv, y_checked, binarize_y = self._check_X_y(X, y)  # check_labels(y) first
        check_classification_targets(y)
        self.sampling_strategy_ = self._counts(y_checked)
        self.feature_blocks_ = conv.blocks
        valid = None
        if validation_data is not None:
            if isinstance(validation_data, tuple) and len(validation_data) == 2:
                validation_data = (densify_sparse_frame(validation_data[0]), validation_data[1])
            conv_val, y_val = check_validation_data(
                self, validation_data, classes=np.unique(y_checked), labels="required"
            )
            valid = (conv_val.X, y_val)
        features, y_res = self._fit_resample(conv, y_checked, valid=valid, **params)
        if binarize_y:
            y_res = label_binarize(y_res, classes=np.unique(y_checked))
        X_out = assemble_resampled(X, conv, features, self.sample_indices_, self.placement)
        index = X_out.index if isinstance(X_out, pd.DataFrame) else None
        return X_out, wrap_like(y_res, y, index=index)

    def _reset(self, n_samples: int):
        """Every fitted attribute ``_fit_resample`` sets, at its nothing-trained value: a fit
        never leaves a previous fit's networks, history or statistics behind."""
        self.sample_indices_ = np.arange(n_samples)
        self.synthetic_mask_ = np.zeros(n_samples, dtype=bool)
        self.history_, self.classifier_history_ = [], []
        self.n_iter_ = self.best_epoch_ = 0
        self.filter_stats_, self.source_classes_, self.acceptance_rate_ = {}, {}, {}
        self.n_synthetic_, self.source_weights_, self.source_acceptance_ = {}, {}, {}
        self.generation_ = {}
        self.generator_ = self.gan_ = self.discriminators_ = None
        self.emotion_classifier_ = self.scaler_ = None
        self.device_ = resolve_device(self.device)

    def _fit_resample(self, conv, y, valid=None):
        """Train the networks and generate.

        ``conv`` holds the validated conversations (their numeric feature matrix ``conv.X``
        is laid out in ``feature_blocks_``), ``valid`` the checked validation rows ``(X_val,
        y_val)`` or None. Returns the resampled features (real rows first) and labels;
        :meth:`fit_resample` derives the synthetic rows' metadata from ``sample_indices_``.
        """
        X = conv.X
        n = len(X)
        self.classes_, y_codes = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        code_of = {label: i for i, label in enumerate(self.classes_)}
        requests = [(code_of[c], int(m)) for c, m in self.sampling_strategy_.items() if m > 0]
        self._reset(n)
        device = self.device_
        if not requests:
            return X, y

        seed = seed_from(check_random_state(self.random_state))
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X).astype(np.float32, copy=False)
        neighbours = nearest_classes(Xs, y_codes, n_classes, self.n_neighbor_classes)
        self.source_classes_ = {
            self.classes_[c]: [self.classes_[o] for o in neighbours[c]] for c in range(n_classes)
        }
        widths = [b.stop - b.start for b in self.feature_blocks_.values()]
        rows, valid_rows = self._validation_rows(conv, Xs, y_codes, valid, seed)

        with torch_seed(seed, device):
            X_t = torch.from_numpy(np.ascontiguousarray(Xs)).to(device)
            y_t = torch.from_numpy(y_codes.astype(np.int64)).to(device)
            prior = proximity_weights(neighbours, self.self_source_fraction)
            sources = SourceSampler(y_codes, prior, device)
            ec, self.classifier_history_, judges = fit_judges(
                X_t, y_t, n_classes, verbose=self.verbose, seed=seed,
                filter_folds=self.filter_folds if self.filter_synthetic else 0,
                hidden_size=self.hidden_size, max_epochs=self.classifier_max_epochs, lr=self.lr,
                batch_size=self.batch_size,
            )  # fmt: skip
            gan = _gan.EmoGAN(widths, n_classes, self.hidden_size, self.latent_size).to(device)
            targets = torch.as_tensor([c for c, _ in requests], device=device)
            fitted = train_gan(
                gan, ec, X_t, y_t, sources, targets, seed=seed, verbose=self.verbose,
                rows=torch.as_tensor(rows, device=device),
                valid=None if valid_rows is None else tuple(v.to(device) for v in valid_rows),
                lambdas={k: getattr(self, k) for k in _LAMBDAS}, max_epochs=self.max_epochs,
                batch_size=self.batch_size, lr=self.lr, early_stopping=self.early_stopping,
                patience=self.patience,
            )  # fmt: skip
            for name, value in fitted.items():
                setattr(self, name, value)
            plan = self._sampling_plan(gan, judges, X_t, sources, prior, requests)
            sampling = sources.with_weights(plan["weights"])
            new_x, new_src, new_y = [], [], []
            for code, count in requests:
                label = self.classes_[code]
                x, src, stats, acceptance = generate(
                    gan, judges, X_t, sampling, code, count, label=label, lr=self.lr,
                    fill=self.fill, expected=plan["expected"].get(code, 0.5),
                    threshold=plan["threshold"][code], kernel=plan["kernel"][code],
                )  # fmt: skip
                self.filter_stats_[label], self.acceptance_rate_[label] = stats, acceptance
                self.n_synthetic_[label] = len(x)
                new_x.append(x)
                new_src.append(src)
                new_y.append(np.full(len(x), code))

        self.emotion_classifier_ = ec
        self.gan_ = gan
        self.generator_ = gan.g_ts
        self.discriminators_ = dict(zip(self.feature_blocks_, gan.discriminators))

        standardised = np.concatenate(new_x).astype(np.float64)
        if not len(standardised):  # the filter accepted nothing (a warning said so)
            return X, y
        synthetic = self.scaler_.inverse_transform(standardised)
        if not np.isfinite(synthetic).all():  # cannot happen with finite standardised rows
            raise TrainingDivergedError(
                f"{NAME}: generated rows are not finite after un-standardisation. "
                + HINT.format(lr=self.lr)
            )
        src = np.concatenate(new_src)
        self.sample_indices_ = np.concatenate([np.arange(n), src])
        self.synthetic_mask_ = np.concatenate([np.zeros(n, bool), np.ones(len(src), bool)])
        features = np.concatenate([X, synthetic.astype(X.dtype)])
        y_new = self.classes_[np.concatenate(new_y)].astype(y.dtype, copy=False)
        return features, np.concatenate([y, y_new])

    def _sampling_plan(self, gan, judges, X_t, sources, prior, requests) -> dict:
        """How each requested class is generated: from which source classes, with which
        filter threshold and kernel.

        With the filter, each candidate source class of a requested class (itself and its
        ``n_neighbor_classes`` nearest) is probed (:func:`~._gan_training.probe_sources`).
        ``generation="auto"`` then picks per class (:func:`~._gan_training.choose_generation`):
        *translate* - the proximity weights times the measured acceptance (a source class
        whose translations the judges reject is not drawn), argmax filter, no kernel - or
        *same_class* - the class's own utterances, with the ``smoothing`` kernel and the
        ``filter_quantile`` threshold. Without the filter: the proximity weights
        (``"same_class"``: the class itself), no threshold. Sets ``generation_``,
        ``source_acceptance_`` and ``source_weights_``.

        Returns
        -------
        dict
            ``weights`` (n_classes x n_classes source-class probabilities), and per class
            code: ``expected`` acceptance, ``threshold`` and ``kernel`` for
            :func:`~._gan_training.generate`.
        """
        plan = {"weights": prior.copy(), "expected": {}, "threshold": {}, "kernel": {}}
        for code, _ in requests:
            label = self.classes_[code]
            candidates = np.flatnonzero(prior[code] > 0)
            mode = "same_class" if self.generation == "same_class" else "translate"
            rates = None
            if judges is not None:
                rates = probe_sources(gan, judges, X_t, sources, code, candidates)
                self.source_acceptance_[label] = {
                    self.classes_[c]: float(a) for c, a in zip(candidates, rates)
                }
                if self.generation == "auto":
                    real = real_acceptance(judges, X_t, sources, code)
                    mode = choose_generation(real, rates[candidates != code])
            weights = np.zeros(len(prior))
            threshold = kernel = None
            if mode == "translate":
                weights[candidates] = prior[code, candidates]
                if rates is not None:
                    weights[candidates] = acceptance_weights(prior[code, candidates], rates)
                    plan["expected"][code] = float(weights[candidates] @ rates)
            else:
                weights[code] = 1.0
                kernel = smoothing_kernel(X_t, sources, code, self.smoothing)
                if judges is not None:
                    threshold = class_threshold(judges, X_t, sources, code, self.filter_quantile)
                    plan["expected"][code] = float(probe_sources(
                        gan, judges, X_t, sources, code, [code], threshold=threshold,
                        kernel=kernel,
                    )[0])  # fmt: skip
            plan["weights"][code] = weights
            plan["threshold"][code], plan["kernel"][code] = threshold, kernel
            self.generation_[label] = mode
            self.source_weights_[label] = {
                self.classes_[c]: float(weights[c]) for c in np.union1d(candidates, [code])
            }
        return plan

    def _validation_rows(self, conv, Xs, y_codes, valid, seed):
        """The rows the GAN's minibatches use and the validation rows, standardised.

        ``Xs`` and ``y_codes`` are the standardised training rows and their class codes,
        ``valid`` the checked ``validation_data`` (its labels are among ``classes_``).

        Returns
        -------
        rows : ndarray of int
            Training rows of the GAN (all rows unless some are held out).
        valid : tuple (features, codes) of Tensor, or None
            ``validation_data`` when given; else, with ``early_stopping``,
            ``validation_fraction`` of the dialogues held out of the minibatches
            (:func:`~sklearn_cberl.conversation.validation_split`; ``EC_s``, the judges and
            the translation sources still see every row); else None.
        """
        all_rows = np.arange(conv.n_samples)
        if valid is not None:
            X_val, y_val = valid
            code_of = {label: i for i, label in enumerate(self.classes_)}
            codes = np.array([code_of[label] for label in y_val.tolist()], dtype=np.int64)
            features = self.scaler_.transform(X_val).astype(np.float32)
            return all_rows, (torch.from_numpy(features), torch.from_numpy(codes))
        split = None
        if self.early_stopping:
            split = validation_split(
                conv.dialogue, self.validation_fraction, seed % (2**32), real=conv.real
            )
        if split is None:
            return all_rows, None
        kept, held = split
        codes = y_codes[held].astype(np.int64)
        return kept, (torch.from_numpy(np.ascontiguousarray(Xs[held])), torch.from_numpy(codes))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.sampler_tags.sample_indices = True
        return tags
