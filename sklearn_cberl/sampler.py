"""``EmoGANSampler``: CBERL's multimodal emotion cycle-GAN as an imbalanced-learn over-sampler.

Paper Sec. IV-A-1, Fig. 3, Eq. 1-7; project spec ``paper/cberl.md`` section 1. The torch
modules and the loss terms live in :mod:`sklearn_cberl.nn.gan`; this module validates the
data, trains the networks and turns the generator into synthetic utterances with valid
conversation metadata. User guide: ``docs/sampler.md``.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from imblearn.over_sampling.base import BaseOverSampler
from imblearn.utils import check_sampling_strategy, check_target_type
from sklearn.base import BaseEstimator, _fit_context
from sklearn.preprocessing import StandardScaler, label_binarize
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length

from ._emogan import CrossFittedJudges, SourceSampler, nearest_classes, train_emotion_classifier
from ._progress import progress
from ._utils import TrainingDivergedError, check_finite_loss, resolve_device, seed_from, torch_seed
from .conversation import (
    DIALOGUE,
    METADATA_COLUMNS,
    SPEAKER,
    SYNTHETIC,
    TURN,
    Conversations,
    check_conversations,
    check_labels,
    modality_of,
)
from .nn import gan as _gan

__all__ = ["EmoGANSampler", "ConversationSampler", "SyntheticRowsWarning"]


class SyntheticRowsWarning(UserWarning):
    """Fewer synthetic candidates than requested passed the filter (the rest were filled)."""


#: Candidate rounds drawn per class before the filter falls back to the best candidates.
MAX_FILTER_ROUNDS = 10
_NAME = "EmoGANSampler"
_HINT = (
    "Lower `lr` (currently {lr}) or `lambda_adversarial`, or check the input features for "
    "extreme values."
)


def _densify_sparse_frame(X):
    """pandas sparse columns -> dense (the GAN is dense); the output restores their dtype."""
    if isinstance(X, pd.DataFrame):
        sparse = {c: d.subtype for c, d in X.dtypes.items() if isinstance(d, pd.SparseDtype)}
        if sparse:
            return X.astype(sparse)
    return X


def _wrap_like(values: np.ndarray, reference, index=None):
    """Return ``values`` in the container type of ``reference`` (as imblearn's samplers do)."""
    if isinstance(reference, pd.Series):
        return pd.Series(values, dtype=reference.dtype, name=reference.name, index=index)
    if isinstance(reference, pd.DataFrame):
        values = np.asarray(values).reshape(len(values), -1)
        frame = pd.DataFrame(values, columns=reference.columns, index=index)
        return frame.astype(reference.dtypes.to_dict())
    if isinstance(reference, list):
        return np.asarray(values).tolist()
    return values


def _new_dialogue_ids(existing: pd.Series, n: int) -> pd.Series:
    """``n`` dialogue ids that collide with none of ``existing``, of the same kind.

    Integer ids continue after the largest one, widened to int64 when the input's dtype
    cannot hold them (int8 ids would wrap around and collide); float ids likewise in
    float64; any other kind (strings, categories, booleans, ...) gets string ids.
    """
    dtype = existing.dtype
    numpy_dtype = getattr(dtype, "numpy_dtype", dtype)  # pandas nullable Int8 -> int8
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        start = int(existing.max()) + 1
        stop = start + n - 1
        if stop <= np.iinfo(numpy_dtype).max:
            return pd.Series(np.arange(start, start + n), dtype=dtype)
        if stop <= np.iinfo(np.int64).max:
            return pd.Series(np.arange(start, start + n, dtype=np.int64))
    elif pd.api.types.is_float_dtype(dtype):
        start = float(np.floor(existing.max())) + 1.0
        ids = start + np.arange(n, dtype=np.float64)
        exact = np.array_equal(ids.astype(numpy_dtype).astype(np.float64), ids)
        return pd.Series(ids, dtype=dtype if exact else np.float64)
    taken = {str(v) for v in existing.unique()}
    prefix = "emogan_"
    numbers = np.arange(n).astype(str)
    while True:
        names = np.char.add(prefix, numbers)
        if taken.isdisjoint(names.tolist()):
            break
        prefix = "_" + prefix  # an id of this form is taken: lengthen the prefix
    keep = pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype)
    return pd.Series(names.astype(object), dtype=dtype if keep else object)


def _assemble(X, conv: Conversations, features: np.ndarray, sample_indices, placement):
    """Put resampled features (real rows first) and carried metadata in X's container.

    Shared by :class:`EmoGANSampler` and :class:`ConversationSampler`: the metadata of row
    ``n + j`` is derived from its source row ``sample_indices[n + j]`` (see ``placement``).
    A conversation frame also gets the boolean ``synthetic`` row mark (kept from the input
    when a previous sampler wrote it), so that the classifier can keep synthetic rows out of
    its validation split.
    """
    n = conv.n_samples
    if not isinstance(X, pd.DataFrame):
        return features.tolist() if isinstance(X, list) else features
    new = features[n:]
    columns = [c for c in X.columns if c != SYNTHETIC]
    if not len(new):
        out = X.reset_index(drop=True)
    else:
        X_dense = _densify_sparse_frame(X)
        if conv.is_plain:
            feature_columns = columns
        else:
            # conv.X holds the feature columns block by block (first appearance of each
            # modality prefix), which need not be the frame's column order.
            blocks: dict = {}
            for column in columns:
                if column not in METADATA_COLUMNS:
                    blocks.setdefault(modality_of(column), []).append(column)
            feature_columns = [c for cols in blocks.values() for c in cols]
        synthetic = pd.DataFrame(new, columns=feature_columns)
        if not conv.is_plain:
            for column, values in _synthetic_metadata(X, conv, sample_indices, placement).items():
                synthetic[column] = values
        # Generated values are continuous: bool / integer feature columns become float64
        # before the concatenation (bool + float would give an object column).
        widen = {
            c: np.float64
            for c in feature_columns
            if not pd.api.types.is_float_dtype(X_dense[c].dtype)
        }
        X_dense = X_dense.astype(widen) if widen else X_dense
        out = pd.concat([X_dense.reset_index(drop=True), synthetic[columns]], ignore_index=True)
        # Float feature columns keep their exact input dtype (float32 / float64 / pandas
        # sparse or nullable floats); other numeric feature columns are float64 now.
        restore = {
            c: d
            for c, d in X.dtypes.items()
            if c in feature_columns and pd.api.types.is_float_dtype(d) and out[c].dtype != d
        }
        out = out.astype(restore) if restore else out
    if not conv.is_plain:
        out = out.copy() if out is X else out
        out[SYNTHETIC] = np.concatenate([~conv.real, np.ones(len(new), dtype=bool)])
    return out


def _synthetic_metadata(X: pd.DataFrame, conv: Conversations, sample_indices, placement) -> dict:
    """dialogue_id / speaker / turn of the synthetic rows (see ``placement``)."""
    n = conv.n_samples
    src = np.asarray(sample_indices)[n:]
    meta = X[list(METADATA_COLUMNS)].reset_index(drop=True)
    speaker = meta[SPEAKER].iloc[src].reset_index(drop=True)
    if placement == "standalone":
        turn_dtype = meta[TURN].dtype
        return {
            DIALOGUE: _new_dialogue_ids(meta[DIALOGUE], len(src)),
            SPEAKER: speaker,
            TURN: pd.Series(np.zeros(len(src)), dtype=turn_dtype),
        }
    # after_source: between the source and the next utterance of its dialogue.
    order = conv.order
    dialogue_sorted, turn_sorted = conv.dialogue[order], conv.turn[order]
    gap_sorted = np.ones(n)
    same = dialogue_sorted[1:] == dialogue_sorted[:-1]
    gap_sorted[:-1][same] = (turn_sorted[1:] - turn_sorted[:-1])[same]
    gap = conv.to_input_order(gap_sorted)
    # k-th (1-based) of m synthetic rows sharing a source, in output order.
    rank_order = np.argsort(src, kind="stable")
    sorted_src = src[rank_order]
    first = np.searchsorted(sorted_src, sorted_src, side="left")
    k = np.empty(len(src), dtype=np.float64)
    k[rank_order] = np.arange(len(src)) - first + 1
    m = np.bincount(src, minlength=n)[src]
    turn = conv.turn[src] + gap[src] * k / (m + 1)
    return {
        DIALOGUE: meta[DIALOGUE].iloc[src].reset_index(drop=True),
        SPEAKER: speaker,
        TURN: pd.Series(turn, dtype=np.float64),
    }


class EmoGANSampler(BaseOverSampler):
    """Over-sample emotions with CBERL's multimodal emotion cycle-GAN (paper Sec. IV-A-1).

    Two generators (``G_S->T`` and ``G_T->S``, the latter conditioned on an emotion one-hot
    ``Z``), one discriminator per modality ``D_T,F`` and a frozen emotion classifier ``EC_s``
    are trained with the EmoGAN loss (Eq. 5 = ``lambda_identity`` x identity Eq. 4 +
    ``lambda_adversarial`` x adversarial Eq. 3 + ``lambda_classification`` x (``L_C`` Eq. 1 +
    ``L_RC`` Eq. 2)), alternating Adam updates of the discriminators and generators
    (Eq. 6-7). To add ``n`` utterances of class ``r``, real utterances of ``r`` and of its
    nearest classes are translated with ``G_T->S(x, Z_r)``; with ``filter_synthetic`` only
    candidates that ``EC_s`` assigns to ``r`` are kept.

    All modalities of an utterance come out of one generator pass, in a per-feature
    standardised space learned in ``fit_resample``; generated rows are mapped back to the
    input scale. Original rows come first and unchanged; synthetic rows are appended. On a
    conversation frame the metadata columns are carried (see ``placement``); on a plain array
    or a frame without metadata every row is a standalone utterance.

    Read more in ``docs/sampler.md``.

    Parameters
    ----------
    sampling_strategy : float, str, dict or callable, default=0.1
        How many utterances to add per class. A float ``r`` in (0, 1] raises every class
        smaller than ``r`` x the majority count to that count, for any number of classes
        (:class:`~sklearn_cberl.pipeline.UpToRatio`; for two classes imbalanced-learn's
        float semantics). The default 0.1 was chosen on validation data for the full
        pipeline (``docs/sampler.md``): on MELD it adds about Table VI's fear and disgust
        counts; balancing floods training with synthetic rows. Also imbalanced-learn's
        forms: ``"auto"`` / ``"not majority"``, ``"minority"``, ``"not minority"``,
        ``"all"`` (equalise those classes with the majority), a dict of *target* counts per
        class, or a callable ``y -> dict`` such as
        :class:`~sklearn_cberl.pipeline.AddPerClass` (the paper's Table VI additions).

    lambda_identity : float, default=1.0
        ``lambda_1`` of Eq. 5, weight of the identity loss (Eq. 4).
    lambda_adversarial : float, default=0.5
        ``lambda_2`` of Eq. 5, weight of the generators' adversarial loss (Eq. 3).
    lambda_classification : float, default=0.5
        ``lambda_3`` of Eq. 5, weight of ``L_C + L_RC`` (Eq. 1-2).
    lambda_diversity : float, default=0.0
        Weight of a mode-seeking term added to Eq. 5 (not in the paper; Mao et al., CVPR
        2019): two noise draws for the same source must give different translations. It
        moves synthetic rows away from their sources, but at weight 1 it cost 3 (MOSI-
        imbalanced) and 15 (demo data) points of validation WAF1 behind the classifier, so
        the default is the paper's loss (``docs/sampler.md``).
    hidden_size : int, default=128
        Hidden width of the generators' shared trunk, the discriminators and ``EC_s``.
    latent_size : int, default=32
        Size of the Gaussian noise fed to the generators (0: deterministic translations).
    n_epochs : int, default=30
        GAN training epochs (passes over the real utterances).
    batch_size : int, default=64
        Minibatch size (utterances) for ``EC_s`` and the GAN. Small batches give the GAN
        enough steps on small data sets: with 256, MOSI's 800 training utterances made 120
        steps in 30 epochs and the generator barely left the identity map.
    lr : float, default=1e-3
        Adam learning rate of ``EC_s``, the generators and the discriminators.
    classifier_epochs : int, default=20
        Pre-training epochs of the emotion classifier ``EC_s`` (class-balanced
        cross-entropy on the real data); it is frozen afterwards.
    filter_synthetic : bool, default=True
        Keep only candidates that an independent judge assigns to the requested class. The
        judges are ``filter_folds`` copies of ``EC_s``, each trained without one fold of the
        real rows; a candidate is judged by the copy that never saw its source row (``EC_s``
        itself accepted every candidate: the generator is trained to satisfy it on the same
        rows). Candidates are drawn in vectorised rounds (twice the missing count per round,
        at most ``MAX_FILTER_ROUNDS = 10`` rounds); if too few pass, the rest is filled
        with the rejected candidates the judges rate most likely of the class and a
        :class:`SyntheticRowsWarning` says so (``filter_stats_``, ``acceptance_rate_``).
    filter_folds : int, default=3
        Number of cross-fitted judges of the filter.
    n_neighbor_classes : int, default=1
        Number of nearest classes (centroid distance in the standardised space) whose
        utterances also serve as translation sources for a class. 0 translates only
        utterances of the class itself.
    self_source_fraction : float, default=0.5
        Share of the translation sources drawn from the requested class itself (the rest
        from its ``n_neighbor_classes`` nearest classes).
    placement : {"after_source", "standalone"}, default="after_source"
        Metadata of synthetic rows of a conversation frame. ``"after_source"``: same
        ``dialogue_id`` and ``speaker`` as the source utterance and a turn between the
        source and the next utterance of that dialogue (source turn + gap * k / (m + 1) for
        the k-th of m rows from that source; gap = distance to the next turn, 1 after the
        last), so ``turn`` becomes float. ``"standalone"``: a new one-utterance dialogue per
        row with an id that collides with no existing id (same kind: ints stay ints) and
        turn 0; the speaker is the source's.
    device : str or torch.device, default="auto"
        Torch device; ``"auto"`` picks CUDA when available.
    random_state : int, RandomState instance or None, default=None
        Seeds the GAN, the emotion classifier and the sampling; the user's global RNGs
        are left untouched.

    verbose : int, default=0
        Progress of the ``EC_s`` and GAN epochs when > 0: a tqdm bar in a terminal, plain
        lines on stderr otherwise.

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
    generator_ : ResidualGenerator or None
        ``G_T->S``, the conditional generator that produces the synthetic rows.
    gan_ : EmoGAN or None
        All GAN networks (both generators and the discriminators).
    discriminators_ : dict of str -> ModalityDiscriminator, or None
        The discriminator of each modality block.
    emotion_classifier_ : EmotionClassifier or None
        ``EC_s`` (frozen), on standardised features.
    scaler_ : StandardScaler or None
        The per-feature standardisation the networks work in.
    history_ : list of dict
        Per GAN epoch: ``epoch``, ``identity``, ``adversarial``, ``classification`` (L_C),
        ``target_classification`` (L_RC), ``diversity`` (mode-seeking term), ``total``
        (Eq. 5 + the diversity term) and ``discriminator`` (negated Eq. 3), means over the
        epoch's minibatches.
    classifier_history_ : list of dict
        Per ``EC_s`` pre-training epoch: ``epoch``, ``loss``.
    source_classes_ : dict
        Class label -> labels of the nearest classes used as extra translation sources.
    filter_stats_ : dict
        Class label -> ``{"requested", "candidates", "accepted", "filled"}``.
    acceptance_rate_ : dict
        Class label -> share of the candidates the filter accepted: ``"all"``,
        ``"same_class"`` (translated from the class itself) and ``"neighbour_class"``
        (translated from a nearest class; NaN when none was drawn).
    device_ : torch.device
        The device the networks were trained on (a pickle holds them on the CPU).
    n_features_in_ : int
        Number of columns of ``X`` seen in ``fit_resample`` (metadata columns included).
    feature_names_in_ : ndarray of str
        Their names, for DataFrame input.

    Notes
    -----
    When ``sampling_strategy`` asks for no new rows, nothing is trained: the input comes
    back unchanged and the network attributes are None (``history_`` empty).

    Output dtype: float32 / float64 feature columns keep their dtype; integer or boolean
    feature columns become float64 when synthetic rows are added (generated values are
    continuous). The output frame has a fresh ``RangeIndex``, as imbalanced-learn's samplers.

    Examples
    --------
    >>> from sklearn_cberl.datasets import make_conversations
    >>> from sklearn_cberl.sampler import EmoGANSampler
    >>> X, y = make_conversations(n_dialogues=20, modalities={"text": 8, "audio": 4},
    ...                           random_state=0)
    >>> sampler = EmoGANSampler(n_epochs=2, classifier_epochs=2, random_state=0)
    >>> X_res, y_res = sampler.fit_resample(X, y)
    >>> bool(y_res.value_counts().nunique() == 1)
    True
    >>> bool(sampler.synthetic_mask_[: len(X)].any())
    False
    """

    _parameter_constraints: dict = {
        **BaseOverSampler._parameter_constraints,
        "lambda_identity": [Interval(Real, 0, None, closed="left")],
        "lambda_adversarial": [Interval(Real, 0, None, closed="left")],
        "lambda_classification": [Interval(Real, 0, None, closed="left")],
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "latent_size": [Interval(Integral, 0, None, closed="left")],
        "n_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "classifier_epochs": [Interval(Integral, 1, None, closed="left")],
        "filter_synthetic": ["boolean"],
        "n_neighbor_classes": [Interval(Integral, 0, None, closed="left")],
        "lambda_diversity": [Interval(Real, 0, None, closed="left")],
        "filter_folds": [Interval(Integral, 2, None, closed="left")],
        "self_source_fraction": [Interval(Real, 0, 1, closed="both")],
        "placement": [StrOptions({"after_source", "standalone"})],
        "device": [str, torch.device, None],
        "verbose": ["verbose"],
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
        n_epochs=30,
        batch_size=64,
        lr=1e-3,
        classifier_epochs=20,
        filter_synthetic=True,
        filter_folds=3,
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
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.classifier_epochs = classifier_epochs
        self.filter_synthetic = filter_synthetic
        self.n_neighbor_classes = n_neighbor_classes
        self.lambda_diversity = lambda_diversity
        self.filter_folds = filter_folds
        self.self_source_fraction = self_source_fraction
        self.placement = placement
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------------------------
    # validation and the public entry point
    # ---------------------------------------------------------------------------------
    def _check_X_y(self, X, y):
        # imblearn's default coerces X to numbers, which fails on string dialogue ids and
        # speakers; validate through the data model instead (as RandomOverSampler skips
        # the numeric check with dtype=None).
        check_labels(y)
        y, binarize_y = check_target_type(y, indicate_one_vs_all=True)
        conv = check_conversations(_densify_sparse_frame(X), estimator=self, reset=True)
        check_consistent_length(conv.X, y)
        return conv, y, binarize_y

    def _counts(self, y) -> dict:
        """Rows to add per class; a float is :class:`~sklearn_cberl.pipeline.UpToRatio` for
        any number of classes (imbalanced-learn reads floats for binary targets only)."""
        strategy = self.sampling_strategy
        if isinstance(strategy, Real) and not isinstance(strategy, bool):
            from .pipeline import UpToRatio

            strategy = UpToRatio(strategy)
        return check_sampling_strategy(strategy, y, self._sampling_type)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, **params):
        """Check the inputs and set ``sampling_strategy_``; use :meth:`fit_resample`."""
        _, y, _ = self._check_X_y(X, y)
        self.sampling_strategy_ = self._counts(y)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def fit_resample(self, X, y, **params):
        """Train the EmoGAN on ``(X, y)`` and return the data with synthetic rows appended.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            A conversation frame (``dialogue_id``, ``speaker``, ``turn`` + modality
            columns), a frame without metadata columns, or a numeric array.
        y : array-like of shape (n_samples,)
            Emotion labels.

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
        check_labels(y)
        check_classification_targets(y)
        conv, y_checked, binarize_y = self._check_X_y(X, y)
        strategy = self.sampling_strategy
        if isinstance(strategy, Real) and not isinstance(strategy, bool):
            from .pipeline import UpToRatio  # imbalanced-learn's floats are binary-only

            strategy = UpToRatio(strategy)
        self.sampling_strategy_ = check_sampling_strategy(strategy, y_checked, self._sampling_type)
        features, y_res = self._fit_resample(conv, y_checked, **params)
        if binarize_y:
            y_res = label_binarize(y_res, classes=np.unique(y_checked))
        X_out = _assemble(X, conv, features, self.sample_indices_, self.placement)
        index = X_out.index if isinstance(X_out, pd.DataFrame) else None
        return X_out, _wrap_like(y_res, y, index=index)

    # ---------------------------------------------------------------------------------
    # training and generation
    # ---------------------------------------------------------------------------------
    def _fit_resample(self, X: Conversations, y):
        """Train the networks and generate; ``X`` is the validated :class:`Conversations`.

        Returns the resampled feature matrix (real rows first) and labels; the metadata of
        the synthetic rows is derived from ``sample_indices_`` by :meth:`fit_resample`.
        """
        conv = X
        n = conv.n_samples
        self.classes_, y_codes = np.unique(y, return_inverse=True)
        n_classes = len(self.classes_)
        code_of = {label: i for i, label in enumerate(self.classes_)}
        requests = [(code_of[c], int(m)) for c, m in self.sampling_strategy_.items() if m > 0]

        self.sample_indices_ = np.arange(n)
        self.synthetic_mask_ = np.zeros(n, dtype=bool)
        self.history_, self.classifier_history_ = [], []
        self.filter_stats_, self.source_classes_, self.acceptance_rate_ = {}, {}, {}
        self.generator_ = self.gan_ = self.discriminators_ = None
        self.emotion_classifier_ = self.scaler_ = None
        self.device_ = device = resolve_device(self.device)
        if not requests:
            return conv.X, y

        seed = seed_from(check_random_state(self.random_state))
        self.scaler_ = StandardScaler().fit(conv.X)
        Xs = self.scaler_.transform(conv.X).astype(np.float32, copy=False)
        neighbours = nearest_classes(Xs, y_codes, n_classes, self.n_neighbor_classes)
        self.source_classes_ = {
            self.classes_[c]: [self.classes_[o] for o in neighbours[c]] for c in range(n_classes)
        }
        widths = [b.stop - b.start for b in conv.blocks.values()]

        with torch_seed(seed, device):
            X_t = torch.from_numpy(np.ascontiguousarray(Xs)).to(device)
            y_t = torch.from_numpy(y_codes.astype(np.int64)).to(device)
            sources = SourceSampler(y_codes, neighbours, device, self.self_source_fraction)
            bar = progress(range(self.classifier_epochs), desc="EC_s", verbose=self.verbose)
            steps = iter(bar)

            def on_epoch(epoch, loss):
                value = check_finite_loss(
                    loss,
                    estimator=_NAME,
                    epoch=epoch,
                    term="EC_s pre-training loss",
                    hint=_HINT.format(lr=self.lr),
                )
                self.classifier_history_.append({"epoch": epoch, "loss": value})
                bar.set_postfix(loss=f"{value:.3f}")
                next(steps, None)

            train = dict(
                hidden_size=self.hidden_size,
                epochs=self.classifier_epochs,
                lr=self.lr,
                batch_size=self.batch_size,
            )
            next(steps, None)
            # EC_s (all real rows, frozen): the classifier of Eq. 1-2 the generator trains on.
            ec = train_emotion_classifier(X_t, y_t, n_classes, on_epoch=on_epoch, **train)
            judges = None
            if self.filter_synthetic:
                # The filter's judges never saw the source of the candidate they judge.
                judges = CrossFittedJudges(
                    X_t, y_t, n_classes, self.filter_folds, seed % (2**31), **train
                )
            gan = _gan.EmoGAN(widths, n_classes, self.hidden_size, self.latent_size).to(device)
            targets = torch.as_tensor([c for c, _ in requests], device=device)
            self._train_gan(gan, ec, X_t, y_t, sources, targets)
            gan.eval()
            new_x, new_src, new_y = [], [], []
            with torch.no_grad():
                for code, count in requests:
                    x, src = self._generate(gan, judges, X_t, sources, code, count)
                    new_x.append(x)
                    new_src.append(src)
                    new_y.append(np.full(count, code))

        self.emotion_classifier_ = ec
        self.gan_ = gan
        self.generator_ = gan.g_ts
        self.discriminators_ = dict(zip(conv.blocks, gan.discriminators))

        synthetic = self.scaler_.inverse_transform(np.concatenate(new_x).astype(np.float64))
        if not np.isfinite(synthetic).all():  # cannot happen with finite standardised rows
            raise TrainingDivergedError(
                f"{_NAME}: generated rows are not finite after un-standardisation. "
                + _HINT.format(lr=self.lr)
            )
        src = np.concatenate(new_src)
        self.sample_indices_ = np.concatenate([np.arange(n), src])
        self.synthetic_mask_ = np.concatenate([np.zeros(n, bool), np.ones(len(src), bool)])
        features = np.concatenate([conv.X, synthetic.astype(conv.X.dtype)])
        y_new = self.classes_[np.concatenate(new_y)].astype(y.dtype, copy=False)
        return features, np.concatenate([y, y_new])

    def _batches(self, n: int, device: torch.device):
        perm = torch.randperm(n, device=device)
        return torch.split(perm, int(self.batch_size))

    def _train_gan(self, gan, ec, X_t, y_t, sources, targets):
        """Alternate generator (Eq. 7, total loss Eq. 5) and discriminator (Eq. 6) steps."""
        # beta1 = 0.5: the usual Adam momentum for GANs (DCGAN); 0.9 oscillates more.
        g_opt = torch.optim.Adam(gan.generator_parameters(), lr=self.lr, betas=(0.5, 0.999))
        d_opt = torch.optim.Adam(gan.discriminators.parameters(), lr=self.lr, betas=(0.5, 0.999))
        names = ["identity", "adversarial", "classification", "target_classification", "diversity"]
        keys = [*names, "total", "discriminator"]
        n = len(y_t)
        gan.train()
        bar = progress(range(self.n_epochs), desc=_NAME, verbose=self.verbose)
        for epoch in bar:
            sums = X_t.new_zeros(len(keys))
            for idx in self._batches(n, X_t.device):
                s, y_s = X_t[idx], y_t[idx]
                # Eq. 2: requested classes r (the classes to over-sample) and utterances T
                # drawn as at sampling time (class r and its nearest classes).
                r = targets[torch.randint(len(targets), (len(idx),), device=X_t.device)]
                t = X_t[sources.draw(r)]

                gan.discriminators.requires_grad_(False)
                total, terms, fake = gan.generator_loss(
                    ec,
                    s,
                    y_s,
                    t,
                    r,
                    lambda_identity=self.lambda_identity,
                    lambda_adversarial=self.lambda_adversarial,
                    lambda_classification=self.lambda_classification,
                    lambda_diversity=self.lambda_diversity,
                )
                g_opt.zero_grad(set_to_none=True)
                total.backward()
                g_opt.step()
                gan.discriminators.requires_grad_(True)

                d_loss = gan.discriminator_loss(torch.cat([s, t]), fake.detach())
                d_opt.zero_grad(set_to_none=True)
                d_loss.backward()
                d_opt.step()

                values = [*(terms[k] for k in names), total.detach(), d_loss.detach()]
                sums += torch.stack(values) * len(idx)
            means = (sums / n).tolist()
            record = {"epoch": epoch + 1}
            for key, value in zip(keys, means):
                record[key] = check_finite_loss(
                    value,
                    estimator=_NAME,
                    epoch=epoch + 1,
                    term=f"{key} loss",
                    hint=_HINT.format(lr=self.lr),
                )
            self.history_.append(record)
            bar.set_postfix(total=f"{record['total']:.3f}", d=f"{record['discriminator']:.3f}")

    def _generate(self, gan, judges, X_t, sources, code: int, count: int):
        """``count`` synthetic rows of class ``code`` (standardised) and their sources.

        Vectorised rounds of candidates ``G_T->S(x, Z_r)``. With ``filter_synthetic`` a
        candidate is kept only when the cross-fitted judge that never saw its source row
        assigns it to ``code``; rounds draw twice the missing count, and after
        :data:`MAX_FILTER_ROUNDS` the remainder is filled with the rejected candidates of
        highest judged probability (a :class:`SyntheticRowsWarning` says how many).
        Non-finite candidates are never kept.
        """
        device = X_t.device
        kept_x, kept_src = [], []
        best_x = X_t.new_zeros((0, X_t.shape[1]))
        best_src = torch.zeros(0, dtype=torch.long, device=device)
        best_p = X_t.new_zeros(0)
        # candidates and accepted ones by source kind: [same class, neighbour class]
        tried = torch.zeros(2, dtype=torch.long, device=device)
        passed = torch.zeros(2, dtype=torch.long, device=device)
        remaining, drawn, rounds = count, 0, 0
        while remaining > 0 and rounds < MAX_FILTER_ROUNDS:
            rounds += 1
            m = max(2 * remaining, 32) if judges is not None else remaining
            r = torch.full((m,), code, dtype=torch.long, device=device)
            src = sources.draw(r)
            x = gan.translate(X_t[src], r)
            drawn += m
            finite = torch.isfinite(x).all(dim=1)
            x = torch.where(finite[:, None], x, torch.zeros_like(x))
            ok = finite
            if judges is not None:
                proba = judges.proba(x, src)
                ok = ok & (proba.argmax(dim=1) == code)
            kind = (sources.labels[src] != code).long()  # 0 same class, 1 neighbour
            tried += torch.bincount(kind, minlength=2)
            passed += torch.bincount(kind[ok], minlength=2)
            accepted = torch.nonzero(ok).squeeze(1)[:remaining]
            kept_x.append(x[accepted])
            kept_src.append(src[accepted])
            remaining -= len(accepted)
            if judges is not None:
                # Keep the best `remaining` rejected candidates for the fallback fill.
                rejected = torch.nonzero(finite & ~ok).squeeze(1)
                best_x = torch.cat([best_x, x[rejected]])
                best_src = torch.cat([best_src, src[rejected]])
                best_p = torch.cat([best_p, proba[rejected, code]])
                top = torch.argsort(best_p, descending=True, stable=True)[:count]
                best_x, best_src, best_p = best_x[top], best_src[top], best_p[top]
        filled = 0
        label = self.classes_[code]
        if remaining > 0:
            if len(best_p) < remaining:
                raise TrainingDivergedError(
                    f"{_NAME}: the generator produced non-finite rows for class "
                    f"{label!r}. " + _HINT.format(lr=self.lr)
                )
            kept_x.append(best_x[:remaining])
            kept_src.append(best_src[:remaining])
            filled = remaining
            warnings.warn(
                f"{_NAME}: only {count - filled} of {count} synthetic rows of class {label!r} "
                f"passed the filter in {drawn} candidates; the other {filled} are the "
                "rejected candidates the judges rated most likely of that class. See "
                "acceptance_rate_; more GAN epochs or filter_synthetic=False change this.",
                SyntheticRowsWarning,
                stacklevel=3,
            )
        self.filter_stats_[label] = {
            "requested": count,
            "candidates": drawn,
            "accepted": count - filled,
            "filled": filled,
        }
        tried, passed = tried.tolist(), passed.tolist()
        self.acceptance_rate_[label] = {
            "all": sum(passed) / max(sum(tried), 1),
            "same_class": passed[0] / tried[0] if tried[0] else float("nan"),
            "neighbour_class": passed[1] / tried[1] if tried[1] else float("nan"),
        }
        return torch.cat(kept_x).cpu().numpy(), torch.cat(kept_src).cpu().numpy()

    # ---------------------------------------------------------------------------------
    # output
    # ---------------------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.sampler_tags.sample_indices = True
        return tags

    def __getstate__(self):
        # Pickle the networks on the CPU: a CUDA-fitted sampler must load on any machine.
        from .persistence import cpu_state

        return cpu_state(super().__getstate__())


def _check_neighbours(sampler, y) -> None:
    """Clear error when a SMOTE-style sampler has too few samples of a class to interpolate.

    imbalanced-learn leaves this case to ``NearestNeighbors.kneighbors``, whose message
    names neither the class nor ``k_neighbors``.
    """
    k = getattr(sampler, "k_neighbors", None)
    if not isinstance(k, Integral) or isinstance(k, bool):
        return  # a NearestNeighbors instance, or no such parameter: left to the sampler
    y = np.asarray(y)
    strategy = check_sampling_strategy(sampler.sampling_strategy, y, "over-sampling")
    labels, counts = np.unique(y, return_counts=True)
    count = dict(zip(labels.tolist(), counts.tolist()))
    small = {c: count[c] for c, n in strategy.items() if n > 0 and count[c] <= k}
    if not small:
        return
    label, n = min(small.items(), key=lambda item: item[1])
    lower = f"lower `k_neighbors` to at most {n - 1}, " if n > 1 else ""
    raise ValueError(
        f"{type(sampler).__name__}(k_neighbors={k}) needs more than k_neighbors samples of "
        f"every class it over-samples, but class {label!r} has {n}: {lower}leave the class "
        "out of `sampling_strategy`, or use EmoGANSampler or RandomOverSampler, which handle "
        "classes of any size."
    )


class ConversationSampler(BaseEstimator):
    """Run any imbalanced-learn over-sampler on the features of a conversation frame.

    ``SMOTE`` and friends validate X as one numeric matrix, so on a conversation frame they
    either fail (string dialogue ids) or interpolate the metadata into nonsense (a dialogue
    id of 3.7). This wrapper hands the sampler the feature columns only and gives every
    synthetic row valid metadata, exactly like :class:`EmoGANSampler`:

    * the *source* of a synthetic row is the real row it was copied from when the sampler
      reports ``sample_indices_`` (``RandomOverSampler``), otherwise the nearest real row of
      the same class in the standardised feature space (for SMOTE-style samplers one end of
      the interpolation segment, or its closest neighbour);
    * ``placement="after_source"`` puts it in the source's dialogue right after it, with the
      source's speaker; ``"standalone"`` makes it a one-utterance dialogue.

    Plain arrays and frames without metadata pass straight to the wrapped sampler.

    Parameters
    ----------
    sampler : imbalanced-learn over-sampler
        Cloned in ``fit_resample``; its ``sampling_strategy`` decides how many rows to add.
    placement : {"after_source", "standalone"}, default="after_source"

    Attributes
    ----------
    sampler_ : estimator
        The fitted clone.
    sample_indices_ : ndarray of shape (n_resampled,) or None
        Source row of every output row (real rows map to themselves); None for a plain
        table when the wrapped sampler does not report its sources.
    synthetic_mask_ : ndarray of bool, shape (n_resampled,)
    """

    _sampling_type = "over-sampling"

    def __init__(self, sampler=None, placement="after_source"):
        self.sampler = sampler
        self.placement = placement

    def fit_resample(self, X, y):
        """Resample the feature columns with the wrapped sampler; carry the metadata."""
        from sklearn.base import clone
        from sklearn.neighbors import NearestNeighbors

        if self.sampler is None or not hasattr(self.sampler, "fit_resample"):
            raise TypeError(
                f"sampler={self.sampler!r}: expected an imbalanced-learn sampler with "
                "fit_resample, e.g. SMOTE()."
            )
        if self.placement not in ("after_source", "standalone"):
            raise ValueError(
                f"placement={self.placement!r}: expected 'after_source' or 'standalone'."
            )
        self.sampler_ = clone(self.sampler)
        check_labels(y)
        conv = check_conversations(X)
        _check_neighbours(self.sampler_, y)
        if conv.is_plain:
            X_res, y_res = self.sampler_.fit_resample(X, y)
            self.sample_indices_ = getattr(self.sampler_, "sample_indices_", None)
            self.synthetic_mask_ = np.arange(len(X_res)) >= conv.n_samples
            return X_res, y_res
        y_array = np.asarray(y)
        features, y_res = self.sampler_.fit_resample(conv.X, y_array)
        features, y_res = np.asarray(features), np.asarray(y_res)
        n = conv.n_samples
        if not np.array_equal(features[:n], conv.X):
            raise ValueError(  # every imblearn over-sampler keeps the real rows first
                f"{type(self.sampler).__name__} did not return the original rows first; "
                "ConversationSampler supports over-samplers only."
            )
        if hasattr(self.sampler_, "sample_indices_"):
            sources = np.asarray(self.sampler_.sample_indices_)[n:]
        elif len(features) == n:  # nothing to add (already balanced)
            sources = np.zeros(0, dtype=np.int64)
        else:
            scaler = StandardScaler().fit(conv.X)
            real, new = scaler.transform(conv.X), scaler.transform(features[n:])
            sources = np.empty(len(new), dtype=np.int64)
            for label in np.unique(y_res[n:]):
                rows = np.flatnonzero(y_array == label)
                todo = np.flatnonzero(y_res[n:] == label)
                nearest = NearestNeighbors(n_neighbors=1).fit(real[rows])
                sources[todo] = rows[nearest.kneighbors(new[todo], return_distance=False)[:, 0]]
        self.sample_indices_ = np.concatenate([np.arange(n), sources])
        self.synthetic_mask_ = np.arange(len(y_res)) >= n
        X_out = _assemble(
            X, conv, features.astype(conv.X.dtype, copy=False), self.sample_indices_, self.placement
        )
        index = X_out.index if isinstance(X_out, pd.DataFrame) else None
        return X_out, _wrap_like(y_res, y, index=index)
