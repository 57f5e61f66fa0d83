"""DJVAE (paper Sec. IV-A-2, Eq. 8-12): sklearn conformance, the Eq. 12 terms, fusion behaviour."""

import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_cberl.conversation import METADATA_COLUMNS, check_conversations
from sklearn_cberl.datasets import make_conversations
from sklearn_cberl.exceptions import TrainingDivergedError
from sklearn_cberl.fusion import DJVAE
from sklearn_cberl.nn.vae import (
    ENCODERS,
    DJVAEModule,
    gaussian_kl,
    product_of_experts,
    reconstruction_loss,
)

FAST = dict(n_components=3, hidden_layer_sizes=(16,), max_epochs=4, batch_size=64, device="cpu")


def _low_rank(n=300, d=12, rank=2, noise=0.05, seed=0):
    """Features that a 2-d latent explains almost entirely."""
    rng = np.random.RandomState(seed)
    return rng.randn(n, rank) @ rng.randn(rank, d) * 2.0 + noise * rng.randn(n, d)


def _low_rank_frame(n_dialogues=20, seed=0):
    """A conversation frame whose text/audio blocks share a 2-d latent."""
    X, _ = make_conversations(
        n_dialogues=n_dialogues, modalities={"text": 6, "audio": 4}, random_state=seed
    )
    values = _low_rank(n=len(X), d=10, seed=seed)
    X[[f"text_{i}" for i in range(6)]] = values[:, :6]
    X[[f"audio_{i}" for i in range(4)]] = values[:, 6:] * 100.0  # a different raw scale
    return X


# --------------------------------------------------------------------- sklearn conformance
@parametrize_with_checks(
    [
        DJVAE(**FAST),
        DJVAE(**{**FAST, "encoder": "bilstm", "posterior": "concat"}),
        DJVAE(**{**FAST, "encoder": "conv1d", "beta_warmup": 2}),
        DJVAE(**{**FAST, "encoder": "cnn", "passthrough": True}),
    ],
    # No expected failures: DJVAE encodes each utterance on its own, so even the
    # subset/sample-order invariance checks pass.
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_pickle_and_clone_keep_the_fitted_model(small_conversations):
    X, _ = small_conversations
    model = DJVAE(**FAST, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(model))
    pd.testing.assert_frame_equal(restored.transform(X), model.transform(X))
    assert restored.score(X) == model.score(X)
    fresh = clone(model)
    assert fresh.get_params() == model.get_params()
    assert not hasattr(fresh, "module_")


# --------------------------------------------------------------------- Eq. 12 terms
def test_kl_matches_closed_form_on_hand_values():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    kl = gaussian_kl(mu, logvar)
    # row 0: 1/2 (1 + 1 - 1 - 0) + 1/2 (0 + 2 - 1 - log 2); row 1: the prior itself -> 0
    expected = 0.5 + 0.5 * (1.0 - math.log(2.0))
    torch.testing.assert_close(kl, torch.tensor([expected, 0.0]))
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, torch.exp(0.5 * logvar)),
        torch.distributions.Normal(torch.zeros(2, 2), torch.ones(2, 2)),
    ).sum(dim=1)
    torch.testing.assert_close(kl, reference)


def test_reconstruction_is_a_weighted_per_feature_mean_and_masks_missing_blocks():
    x = torch.zeros(2, 3)
    x_hat = torch.tensor([[1.0, 3.0, 2.0], [1.0, 1.0, 4.0]])
    blocks = [slice(0, 2), slice(2, 3)]
    present = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # row 1 misses the second block
    weights = torch.tensor([1.5, 1.5])
    loss = reconstruction_loss(x_hat, x, blocks, present, weights)
    # row 0: 0.5 * 1.5 * (mean(1, 9) + 4) = 6.75; row 1: 0.5 * 1.5 * mean(1, 1) = 0.75
    torch.testing.assert_close(loss, torch.tensor([6.75, 0.75]))
    x_hat[1, 2] = 1e6  # the missing block's reconstruction does not matter
    torch.testing.assert_close(
        reconstruction_loss(x_hat, x, blocks, present, weights)[1], torch.tensor(0.75)
    )


def test_product_of_experts_closed_form_and_missing_experts():
    mu = torch.tensor([[[2.0]], [[-1.0]]])  # 2 modalities, 1 row, 1 latent dim
    logvar = torch.log(torch.tensor([[[1.0]], [[0.5]]]))
    both, both_logvar = product_of_experts(mu, logvar, torch.tensor([[1.0], [1.0]]))
    # precisions: prior 1, expert A 1, expert B 2 -> total 4; mean (2*1 - 1*2) / 4 = 0
    torch.testing.assert_close(both, torch.tensor([[0.0]]))
    torch.testing.assert_close(both_logvar, torch.log(torch.tensor([[0.25]])))
    only_a, _ = product_of_experts(mu, logvar, torch.tensor([[1.0], [0.0]]))
    torch.testing.assert_close(only_a, torch.tensor([[1.0]]))  # 2 * 1 / (1 + 1)
    none, none_logvar = product_of_experts(mu, logvar, torch.zeros(2, 1))
    torch.testing.assert_close(none, torch.zeros(1, 1))  # nothing observed -> the prior
    torch.testing.assert_close(none_logvar, torch.zeros(1, 1))


@pytest.mark.parametrize("kind", sorted(ENCODERS))
@pytest.mark.parametrize("width", [1, 7, 30])
def test_every_encoder_handles_any_block_width(kind, width):
    module = DJVAEModule([width, 3], [kind, "mlp"], n_components=4, hidden_sizes=(8,))
    x = torch.randn(5, width + 3)
    x_hat, mu, logvar = module(x, torch.ones(2, 5))
    assert x_hat.shape == (5, width + 3) and mu.shape == logvar.shape == (5, 4)
    assert torch.isfinite(x_hat).all()


# --------------------------------------------------------------------- fitting
def test_latent_shape_and_transform_is_deterministic():
    X = _low_rank()
    params = {**FAST, "n_components": 5, "passthrough": False}
    model = DJVAE(**params, random_state=0).fit(X)
    Z = model.transform(X)
    assert Z.shape == (300, 5) and Z.dtype == np.float64
    np.testing.assert_array_equal(Z, model.transform(X))
    again = DJVAE(**params, random_state=0).fit(X)
    np.testing.assert_array_equal(Z, again.transform(X))
    other = DJVAE(**params, random_state=1).fit(X)
    assert not np.allclose(Z, other.transform(X))


def test_reconstruction_error_falls_and_history_records_both_terms():
    X = _low_rank()
    model = DJVAE(n_components=2, max_epochs=30, batch_size=32, random_state=0, device="cpu")
    model.fit(X)
    history = pd.DataFrame(model.history_)
    assert {
        "epoch",
        "train_loss",
        "train_reconstruction",
        "train_kl",
        "beta",
        "dur",
    } == set(history.columns)
    assert history["epoch"].tolist() == list(range(1, 31))
    rec = history["train_reconstruction"].to_numpy()
    assert rec[-1] < 0.3 * rec[0]
    assert (history["train_kl"] > 0).all()
    np.testing.assert_allclose(
        history["train_loss"], history["train_reconstruction"] + history["train_kl"], rtol=1e-5
    )
    # A trained model reconstructs far better than the column means (inverse_transform).
    X_hat = model.inverse_transform(model.transform(X))
    assert np.mean((X_hat - X) ** 2) < 0.2 * np.mean((X - X.mean(0)) ** 2)
    # ... and has a higher ELBO than a barely trained one.
    assert model.score(X) > DJVAE(n_components=2, max_epochs=1, random_state=0).fit(X).score(X)


def test_kl_warmup_ramps_beta():
    model = DJVAE(**{**FAST, "beta": 0.5, "beta_warmup": 2, "max_epochs": 4}, random_state=0)
    model.fit(_low_rank(n=50))
    assert [h["beta"] for h in model.history_] == [0.25, 0.5, 0.5, 0.5]


def test_fit_leaves_global_torch_rng_alone():
    state = torch.random.get_rng_state()
    DJVAE(**FAST, random_state=0).fit(_low_rank(n=50))
    assert torch.equal(state, torch.random.get_rng_state())


def test_divergence_is_reported_with_the_epoch():
    with pytest.raises(TrainingDivergedError, match=r"at epoch \d+.*lower lr"):
        DJVAE(**{**FAST, "lr": 1e8}, random_state=0).fit(_low_rank(n=100))


# --------------------------------------------------------------------- conversation frames
def test_conversation_output_metadata_first_same_index_input_untouched():
    X = _low_rank_frame()
    X.index = pd.RangeIndex(len(X))[::-1] + 1000  # a non-default index
    X = X.sample(frac=1.0, random_state=0)  # rows not grouped by dialogue
    before = X.copy()
    model = DJVAE(**FAST, random_state=0).fit(X)
    out = model.transform(X)
    pd.testing.assert_frame_equal(X, before)
    assert list(out.columns) == [*METADATA_COLUMNS, "fused_0", "fused_1", "fused_2"]
    assert list(model.get_feature_names_out()) == list(out.columns)
    pd.testing.assert_frame_equal(out[list(METADATA_COLUMNS)], X[list(METADATA_COLUMNS)])
    assert model.modalities_ == ["text", "audio"]
    # Row order is the input's: encoding a single row gives that row's latent.
    one = model.transform(X.iloc[[7]])
    np.testing.assert_allclose(one.iloc[0, 3:], out.iloc[7, 3:], rtol=1e-5, atol=1e-6)
    # The output is a valid conversation frame with one "fused" block for the classifier.
    assert list(check_conversations(out).blocks) == ["fused"]


def test_passthrough_keeps_modality_columns_and_names():
    X = _low_rank_frame()
    model = DJVAE(**FAST, passthrough=True, random_state=0).fit(X)
    out = model.transform(X)
    modality = [c for c in X.columns if c not in METADATA_COLUMNS]
    assert list(out.columns) == [*METADATA_COLUMNS, "fused_0", "fused_1", "fused_2", *modality]
    pd.testing.assert_frame_equal(out[modality], X[modality])
    assert list(model.get_feature_names_out()) == list(out.columns)
    # inverse_transform accepts the transform output and returns the original scale.
    back = model.inverse_transform(out)
    assert list(back.columns) == [*METADATA_COLUMNS, *modality]
    pd.testing.assert_index_equal(back.index, X.index)
    # The decoder works in standardised units; inverse_transform undoes each block's scaler.
    decoded = model.module_.decode(torch.zeros(1, 3)).detach().numpy().astype(float)
    scaler = model.scalers_["audio"]
    np.testing.assert_allclose(
        model.inverse_transform(np.zeros((1, 3)))[:, 6:],
        decoded[:, 6:] * scaler.scale_ + scaler.mean_,
        rtol=1e-5,
    )


def test_named_modalities_select_blocks():
    X = _low_rank_frame()
    model = DJVAE(**FAST, modalities=["audio"], random_state=0).fit(X)
    assert model.modalities_ == ["audio"]
    assert list(model.block_features_["audio"]) == [f"audio_{i}" for i in range(4)]
    with pytest.raises(ValueError, match="'video' has no columns"):
        DJVAE(**FAST, modalities=["video"]).fit(X)
    # A frame without metadata is a plain table; named modalities still select its blocks.
    plain = X.drop(columns=list(METADATA_COLUMNS))
    model = DJVAE(**FAST, modalities=["text", "audio"], random_state=0).fit(plain)
    assert model.modalities_ == ["text", "audio"]
    assert model.transform(plain).shape == (len(X), 3)
    assert DJVAE(**FAST, random_state=0).fit(plain).modalities_ == ["x"]  # one block


def test_per_modality_standardisation_ignores_raw_scale():
    X = _low_rank_frame()
    model = DJVAE(**FAST, random_state=0).fit(X)
    scaled = X.copy()
    audio = [f"audio_{i}" for i in range(4)]
    scaled[audio] = scaled[audio] * 1000.0
    # Rescaling a block changes nothing once standardised (up to float32 rounding).
    np.testing.assert_allclose(
        DJVAE(**FAST, random_state=0).fit(scaled).transform(scaled).iloc[:, 3:],
        model.transform(X).iloc[:, 3:],
        rtol=1e-3,
        atol=1e-4,
    )


def test_set_output_pandas_for_arrays_and_frames():
    X = _low_rank(n=60)
    model = DJVAE(**FAST, passthrough=False, random_state=0).set_output(transform="pandas")
    out = model.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["fused_0", "fused_1", "fused_2"]
    frame = _low_rank_frame()
    out = DJVAE(**FAST, random_state=0).set_output(transform="pandas").fit_transform(frame)
    assert list(out.columns[:3]) == list(METADATA_COLUMNS)
    pd.testing.assert_index_equal(out.index, frame.index)


def test_single_modality_keeps_its_input_next_to_the_latent():
    """passthrough="auto": one block -> [latent (+) input] (nothing to fuse, and a narrow
    latent alone would only discard information); several blocks -> the latent alone."""
    two = _low_rank_frame()
    one = two.drop(columns=[c for c in two.columns if c.startswith("audio_")])
    model = DJVAE(**FAST, random_state=0).fit(one)
    out = model.transform(one)
    text = [c for c in one.columns if c.startswith("text_")]
    assert model.passthrough_ and model.modalities_ == ["text"]
    assert list(out.columns) == [*METADATA_COLUMNS, "fused_0", "fused_1", "fused_2", *text]
    pd.testing.assert_frame_equal(out[text], one[text])  # the input itself, unchanged
    assert list(model.get_feature_names_out()) == list(out.columns)
    fused = DJVAE(**FAST, random_state=0).fit(two)
    assert not fused.passthrough_
    assert list(fused.transform(two).columns) == [
        *METADATA_COLUMNS,
        "fused_0",
        "fused_1",
        "fused_2",
    ]
    squeezed = DJVAE(**FAST, passthrough=False, random_state=0).fit(one)
    assert squeezed.transform(one).shape[1] == 3 + 3
    with pytest.raises(ValueError, match="'passthrough' parameter of DJVAE must be"):
        DJVAE(**FAST, passthrough="yes").fit(one)


# --------------------------------------------------------------------- missing modalities
def test_all_zero_block_is_a_missing_modality():
    X = _low_rank_frame()
    audio = [f"audio_{i}" for i in range(4)]
    missing = np.zeros(len(X), dtype=bool)
    missing[::3] = True
    X.loc[missing, audio] = 0.0
    model = DJVAE(**FAST, random_state=0).fit(X)
    # Standardisation statistics come from the rows where audio is present.
    np.testing.assert_allclose(model.scalers_["audio"].mean_, X.loc[~missing, audio].mean())
    unmasked = DJVAE(**FAST, mask_missing=False, random_state=0).fit(X)
    np.testing.assert_allclose(unmasked.scalers_["audio"].mean_, X[audio].mean())
    # A missing block is hidden from the encoders: its (standardised) filler values do not
    # move the latent, while the same row with its audio present is encoded differently.
    Z = model.transform(X)
    row = int(np.flatnonzero(missing)[0])
    present_again = X.iloc[[row]].copy()
    present_again[audio] = X.loc[~missing, audio].iloc[0].to_numpy()
    assert not np.allclose(model.transform(present_again).iloc[0, 3:], Z.iloc[row, 3:])
    # A row with every modality missing falls back to the N(0, I) prior mean.
    empty = X.iloc[[row]].copy()
    empty[[c for c in X.columns if c not in METADATA_COLUMNS]] = 0.0
    np.testing.assert_allclose(model.transform(empty).iloc[0, 3:].to_numpy(float), 0.0)
    # The masked loss stays finite and training still reduces it.
    assert model.history_[-1]["train_reconstruction"] < model.history_[0]["train_reconstruction"]


def test_modality_missing_in_every_training_row_is_an_error():
    X = _low_rank_frame()
    X[[f"audio_{i}" for i in range(4)]] = 0.0
    with pytest.raises(ValueError, match="'audio' is all zeros"):
        DJVAE(**FAST).fit(X)


# --------------------------------------------------------------------- input errors
@pytest.mark.parametrize(
    ("params", "match"),
    [
        # sklearn's parameter validation: names the parameter, the expectation, the value
        ({"n_components": 0}, "'n_components' parameter of DJVAE must be an int in the range"),
        ({"beta": -1.0}, "'beta' parameter of DJVAE must be a float in the range"),
        ({"lr": 0.0}, "'lr' parameter of DJVAE must be a float in the range"),
        ({"posterior": "sum"}, "'posterior' parameter of DJVAE must be a str among"),
        ({"encoder": "transformer"}, "'encoder' parameter of DJVAE must be a str among"),
        ({"encoder": {"video": "cnn"}}, r"not among the fitted blocks"),
        ({"encoder": {"text": "gru"}}, "encoder kinds must be among"),
        ({"hidden_layer_sizes": (16, 0)}, "hidden_layer_sizes must be a non-empty sequence"),
    ],
)
def test_bad_parameters_raise_clear_errors(params, match):
    with pytest.raises(ValueError, match=match):
        DJVAE(**{**FAST, **params}).fit(_low_rank_frame(n_dialogues=5))


def test_input_kind_must_match_fit_and_modalities_need_names():
    X = _low_rank_frame(n_dialogues=5)
    model = DJVAE(**FAST, random_state=0).fit(X)
    with pytest.raises(ValueError, match="fitted on a conversation frame"):
        model.transform(X.drop(columns=list(METADATA_COLUMNS)))
    with pytest.raises(ValueError, match="needs named columns"):
        DJVAE(**FAST, modalities=["text"]).fit(_low_rank(n=20))
    with pytest.raises(ValueError, match="expected the latent"):
        model.inverse_transform(np.zeros((2, 5)))


def test_verbose_shows_progress_and_default_is_silent(capsys):
    X = _low_rank(n=40)
    DJVAE(**FAST, random_state=0).fit(X)
    assert capsys.readouterr().err == ""
    DJVAE(**FAST, random_state=0, verbose=1).fit(X)
    err = capsys.readouterr().err
    assert "DJVAE" in err and "train_kl" in err


# --------------------------------------------------------------------- validation, early stopping
def test_validation_data_is_recorded_and_changes_nothing_without_early_stopping():
    X = _low_rank_frame(n_dialogues=20)
    X_val = _low_rank_frame(n_dialogues=6, seed=1)
    plain = DJVAE(**FAST, random_state=0).fit(X)
    watched = DJVAE(**FAST, random_state=0).fit(X, validation_data=(X_val, None))
    assert all("valid_loss" in record for record in watched.history_)
    assert all(np.isfinite(record["valid_loss"]) for record in watched.history_)
    # The validation draws come from their own generator: training is the same fit.
    np.testing.assert_array_equal(plain.transform(X_val), watched.transform(X_val))
    assert watched.best_epoch_ == watched.n_iter_ == FAST["max_epochs"]


def test_early_stopping_keeps_the_best_validation_epoch():
    X = _low_rank_frame(n_dialogues=20)
    X_val = _low_rank_frame(n_dialogues=6, seed=1)
    params = {**FAST, "max_epochs": 40, "lr": 0.05, "early_stopping": "loss", "patience": 2}
    model = DJVAE(**params, random_state=0).fit(X, validation_data=X_val)
    losses = [record["valid_loss"] for record in model.history_]
    assert model.best_epoch_ == 1 + int(np.argmin(losses))
    # It stopped `patience` epochs after the best one, or at max_epochs.
    assert model.n_iter_ in (model.best_epoch_ + 2, params["max_epochs"])
    # The module holds the best epoch's weights: its validation score is that epoch's
    # (score() = minus the validation loss, same seeded Monte Carlo draw).
    assert -model.score(X_val) == pytest.approx(min(losses), rel=1e-4)


def test_early_stopping_without_validation_data_holds_out_dialogues():
    X = _low_rank_frame(n_dialogues=20)
    model = DJVAE(**FAST, early_stopping="loss", validation_fraction=0.25, random_state=0).fit(X)
    assert "valid_loss" in model.history_[0]
    again = DJVAE(**FAST, early_stopping="loss", validation_fraction=0.25, random_state=0).fit(X)
    np.testing.assert_array_equal(model.transform(X), again.transform(X))
