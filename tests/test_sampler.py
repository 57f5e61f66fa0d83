"""EmoGANSampler and the EmoGAN loss terms (paper Eq. 1-7)."""

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from imblearn.pipeline import Pipeline
from imblearn.utils.estimator_checks import parametrize_with_checks as imblearn_checks
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.utils.estimator_checks import parametrize_with_checks as sklearn_checks

from sklearn_cberl.conversation import METADATA_COLUMNS, check_conversations
from sklearn_cberl.datasets import make_conversations
from sklearn_cberl.exceptions import TrainingDivergedError
from sklearn_cberl.nn import gan
from sklearn_cberl.over_sampling import EmoGANSampler, SyntheticRowsWarning

META = list(METADATA_COLUMNS)
# Tiny networks and few epochs: enough to exercise every code path quickly.
FAST = dict(max_epochs=2, classifier_max_epochs=2, hidden_size=16, latent_size=4, random_state=0)
# Enough optimisation steps on ~600 utterances for the generator to learn class r (~3 s).
TRAINED = dict(
    max_epochs=30,
    classifier_max_epochs=20,
    hidden_size=64,
    batch_size=64,
    device="cpu",
    random_state=0,
)


def features(frame):
    return frame.drop(columns=[*META, "synthetic"], errors="ignore").to_numpy()


# --------------------------------------------------------------------------------------------
# scikit-learn / imbalanced-learn API checks
# --------------------------------------------------------------------------------------------


@sklearn_checks([EmoGANSampler(**FAST)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# imbalanced-learn's check_samplers_fit_resample requires an over-sampler to balance every
# class; EmoGANSampler's default (sampling_strategy=0.1, chosen on validation data, see
# docs/sampler.md) stops at a tenth of the majority, so the contract is checked with "auto".
@pytest.mark.parametrize(
    # imbalanced-learn hands pytest a generator, which pytest 9 deprecates: materialise it.
    "estimator, check",
    list(imblearn_checks([EmoGANSampler(**FAST, sampling_strategy="auto")]).args[1]),
    ids=imblearn_checks([EmoGANSampler(**FAST)]).kwargs["ids"],
)
def test_imblearn_compatible(estimator, check):
    check(estimator)


def test_pipeline_first_step_and_grid_search(small_conversations):
    X, y = small_conversations
    # The features by name: the metadata and the samplers' `synthetic` row mark (present in
    # fit, absent at predict) are left out.
    drop_meta = ColumnTransformer(
        [("features", "passthrough", make_column_selector(r"^(?:text|audio|visual)_"))]
    )
    pipe = Pipeline(
        [
            ("aug", EmoGANSampler(**FAST)),
            ("features", drop_meta),
            ("clf", LogisticRegression(max_iter=300)),
        ]
    )
    search = GridSearchCV(
        pipe,
        {"aug__placement": ["after_source", "standalone"], "aug__filter_synthetic": [True]},
        cv=GroupKFold(2),
        scoring="f1_weighted",
    )
    search.fit(X, y, groups=X["dialogue_id"])
    assert set(search.cv_results_["param_aug__placement"]) == {"after_source", "standalone"}
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    sampler = search.best_estimator_.named_steps["aug"]
    # The refitted sampler really added rows during fit, and predict sees real rows only.
    assert sampler.synthetic_mask_.sum() > 0
    assert len(search.predict(X)) == len(X)


def test_numpy_input_and_list_input():
    X, y = make_conversations(n_dialogues=10, modalities={"a": 8}, random_state=1)
    arr = features(X)
    X_res, y_res = EmoGANSampler(**FAST).fit_resample(arr, y.to_numpy())
    assert isinstance(X_res, np.ndarray) and X_res.dtype == np.float64
    assert_array_equal(X_res[: len(arr)], arr)
    X_list, y_list = EmoGANSampler(**FAST).fit_resample(arr.tolist(), y.tolist())
    assert isinstance(X_list, list) and isinstance(y_list, list)
    assert_allclose(np.asarray(X_list), X_res)


# --------------------------------------------------------------------------------------------
# Loss equations on hand-computable tensors
# --------------------------------------------------------------------------------------------


def test_adversarial_loss_eq3():
    zero = torch.zeros(4)
    # D(.) = sigmoid(0) = 1/2 everywhere: -(log 1/2 + log(1 - 1/2)) = 2 log 2.
    assert gan.adversarial_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    real, fake = torch.tensor([math.log(3.0)]), torch.tensor([-math.log(3.0)])
    # D(T) = 3/4, D(G(S)) = 1/4: -(log 3/4 + log 3/4).
    assert gan.adversarial_loss(real, fake).item() == pytest.approx(-2 * math.log(0.75))
    # Generator side, non-saturating: -log D(G(S)) = -log 1/4.
    assert gan.generator_adversarial_loss(fake).item() == pytest.approx(-math.log(0.25))


def test_identity_loss_eq4():
    s, t = torch.zeros(2, 3), torch.ones(2, 3)
    # ||(s + 1) - s||^2 / d = 1 and ||(t + 2) - t||^2 / d = 4 per row.
    assert gan.identity_loss(s + 1, s, t + 2, t).item() == pytest.approx(5.0)
    assert gan.identity_loss(s, s, t, t).item() == 0.0


def test_classification_losses_eq1_eq2():
    y = torch.tensor([0, 2])
    uniform = torch.zeros(2, 3)
    # Uniform logits: each cross-entropy is log 3, L_C has two of them.
    assert gan.classification_loss(uniform, uniform, y).item() == pytest.approx(2 * math.log(3))
    # p = (3/4, 1/4) for r = 0: L_RC = -log 3/4.
    logits = torch.tensor([[math.log(3.0), 0.0]])
    r = torch.tensor([0])
    assert gan.target_classification_loss(logits, r).item() == pytest.approx(-math.log(0.75))
    confident = torch.tensor([[20.0, 0, 0], [0, 0, 20.0]])
    assert gan.classification_loss(confident, confident, y).item() < 1e-7


def test_total_loss_eq5():
    one, two, three, four = (torch.tensor(v) for v in (1.0, 2.0, 3.0, 4.0))
    # 1 * 1 + 0.5 * 2 + 0.5 * (3 + 4) = 5.5 with the paper's lambdas.
    assert gan.total_generator_loss(one, two, three, four).item() == pytest.approx(5.5)
    custom = gan.total_generator_loss(
        one, two, three, four, lambda_identity=2, lambda_adversarial=0, lambda_classification=1
    )
    assert custom.item() == pytest.approx(9.0)


def test_generators_start_as_identity_and_all_modalities_come_from_one_pass():
    torch.manual_seed(0)
    model = gan.EmoGAN([3, 2], n_classes=4, hidden_size=8, latent_size=2)
    x = torch.randn(5, 5)
    labels = torch.tensor([0, 1, 2, 3, 0])
    assert torch.equal(model.translate(x, labels), x)  # zero-initialised residual heads
    with torch.no_grad():
        model.g_ts.heads[0].bias.fill_(1.0)
        model.g_ts.heads[1].bias.fill_(-1.0)
    out = model.translate(x, labels)
    assert_allclose((out - x).detach().numpy(), np.tile([1, 1, 1, -1, -1], (5, 1)), rtol=1e-6)
    assert len(model.discriminator_logits(x)) == 2  # one discriminator per modality


def test_alternating_updates_touch_only_their_player():
    torch.manual_seed(0)
    model = gan.EmoGAN([3, 2], n_classes=2, hidden_size=8, latent_size=2)
    ec = gan.EmotionClassifier(5, 2, 8).eval().requires_grad_(False)
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    y_s, r = torch.tensor([0, 1] * 3), torch.tensor([1] * 6)
    total, terms, fake = model.generator_loss(
        ec, s, y_s, t, r, lambda_identity=1, lambda_adversarial=0.5, lambda_classification=0.5
    )
    assert terms["identity"].item() == 0.0  # identity generators at initialisation
    expected = 0.5 * terms["adversarial"] + 0.5 * (
        terms["classification"] + terms["target_classification"]
    )
    assert total.item() == pytest.approx(expected.item())
    model.discriminators.requires_grad_(False)
    total.backward()
    assert all(p.grad is None for p in model.discriminators.parameters())
    assert any(p.grad is not None for p in model.g_ts.parameters())
    model.discriminators.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    model.discriminator_loss(torch.cat([s, t]), fake.detach()).backward()
    assert all(p.grad is None for p in model.generator_parameters())
    assert all(p.grad is not None for p in model.discriminators.parameters())


# --------------------------------------------------------------------------------------------
# What the synthetic rows are
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_unfiltered(small_conversations):
    X, y = small_conversations
    # The paper's loss (no mode-seeking term): its raw translations must carry class r.
    sampler = EmoGANSampler(filter_synthetic=False, lambda_diversity=0.0, **TRAINED)
    X_res, y_res = sampler.fit_resample(X, y)
    return X, y, sampler, X_res, y_res


def test_synthetic_rows_carry_their_class(trained_unfiltered):
    # Without the EC_s filter, the generator itself must have learned to produce class r.
    X, y, sampler, X_res, y_res = trained_unfiltered
    mask = sampler.synthetic_mask_
    synthetic, labels = features(X_res[mask]), y_res[mask].to_numpy()
    with torch.no_grad():
        logits = sampler.emotion_classifier_(
            torch.as_tensor(sampler.scaler_.transform(synthetic), dtype=torch.float32)
        )
    ec_accuracy = (sampler.classes_[logits.argmax(1).numpy()] == labels).mean()
    assert ec_accuracy >= 0.9
    # An independent judge trained on the real rows agrees (chance level is ~1/6 here).
    judge = LogisticRegression(max_iter=2000).fit(features(X), y)
    assert (judge.predict(synthetic) == labels).mean() >= 0.8


def test_synthetic_rows_are_new_and_close_to_their_class(trained_unfiltered):
    X, y, sampler, X_res, y_res = trained_unfiltered
    real, real_y = features(X), y.to_numpy()
    mask = sampler.synthetic_mask_
    synthetic, labels = features(X_res[mask]), y_res[mask].to_numpy()
    nearest = np.sqrt(((synthetic[:, None, :] - real[None, :, :]) ** 2).sum(-1)).min(axis=1)
    assert nearest.min() > 1e-3  # not copies of real utterances
    for label in np.unique(labels):
        rows = synthetic[labels == label]
        distance = {
            c: np.linalg.norm(rows.mean(0) - real[real_y == c].mean(0)) for c in np.unique(real_y)
        }
        assert min(distance, key=distance.get) == label
        # Spread like the real class (no mode collapse, no blow-up): total variance ratio.
        ratio = np.trace(np.cov(rows.T)) / np.trace(np.cov(real[real_y == label].T))
        assert 0.5 < ratio < 2.0


class _FakeJudges:
    """Judges with a known verdict: ``score(x, source_rows, requested)`` is the probability of
    the requested class (the rest goes to the next class), so the filter accepts a candidate
    when it is above 1/2. The requested class is set by the patched :func:`generate`,
    :func:`probe_sources`, :func:`real_acceptance` and :func:`class_threshold`
    (``_judged_by``)."""

    score = None

    def __init__(self, X_t, y_t, n_classes, *args, **kwargs):
        self.n_classes = n_classes
        self.requested = None

    def proba(self, x, source_rows):
        out = torch.zeros(len(x), self.n_classes)
        p = self.score(x, source_rows, self.requested).float()
        out[:, self.requested] = p
        out[:, (self.requested + 1) % self.n_classes] = 1.0 - p
        return out


def _judged_by(monkeypatch, score):
    """Replace the cross-fitted judges by :class:`_FakeJudges` with verdict ``score``."""
    from sklearn_cberl.over_sampling import _emogan, _gan_training

    judges = type("Judges", (_FakeJudges,), {"score": staticmethod(score)})
    monkeypatch.setattr(_gan_training, "CrossFittedJudges", judges)
    for name in ("generate", "probe_sources", "real_acceptance", "class_threshold"):
        original = getattr(_emogan, name)

        def tell(gan_, judge, X_t, sources, code, *args, _original=original, **kwargs):
            judge.requested = code
            return _original(gan_, judge, X_t, sources, code, *args, **kwargs)

        if name in ("real_acceptance", "class_threshold"):  # no generator argument

            def tell(judge, X_t, sources, code, *args, _original=original, **kwargs):
                judge.requested = code
                return _original(judge, X_t, sources, code, *args, **kwargs)

        monkeypatch.setattr(_emogan, name, tell)


def test_no_rejected_candidate_enters_the_output(small_conversations, monkeypatch):
    """A judge that rejects a known subset of the candidates (first standardised feature
    <= 0): none of them is in the output, and the counts say how many were tried."""
    X, y = small_conversations
    _judged_by(monkeypatch, lambda x, src, code: x[:, 0] > 0)
    params = {**FAST, "max_epochs": 3, "sampling_strategy": 0.5, "generation": "translate"}
    sampler = EmoGANSampler(**params)
    X_res, y_res = sampler.fit_resample(X, y)
    mask = sampler.synthetic_mask_
    standardised = sampler.scaler_.transform(features(X_res[mask]))
    assert (standardised[:, 0] > 0).all()  # every kept row passed the judge
    added = y_res[mask].value_counts().to_dict()
    assert sampler.n_synthetic_ == added
    for label, rate in sampler.acceptance_rate_.items():
        assert 0 < rate["all"] < 1  # and a good share of the candidates did not
        stats = sampler.filter_stats_[label]
        assert stats["candidates"] > stats["requested"] and stats["filled"] == 0
        assert stats["added"] == stats["accepted"] == added[label] == stats["requested"]


def test_no_rejected_candidate_enters_the_default_output(small_conversations, monkeypatch):
    """The default on a class the judges rarely recognise (and whose neighbours' translations
    they accept no more often): same-class generation, and every added row is at least as
    recognisable as a quarter of the class's real rows - no row below that threshold."""
    X, y = small_conversations

    def score(x, src, code):
        return torch.sigmoid(4 * (x[:, 0] - 0.6))  # argmax is the class for ~30 % of rows

    _judged_by(monkeypatch, score)
    sampler = EmoGANSampler(**{**FAST, "max_epochs": 3, "sampling_strategy": 0.5})
    X_res, y_res = sampler.fit_resample(X, y)
    assert "same_class" in sampler.generation_.values()
    mask = sampler.synthetic_mask_
    real = torch.as_tensor(sampler.scaler_.transform(features(X)), dtype=torch.float32)
    new = torch.as_tensor(
        sampler.scaler_.transform(features(X_res[mask])), dtype=torch.float32
    )
    labels = y_res[mask].to_numpy()
    sources = y.to_numpy()[sampler.sample_indices_[mask]]
    for label in np.unique(labels):
        rows = labels == label
        p_new = score(new[torch.as_tensor(rows)], None, None)
        if sampler.generation_[label] == "translate":  # the judges recognise the translations
            assert (p_new > 0.5).all()
            continue
        assert (sources[rows] == label).all()  # made from the class's own utterances
        p_real = score(real[torch.as_tensor((y == label).to_numpy(copy=True))], None, None).double()
        threshold = torch.quantile(p_real, 0.25, interpolation="lower")
        assert (p_new >= threshold.float() - 1e-6).all()
        assert sampler.acceptance_rate_[label]["all"] < 1  # candidates were rejected
        assert sampler.source_weights_[label][label] == 1.0


class _MajorityOnlyClassifier(gan.EmotionClassifier):
    """An EC_s that always predicts class 0, with a small input-dependent margin."""

    def forward(self, x):
        bias = torch.zeros(self.net[-1].out_features, device=x.device)
        bias[0] = 50.0
        return 0.01 * self.net(x) + bias


def test_a_filter_that_rejects_everything_adds_nothing_and_says_so(monkeypatch):
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 6), np.array([0] * 40 + [1] * 12 + [2] * 8)
    from sklearn_cberl.over_sampling import _gan_training

    monkeypatch.setattr(_gan_training, "EmotionClassifier", _MajorityOnlyClassifier)
    sampler = EmoGANSampler(**FAST, sampling_strategy="auto", generation="translate")
    nothing = r"only 0 of 28 .* class 1 passed the filter"
    with pytest.warns(SyntheticRowsWarning, match=nothing) as w:
        X_res, y_res = sampler.fit_resample(X, y)
    # the warnings point at the user's call, not into the package
    assert {r.filename for r in w if r.category is SyntheticRowsWarning} == {__file__}
    assert_array_equal(X_res, X) and assert_array_equal(y_res, y)  # nothing rejected added
    assert sampler.n_synthetic_ == {1: 0, 2: 0} and not sampler.synthetic_mask_.any()
    for label, stats in sampler.filter_stats_.items():
        assert stats["accepted"] == stats["filled"] == stats["added"] == 0
        # bounded: at most MAX_CANDIDATES_PER_ROW candidates per requested row were drawn
        assert stats["requested"] < stats["candidates"] <= 50 * stats["requested"]
        assert sampler.acceptance_rate_[label]["all"] == 0.0


def test_fill_rejected_keeps_the_old_fallback(monkeypatch):
    """``fill="rejected"`` (off by default) fills the request with the rejected candidates
    rated most likely of the class, and says so."""
    rng = np.random.RandomState(0)
    X, y = rng.randn(60, 6), np.array([0] * 40 + [1] * 12 + [2] * 8)
    from sklearn_cberl.over_sampling import _gan_training

    monkeypatch.setattr(_gan_training, "EmotionClassifier", _MajorityOnlyClassifier)
    sampler = EmoGANSampler(
        **FAST, sampling_strategy="auto", fill="rejected", generation="translate"
    )
    with pytest.warns(SyntheticRowsWarning, match="fill='rejected' added 28 rejected"):
        X_res, y_res = sampler.fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [40, 40, 40]  # still exactly balanced
    for stats in sampler.filter_stats_.values():
        assert stats["accepted"] == 0 and stats["filled"] == stats["added"] == stats["requested"]
    assert np.isfinite(X_res).all()


def test_sources_are_chosen_by_measured_acceptance(small_conversations, monkeypatch):
    """Translations from neighbour classes that the judges reject are probed, weighted out
    and never drawn: every row comes from the class itself, and the choice is recorded."""
    X, y = small_conversations
    source_codes = torch.as_tensor(np.unique(y, return_inverse=True)[1])
    # real rows of a class are all recognised: the judges' verdict on translations counts
    _judged_by(monkeypatch, lambda x, src, code: source_codes[src] == code)
    sampler = EmoGANSampler(**{**FAST, "sampling_strategy": 0.5, "n_neighbor_classes": 2})
    X_res, y_res = sampler.fit_resample(X, y)
    mask = sampler.synthetic_mask_
    sources = y.to_numpy()[sampler.sample_indices_[mask]]
    assert_array_equal(sources, y_res[mask].to_numpy())  # translated from their own class
    assert set(sampler.source_acceptance_) == set(sampler.sampling_strategy_)
    for label, probed in sampler.source_acceptance_.items():
        neighbours = sampler.source_classes_[label]
        assert set(probed) == {label, *neighbours}
        assert probed[label] == 1.0 and all(probed[c] == 0.0 for c in neighbours)
        assert sampler.source_weights_[label] == {label: 1.0, **dict.fromkeys(neighbours, 0.0)}
        assert sampler.generation_[label] == "translate"
        assert math.isnan(sampler.acceptance_rate_[label]["neighbour_class"])
        assert sampler.filter_stats_[label]["added"] == sampler.sampling_strategy_[label]


def test_filter_quantile_lets_through_what_is_as_recognisable_as_real_rows(small_conversations):
    """``filter_quantile=q`` also accepts candidates at least as recognisable as the q-quantile
    of the class's own real rows: at least 1 - q of the real rows would pass. Sampling
    options leave the training alone."""
    X, y = small_conversations
    params = {**FAST, "max_epochs": 3, "sampling_strategy": 0.5, "generation": "same_class"}
    plain = EmoGANSampler(**params)  # filter_quantile=0.25
    plain.fit_resample(X, y)
    lenient = EmoGANSampler(**params, filter_quantile=0.5)
    lenient.fit_resample(X, y)
    def losses(sampler):
        return [{k: v for k, v in row.items() if k != "dur"} for row in sampler.history_]

    assert losses(lenient) == losses(plain)
    for label, rate in lenient.acceptance_rate_.items():
        assert rate["real"] >= 0.5
        assert plain.acceptance_rate_[label]["real"] >= 0.75 >= rate["real"] - 0.25


def test_smoothing_spreads_the_rows_around_their_translations(small_conversations):
    from sklearn_cberl.over_sampling._gan_training import SourceSampler, smoothing_kernel

    X, y = small_conversations
    params = {**FAST, "max_epochs": 3, "sampling_strategy": 0.5, "filter_synthetic": False}
    params["generation"] = "same_class"  # the kernel applies to same-class generation

    def distance_to_source(sampler):
        X_res, _ = sampler.fit_resample(X, y)
        mask = sampler.synthetic_mask_
        synthetic = sampler.scaler_.transform(features(X_res[mask]))
        sources = sampler.scaler_.transform(features(X.iloc[sampler.sample_indices_[mask]]))
        return np.linalg.norm(synthetic - sources, axis=1).mean()

    assert distance_to_source(EmoGANSampler(**params)) > 2 * distance_to_source(
        EmoGANSampler(**params, smoothing=0.0)
    )
    # the kernel is the smoothed bootstrap's: smoothing x Silverman's factor x class std
    rows = torch.randn(40, 3)
    codes = np.array([0] * 30 + [1] * 10)
    sources = SourceSampler(codes, np.eye(2), "cpu")
    factor = (4 / (5 * 10)) ** (1 / 7)
    assert torch.allclose(smoothing_kernel(rows, sources, 1, 2.0), 2 * factor * rows[30:].std(0))
    assert smoothing_kernel(rows, sources, 1, 0.0) is None


def test_the_filter_can_say_no_and_records_why(small_conversations):
    """The cross-fitted judges reject candidates (the old EC_s filter accepted all of them)
    and the acceptance rates by source kind are recorded."""
    X, y = small_conversations
    sampler = EmoGANSampler(**{**TRAINED, "max_epochs": 3, "sampling_strategy": 0.5})
    sampler.fit_resample(X, y)
    rates = sampler.acceptance_rate_
    assert set(rates) == set(sampler.sampling_strategy_) == set(sampler.n_synthetic_)
    assert min(r["all"] for r in rates.values()) < 1.0
    for label, rate in rates.items():
        assert set(rate) == {"all", "same_class", "neighbour_class", "real"}
        assert 0.0 <= rate["real"] <= 1.0  # real rows of the class the judges accept
        assert 0.0 <= rate["all"] <= 1.0
        assert sum(sampler.source_weights_[label].values()) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# Metadata placement, dtypes, row order
# --------------------------------------------------------------------------------------------


def test_after_source_placement(small_conversations):
    X, y = small_conversations
    X_before = X.copy()
    sampler = EmoGANSampler(**FAST)
    X_res, y_res = sampler.fit_resample(X, y)
    pd.testing.assert_frame_equal(X, X_before)  # input not mutated
    n = len(X)
    # Original rows first and unchanged (turn is float now: synthetic turns are fractional).
    pd.testing.assert_frame_equal(
        X_res.iloc[:n].drop(columns=["turn", "synthetic"]),
        X.drop(columns="turn").reset_index(drop=True),
    )
    assert_array_equal(X_res["synthetic"], sampler.synthetic_mask_)
    assert_array_equal(X_res["turn"].iloc[:n], X["turn"])
    assert X_res["turn"].dtype == np.float64
    assert_array_equal(sampler.sample_indices_[:n], np.arange(n))
    assert not sampler.synthetic_mask_[:n].any() and sampler.synthetic_mask_[n:].all()
    src = sampler.sample_indices_[n:]
    syn = X_res.iloc[n:]
    assert_array_equal(syn["dialogue_id"], X["dialogue_id"].to_numpy()[src])
    assert_array_equal(syn["speaker"], X["speaker"].to_numpy()[src])
    source_turn = X["turn"].to_numpy()[src]
    assert ((syn["turn"].to_numpy() > source_turn) & (syn["turn"] < source_turn + 1)).all()
    # Still a valid conversation frame: (dialogue_id, turn) unique, strings kept.
    conv = check_conversations(X_res)
    assert conv.n_dialogues == X["dialogue_id"].nunique()
    assert X_res["dialogue_id"].dtype == X["dialogue_id"].dtype


def test_after_source_turns_fit_between_fractional_turns():
    # A frame that was already augmented: turns 0, 0.5, 1 - the new turns must not collide.
    rng = np.random.RandomState(0)
    n = 60
    X = pd.DataFrame(
        {
            "dialogue_id": np.repeat(np.arange(20), 3),
            "speaker": np.tile([0, 1, 0], 20),
            "turn": np.tile([0.0, 0.5, 1.0], 20),
            "text_0": rng.randn(n),
            "text_1": rng.randn(n),
        }
    )
    y = np.array(["a"] * 45 + ["b"] * 15)
    sampler = EmoGANSampler(**FAST)
    X_res, _ = sampler.fit_resample(X, y)
    check_conversations(X_res)  # raises on a duplicate (dialogue_id, turn)
    src = sampler.sample_indices_[n:]
    src_turn = X["turn"].to_numpy()[src]
    next_turn = np.where(src_turn < 1.0, src_turn + 0.5, src_turn + 1.0)
    new_turn = X_res["turn"].to_numpy()[n:]
    assert ((new_turn > src_turn) & (new_turn < next_turn)).all()
    assert X_res["dialogue_id"].dtype == X["dialogue_id"].dtype


@pytest.mark.parametrize("kind", ["int", "str"])
def test_standalone_placement(kind):
    X, y = make_conversations(n_dialogues=12, modalities={"text": 4, "audio": 3}, random_state=3)
    if kind == "int":
        X["dialogue_id"] = X["dialogue_id"].str[3:].astype(np.int64)
        X.loc[X["dialogue_id"] == 0, "dialogue_id"] = 10**6  # ids are not 0..n-1
    sampler = EmoGANSampler(placement="standalone", **FAST)
    X_res, _ = sampler.fit_resample(X, y)
    n = len(X)
    syn = X_res.iloc[n:]
    assert X_res["dialogue_id"].dtype == X["dialogue_id"].dtype
    assert X_res["turn"].dtype == X["turn"].dtype  # ints stay ints
    assert not set(syn["dialogue_id"]) & set(X["dialogue_id"])
    assert syn["dialogue_id"].is_unique and (syn["turn"] == 0).all()
    assert_array_equal(syn["speaker"], X["speaker"].to_numpy()[sampler.sample_indices_[n:]])
    conv = check_conversations(X_res)
    assert conv.n_dialogues == X["dialogue_id"].nunique() + len(syn)


def test_standalone_string_ids_avoid_collisions():
    X, y = make_conversations(n_dialogues=10, modalities={"text": 8}, random_state=4)
    X.loc[X["dialogue_id"] == "dlg0000", "dialogue_id"] = "emogan_0"  # taken on purpose
    X_res, _ = EmoGANSampler(placement="standalone", **FAST).fit_resample(X, y)
    new_ids = X_res["dialogue_id"].iloc[len(X) :]
    assert not set(new_ids) & set(X["dialogue_id"])


def test_dtypes_preserved():
    X, y = make_conversations(n_dialogues=10, modalities={"text": 4, "audio": 3}, random_state=5)
    X = X.astype({f"text_{i}": np.float32 for i in range(4)})
    y = y.astype("category")
    X_res, y_res = EmoGANSampler(**FAST).fit_resample(X, y)
    assert X_res.dtypes.drop(["turn", "synthetic"]).equals(X.dtypes.drop("turn"))
    assert X_res["synthetic"].dtype == bool
    assert y_res.dtype == y.dtype and y_res.name == y.name
    arr = features(X).astype(np.float32)
    X_arr, y_arr = EmoGANSampler(**FAST).fit_resample(arr, y.cat.codes.to_numpy())
    assert X_arr.dtype == np.float32 and y_arr.dtype == np.int8
    assert_array_equal(X_arr[: len(arr)], arr)


def test_interleaved_modality_columns_map_back_to_the_right_columns():
    rng = np.random.RandomState(0)
    n = 40
    X = pd.DataFrame(
        {
            "dialogue_id": np.arange(n),
            "speaker": 0,
            "turn": 0,
            "text_0": rng.randn(n),
            "audio_0": 1000 + rng.randn(n),  # very different scale
            "text_1": rng.randn(n),
        }
    )
    y = np.array([0] * 30 + [1] * 10)
    X_res, _ = EmoGANSampler(**FAST).fit_resample(X, y)
    assert list(X_res.columns) == [*X.columns, "synthetic"]
    synthetic = X_res.iloc[n:]
    assert (synthetic["audio_0"] > 990).all() and (synthetic["text_0"].abs() < 10).all()


# --------------------------------------------------------------------------------------------
# Strategies, degenerate cases, determinism, divergence
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "strategy, expected",
    [
        ("minority", {"a": 40, "b": 20, "c": 40}),
        ("not majority", {"a": 40, "b": 40, "c": 40}),
        ({"b": 25, "c": 12}, {"a": 40, "b": 25, "c": 12}),
        (lambda y: {"c": 30}, {"a": 40, "b": 20, "c": 30}),
    ],
)
def test_sampling_strategies(strategy, expected):
    rng = np.random.RandomState(0)
    X = rng.randn(70, 4)
    y = np.array(["a"] * 40 + ["b"] * 20 + ["c"] * 10)
    _, y_res = EmoGANSampler(sampling_strategy=strategy, **FAST).fit_resample(X, y)
    assert dict(zip(*np.unique(y_res, return_counts=True))) == expected


def test_float_strategy_binary(capsys):
    rng = np.random.RandomState(0)
    X, y = rng.randn(50, 3), np.array([0] * 40 + [1] * 10)
    _, y_res = EmoGANSampler(sampling_strategy=0.5, **FAST).fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [40, 20]
    assert capsys.readouterr() == ("", "")  # verbose=0: the five networks train silently


@pytest.mark.parametrize("n_rare", [1, 2])
def test_tiny_classes(n_rare):
    rng = np.random.RandomState(0)
    X = rng.randn(30 + n_rare, 5)
    y = np.array([0] * 30 + [1] * n_rare)
    sampler = EmoGANSampler(**FAST, sampling_strategy="auto")
    X_res, y_res = sampler.fit_resample(X, y)
    assert np.bincount(y_res).tolist() == [30, 30]
    assert np.isfinite(X_res).all()


def test_single_class_is_a_clear_error():
    with pytest.raises(ValueError, match="class"):
        EmoGANSampler(**FAST).fit_resample(np.ones((5, 2)), np.zeros(5))


def test_nothing_to_generate(small_conversations):
    X, y = small_conversations
    counts = y.value_counts().to_dict()
    sampler = EmoGANSampler(sampling_strategy=counts, **FAST)
    X_res, y_res = sampler.fit_resample(X, y)
    pd.testing.assert_frame_equal(X_res.drop(columns="synthetic"), X.reset_index(drop=True))
    assert not X_res["synthetic"].any()
    assert_array_equal(y_res, y)
    assert sampler.generator_ is None and sampler.history_ == []
    assert not sampler.synthetic_mask_.any()


def test_a_fit_that_trains_nothing_resets_every_fitted_attribute(small_conversations):
    """A no-op refit must not leave the previous fit's networks, history or epochs behind."""
    X, y = small_conversations
    sampler = EmoGANSampler(**{**FAST, "sampling_strategy": 0.5, "early_stopping": "loss"})
    sampler.fit_resample(X, y)
    assert sampler.best_epoch_ >= 1 and sampler.n_iter_ >= 1 and sampler.filter_stats_
    sampler.set_params(sampling_strategy=y.value_counts().to_dict())  # nothing to add
    sampler.fit_resample(X, y)
    assert sampler.history_ == [] and sampler.classifier_history_ == []
    assert sampler.n_iter_ == 0 and sampler.best_epoch_ == 0
    for name in ("gan_", "generator_", "discriminators_", "emotion_classifier_", "scaler_"):
        assert getattr(sampler, name) is None, name
    assert sampler.filter_stats_ == {} and sampler.acceptance_rate_ == {}
    assert sampler.source_classes_ == {}
    assert_array_equal(sampler.sample_indices_, np.arange(len(X)))


def test_deterministic_under_random_state_and_leaves_global_rng_alone(small_conversations):
    X, y = small_conversations
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()[1].copy()  # noqa: NPY002
    a, ya = EmoGANSampler(**FAST).fit_resample(X, y)
    b, yb = EmoGANSampler(**FAST).fit_resample(X, y)
    c, _ = EmoGANSampler(**{**FAST, "random_state": 1}).fit_resample(X, y)
    pd.testing.assert_frame_equal(a, b)
    assert_array_equal(ya, yb)
    assert not np.allclose(features(a.iloc[len(X) :]), features(c.iloc[len(X) :]))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert_array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002


def test_history_and_fitted_attributes(small_conversations, monkeypatch):
    X, y = small_conversations
    modes = set()
    original = gan.EmoGAN.generator_loss

    def generator_loss(self, classifier, *args, **kwargs):
        modes.add(classifier.training)
        return original(self, classifier, *args, **kwargs)

    monkeypatch.setattr(gan.EmoGAN, "generator_loss", generator_loss)
    sampler = EmoGANSampler(**{**FAST, "verbose": 1})
    sampler.fit_resample(X, y)
    assert modes == {False}  # EC_s stays in eval mode (no dropout) while the GAN trains
    ec = sampler.emotion_classifier_
    assert not ec.training and not any(p.requires_grad for p in ec.parameters())
    assert len(sampler.history_) == sampler.n_iter_ == sampler.best_epoch_ == FAST["max_epochs"]
    assert [r["epoch"] for r in sampler.history_] == list(range(1, FAST["max_epochs"] + 1))
    terms = {"identity", "adversarial", "classification", "target_classification", "diversity"}
    keys = {f"train_{t}" for t in terms} | {"epoch", "train_loss", "train_discriminator", "dur"}
    assert keys == set(sampler.history_[0])  # no validation set: no valid_* keys
    # train_loss is the generators' objective, Eq. 5 (no mode-seeking term by default)
    record = sampler.history_[-1]
    assert record["train_loss"] == pytest.approx(
        record["train_identity"]
        + 0.5 * record["train_adversarial"]
        + 0.5 * (record["train_classification"] + record["train_target_classification"]),
        rel=1e-5,
    )
    # EC_s's history has the same format (the toolkit's per-epoch records)
    epochs = FAST["classifier_max_epochs"]
    assert [set(r) for r in sampler.classifier_history_] == [
        {"epoch", "train_loss", "dur"}
    ] * epochs
    assert set(sampler.discriminators_) == {"text", "audio", "visual"}
    assert sampler.generator_ is sampler.gan_.g_ts
    assert set(sampler.source_classes_) == set(y.unique())
    assert sampler.get_feature_names_out().tolist() == list(X.columns)
    clone = pickle.loads(pickle.dumps(sampler))
    x = torch.zeros(2, clone.scaler_.n_features_in_)
    r = torch.tensor([0, 1])
    assert torch.equal(
        clone.gan_.g_ts(x, clone.gan_.one_hot(r, x)),
        sampler.generator_(x, sampler.gan_.one_hot(r, x)),
    )


def test_nan_loss_is_detected(monkeypatch, small_conversations):
    X, y = small_conversations
    monkeypatch.setattr(gan, "identity_loss", lambda *args: torch.tensor(float("nan")))
    with pytest.raises(TrainingDivergedError, match=r"train loss became nan at epoch 1.*lr"):
        EmoGANSampler(**FAST).fit_resample(X, y)


def test_bad_input_messages():
    X, y = make_conversations(n_dialogues=5, modalities={"text": 8}, random_state=0)
    with pytest.raises(ValueError, match="placement"):
        EmoGANSampler(placement="inside").fit_resample(X, y)
    with pytest.raises(ValueError, match="speaker"):
        EmoGANSampler(**FAST).fit_resample(X.drop(columns="speaker"), y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        EmoGANSampler(**FAST).fit_resample(X, y[:-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_the_cpu_contract(small_conversations):
    X, y = small_conversations
    sampler = EmoGANSampler(**{**FAST, "device": "cuda", "sampling_strategy": "auto"})
    X_res, y_res = sampler.fit_resample(X, y)
    assert sampler.device_.type == "cuda"
    assert np.isfinite(features(X_res)).all() and y_res.value_counts().nunique() == 1


# --------------------------------------------------------------------------------------------
# Validation set and early stopping
# --------------------------------------------------------------------------------------------


def test_validation_data_is_recorded_and_changes_nothing_without_early_stopping(
    small_conversations,
):
    X, y = small_conversations
    dialogues = X["dialogue_id"].unique()
    held = X["dialogue_id"].isin(dialogues[:8]).to_numpy()
    X_tr, y_tr = X[~held].reset_index(drop=True), y[~held].reset_index(drop=True)
    params = {**FAST, "max_epochs": 3, "sampling_strategy": 0.5}
    plain, _ = EmoGANSampler(**params).fit_resample(X_tr, y_tr)
    sampler = EmoGANSampler(**params)
    watched, _ = sampler.fit_resample(X_tr, y_tr, validation_data=(X[held], y[held]))
    # The validation draws come from a forked, reseeded RNG: the same synthetic rows.
    pd.testing.assert_frame_equal(plain, watched)
    assert all(np.isfinite(record["valid_loss"]) for record in sampler.history_)
    assert {"valid_identity", "valid_classification", "valid_target_classification"} <= set(
        sampler.history_[0]
    )
    assert sampler.best_epoch_ == 3


def test_early_stopping_holds_out_whole_dialogues(small_conversations, monkeypatch):
    from sklearn_cberl.over_sampling import _emogan

    X, y = small_conversations
    seen = {}
    original = _emogan.train_gan

    def train_gan(*args, rows, valid, **kwargs):
        seen["rows"], seen["valid"] = rows.numpy(), valid
        return original(*args, rows=rows, valid=valid, **kwargs)

    monkeypatch.setattr(_emogan, "train_gan", train_gan)
    params = {**FAST, "sampling_strategy": 0.5, "early_stopping": "loss", "max_epochs": 3}
    sampler = EmoGANSampler(**params, validation_fraction=0.25)
    sampler.fit_resample(X, y)
    kept = np.zeros(len(X), dtype=bool)
    kept[seen["rows"]] = True
    dialogues = X["dialogue_id"].to_numpy()
    assert not set(dialogues[kept]) & set(dialogues[~kept])  # no dialogue on both sides
    assert len(set(dialogues[~kept])) == 10  # a quarter of the 40 dialogues
    features, codes = seen["valid"]
    assert len(features) == len(codes) == (~kept).sum()
    expected = sampler.scaler_.transform(X.loc[~kept, sampler.feature_names_in_[3:]].to_numpy())
    assert_allclose(features.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert_array_equal(sampler.classes_[codes.numpy()], y[~kept])
    assert "valid_loss" in sampler.history_[0]
    # Without early stopping nothing is held out; a table of one dialogue cannot be split.
    EmoGANSampler(**{**params, "early_stopping": None}).fit_resample(X, y)
    assert len(seen["rows"]) == len(X) and seen["valid"] is None
    one = X.assign(dialogue_id="only", turn=np.arange(len(X)))
    EmoGANSampler(**params).fit_resample(one, y)
    assert len(seen["rows"]) == len(X) and seen["valid"] is None


def test_early_stopping_keeps_the_best_validation_epoch(small_conversations):
    X, y = small_conversations
    params = {**FAST, "max_epochs": 15, "lr": 0.02, "sampling_strategy": 0.5}
    sampler = EmoGANSampler(**params, early_stopping="loss", patience=1)
    sampler.fit_resample(X, y)  # validation_fraction of the rows held out of the minibatches
    losses = [record["valid_loss"] for record in sampler.history_]
    assert sampler.best_epoch_ == 1 + int(np.argmin(losses))
    assert len(sampler.history_) in (sampler.best_epoch_ + 1, 15)
