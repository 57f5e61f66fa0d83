"""Determinism under ``random_state``, the user's RNG state, and training faults.

Faults: divergence (NaN/inf loss) is reported with the epoch and a hint; a
``KeyboardInterrupt`` during the training of any network ends that training and keeps its
best weights (skorch's behaviour): the classifier, DJVAE and the sampler stay usable.
"""

import random
import threading

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from imblearn.over_sampling import SMOTE
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, GroupKFold
from tiny import CLF, GAN, PIPE, VAE

from sklearn_cberl import make_cberl_pipeline
from sklearn_cberl.classifier import CBERLClassifier, CBERLNet
from sklearn_cberl.exceptions import TrainingDivergedError
from sklearn_cberl.fusion import DJVAE
from sklearn_cberl.fusion._djvae import DJVAENet
from sklearn_cberl.nn.gan import EmoGAN
from sklearn_cberl.nn.mgnn import CBERLLoss
from sklearn_cberl.over_sampling import ConversationSampler, EmoGANSampler
from sklearn_cberl.over_sampling._gan_training import EmoGANNet


@pytest.fixture(scope="module")
def data(tiny_conversations):
    return tiny_conversations


def run(name, seed, X, y):
    """Fit one estimator with ``random_state=seed``; return its output on X."""
    if name == "gan":
        return EmoGANSampler(random_state=seed, **GAN).fit_resample(X, y)[0].to_numpy()
    if name == "smote":
        sampler = ConversationSampler(SMOTE(k_neighbors=3, random_state=seed))
        return sampler.fit_resample(X, y)[0].to_numpy()
    if name == "vae":
        return DJVAE(random_state=seed, **VAE).fit(X).transform(X).to_numpy()
    if name == "clf":
        return CBERLClassifier(random_state=seed, **CLF).fit(X, y).predict_proba(X)
    pipe = make_cberl_pipeline(random_state=seed, device="cpu", **PIPE)
    return pipe.fit(X, y).predict_proba(X)


def numpy_state():
    _, key, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 - users' global RNG
    return key.tobytes(), pos, has_gauss, cached


def rng_snapshot():
    return torch.get_rng_state(), numpy_state(), random.getstate()


def assert_rng_unchanged(before):
    after = rng_snapshot()
    assert torch.equal(after[0], before[0]), "global torch RNG changed"
    assert after[1] == before[1], "global numpy RNG changed"
    assert after[2] == before[2], "Python's random module state changed"


NAMES = ["gan", "smote", "vae", "clf", "pipe"]


@pytest.mark.parametrize("name", NAMES)
def test_same_random_state_gives_identical_outputs_and_leaves_global_rng(data, name):
    X, y = data
    torch.manual_seed(123)
    before = rng_snapshot()
    first = run(name, 0, X, y)
    assert_rng_unchanged(before)
    second = run(name, 0, X, y)
    np.testing.assert_array_equal(first, second)
    other = run(name, 1, X, y)
    # A different seed must change something (the test can fail) - same shape for the
    # deterministic-size outputs, different values.
    assert other.shape != first.shape or not np.array_equal(other, first)


def test_random_state_none_leaves_torch_rng_and_draws_from_numpy(data):
    """``random_state=None`` draws the seed from numpy's global RNG (sklearn's convention)."""
    X, y = data
    torch_state, before = torch.get_rng_state(), numpy_state()
    DJVAE(**VAE).fit(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert numpy_state() != before


# --------------------------------------------------------------------------- divergence
@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda: EmoGANSampler(random_state=0, **{**GAN, "lr": 1e12}),
            # EC_s (or a filter judge) diverges before the GAN: the message names it
            r"EmoGANSampler( \(.+\))?: the .* became (nan|inf) at epoch \d+.*Lower `lr`",
        ),
        (
            lambda: DJVAE(random_state=0, **{**VAE, "lr": 1e12}),
            r"DJVAE: the (train|valid) loss became (nan|inf) at epoch \d+.*lower lr",
        ),
        (
            lambda: CBERLClassifier(random_state=0, **{**CLF, "lr": 1e12}),
            r"CBERLClassifier: the (training|valid) loss.* became (nan|inf) at epoch \d+.*lower lr",
        ),
    ],
    ids=["gan", "vae", "clf"],
)
def test_absurd_learning_rate_is_reported_as_divergence(data, make, match):
    X, y = data
    estimator = make()
    before = rng_snapshot()
    with pytest.raises(TrainingDivergedError, match=match):
        estimator.fit_resample(X, y) if hasattr(estimator, "fit_resample") else estimator.fit(X, y)
    assert_rng_unchanged(before)
    if not hasattr(estimator, "fit_resample"):
        with pytest.raises(NotFittedError):  # nothing half-trained is left to predict with
            estimator.predict(X) if hasattr(estimator, "predict") else estimator.transform(X)


def _nan_from_epoch(epoch, counter):
    """Wrap a loss so that it is NaN from the given epoch on (``counter`` counts epochs)."""

    def poison(loss):
        return loss * float("nan") if counter() >= epoch else loss

    return poison


def test_nan_loss_in_gan_reports_exact_epoch(data, monkeypatch):
    X, y = data
    sampler = EmoGANSampler(random_state=0, **{**GAN, "max_epochs": 4})
    epoch = [0]
    original_step, original_loss = EmoGANNet.train_step, EmoGAN.generator_loss
    poison = _nan_from_epoch(3, lambda: epoch[0])

    def train_step(self, *args, **kwargs):
        epoch[0] = len(self.history)
        return original_step(self, *args, **kwargs)

    def generator_loss(self, *args, **kwargs):
        total, terms, fake = original_loss(self, *args, **kwargs)
        return poison(total), terms, fake

    monkeypatch.setattr(EmoGANNet, "train_step", train_step)
    monkeypatch.setattr(EmoGAN, "generator_loss", generator_loss)
    with pytest.raises(
        TrainingDivergedError, match="EmoGANSampler: the train loss became nan at epoch 3"
    ):
        sampler.fit_resample(X, y)
    assert sampler.gan_ is None and sampler.history_ == []  # nothing half-trained is kept


def test_nan_loss_in_vae_reports_exact_epoch(data, monkeypatch):
    X, _ = data
    model = DJVAE(random_state=0, **VAE).fit(X)  # a first, good fit
    original = DJVAENet.loss_terms

    def loss_terms(self, X, y, training):
        terms = original(self, X, y, training)
        if training and len(self.history) >= 2:  # epoch 2 on
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(DJVAENet, "loss_terms", loss_terms)
    with pytest.raises(TrainingDivergedError, match="DJVAE: the train loss became nan at epoch 2"):
        model.fit(X)
    with pytest.raises(NotFittedError):  # the refit dropped the previous module
        model.transform(X)


def test_nan_loss_in_classifier_reports_exact_epoch(data, monkeypatch):
    X, y = data
    poisoned = [False]
    original_loss, original_forward = CBERLNet.get_loss, CBERLLoss.forward

    def get_loss(self, *args, training=False, **kwargs):
        poisoned[0] = training and len(self.history) >= 2  # epoch 2 on
        return original_loss(self, *args, training=training, **kwargs)

    def forward(self, *args, **kwargs):
        total, focal, recon = original_forward(self, *args, **kwargs)
        return (total * float("nan") if poisoned[0] else total), focal, recon

    monkeypatch.setattr(CBERLNet, "get_loss", get_loss)
    monkeypatch.setattr(CBERLLoss, "forward", forward)
    clf = CBERLClassifier(random_state=0, **CLF)
    with pytest.raises(TrainingDivergedError, match=r"loss \(Eq. 20\) became nan at epoch 2"):
        clf.fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


# --------------------------------------------------------------------------- interrupts
def test_keyboard_interrupt_leaves_a_usable_classifier(data, monkeypatch):
    """skorch catches KeyboardInterrupt, ends training and restores the best weights."""
    X, y = data
    clf = CBERLClassifier(random_state=0, **{**CLF, "max_epochs": 10})
    original = CBERLNet.get_loss

    def get_loss(self, *args, training=False, **kwargs):
        if training and len(self.history) == 4:
            raise KeyboardInterrupt
        return original(self, *args, training=training, **kwargs)

    monkeypatch.setattr(CBERLNet, "get_loss", get_loss)
    before = rng_snapshot()
    clf.fit(X, y)  # returns normally
    assert_rng_unchanged(before)
    assert clf.n_iter_ == 4  # three full epochs and the interrupted fourth
    assert 1 <= clf.best_epoch_ <= 3  # weights of the best validated full epoch
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(1), 1)
    assert set(clf.predict(X)) <= set(y)


def test_keyboard_interrupt_in_the_first_epoch_keeps_consistent_attributes(data, monkeypatch):
    X, y = data
    clf = CBERLClassifier(random_state=0, **{**CLF, "max_epochs": 10})
    original = CBERLNet.get_loss

    def get_loss(self, *args, training=False, **kwargs):
        if training and len(self.history) == 1:
            raise KeyboardInterrupt
        return original(self, *args, training=training, **kwargs)

    monkeypatch.setattr(CBERLNet, "get_loss", get_loss)
    clf.fit(X, y)
    assert clf.n_iter_ == 1 and clf.best_epoch_ == 1  # no validated epoch: the last weights
    assert np.isfinite(clf.predict_proba(X)).all()


def test_keyboard_interrupt_ends_vae_training_with_a_usable_model(data, monkeypatch):
    """Every skorch-trained network ends training on KeyboardInterrupt and keeps its model
    (the best validated epoch, else the last), as the classifier does."""
    X, _ = data
    original = DJVAENet.loss_terms

    def loss_terms(self, X, y, training):
        if training and len(self.history) == 2:
            raise KeyboardInterrupt
        return original(self, X, y, training)

    monkeypatch.setattr(DJVAENet, "loss_terms", loss_terms)
    before = rng_snapshot()
    model = DJVAE(random_state=0, **{**VAE, "max_epochs": 5}).fit(X)  # returns normally
    assert_rng_unchanged(before)
    assert model.n_iter_ == 2 and model.best_epoch_ == 2
    assert np.isfinite(model.transform(X).filter(like="fused_").to_numpy()).all()


def test_keyboard_interrupt_ends_gan_training_with_a_usable_sampler(data, monkeypatch):
    """As for every skorch-trained network: the GAN stops at the interrupt, the sampler keeps
    its networks and still generates."""
    X, y = data
    before = rng_snapshot()
    sampler = EmoGANSampler(random_state=0, **{**GAN, "max_epochs": 5})
    original = EmoGANNet.train_step

    def train_step(self, *args, **kwargs):
        if len(self.history) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(EmoGANNet, "train_step", train_step)
    X_res, y_res = sampler.fit_resample(X, y)  # returns normally
    assert_rng_unchanged(before)
    assert sampler.n_iter_ == 3 and sampler.best_epoch_ == 3  # two full epochs, the third cut
    assert y_res.value_counts().nunique() == 1  # "auto": every class still raised
    # real rows first and unchanged (turn is float once synthetic turns are inserted)
    pd.testing.assert_frame_equal(
        X_res.iloc[: len(X)][X.columns], X.reset_index(drop=True), check_dtype=False
    )
    assert np.isfinite(X_res.iloc[len(X) :][X.columns[3:]].to_numpy()).all()


# --------------------------------------------------------------------------- threads
def test_fits_use_the_configured_threads_and_restore_torchs_setting(data, monkeypatch):
    """Every torch fit and prediction runs on the package's n_threads (1 by default), not on
    torch's global setting, and leaves that setting as it found it."""
    from sklearn_cberl import config_context

    X, y = data
    seen = []
    original = CBERLNet.get_loss

    def get_loss(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CBERLNet, "get_loss", get_loss)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        clf = CBERLClassifier(random_state=0, **{**CLF, "max_epochs": 2}).fit(X, y)
        assert set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        with config_context(n_threads=2):
            CBERLClassifier(random_state=0, **{**CLF, "max_epochs": 2}).fit(X, y)
        assert set(seen) == {2}
        # Same seed, torch set to 1 or 2 threads by the user: the same model (one thread).
        torch.set_num_threads(1)
        again = CBERLClassifier(random_state=0, **{**CLF, "max_epochs": 2}).fit(X, y)
        np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("name", ["gan", "vae", "clf", "pipe"])
def test_fits_in_two_threads_equal_two_sequential_fits(data, name):
    """torch's generator is process-wide: without the seeded-block lock two threads would
    interleave their draws and each get a different model."""
    X, y = data
    sequential = [run(name, seed, X, y) for seed in (0, 1)]
    results = {}

    def fit(seed):
        results[seed] = run(name, seed, X, y)

    threads = [threading.Thread(target=fit, args=(seed,)) for seed in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for seed in (0, 1):
        np.testing.assert_array_equal(results[seed], sequential[seed])


def test_grid_search_threading_backend_equals_one_job(data):
    X, y = data
    pipe = make_cberl_pipeline(random_state=0, device="cpu", **PIPE)
    grid = {"clf__gamma": [0.0, 3.0]}

    def search(n_jobs):
        with joblib.parallel_backend("threading"):
            return GridSearchCV(pipe, grid, cv=GroupKFold(2), n_jobs=n_jobs).fit(
                X, y, groups=X["dialogue_id"]
            )

    one, two = search(1), search(2)
    np.testing.assert_array_equal(
        one.cv_results_["mean_test_score"], two.cv_results_["mean_test_score"]
    )
