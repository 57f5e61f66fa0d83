"""synthetic_diagnostics on a hand-made case whose distances are known."""

import numpy as np
import pandas as pd
import pytest

from sklearn_cberl.diagnostics import synthetic_diagnostics


class _SignJudge:
    """Calls a row "b" when its first feature is positive, else "a"."""

    def predict(self, X):
        return np.where(np.asarray(X)[:, 0] > 0, "b", "a")


def test_distances_relative_to_the_real_nearest_neighbour_distance():
    # Real rows on a line, 1 apart; class "b" = the four on the right, so its nearest-neighbour
    # distance is one raw unit (u once standardised; the second feature is constant).
    real = np.array([[-3.0, 0], [-2, 0], [-1, 0], [1, 0], [2, 0], [3, 0], [4, 0]])
    y = np.array(["a", "a", "a", "b", "b", "b", "b"])
    u = 1.0 / real[:, 0].std()
    # Two synthetic "b" rows, each half a unit from its source: one from the b row at 1
    # (landing at 1.5), one translated from the "a" row at -3 (landing at -2.5, which the
    # judge calls "a").
    synthetic = np.array([[1.5, 0.0], [-2.5, 0.0]])
    X = pd.DataFrame(real, columns=["text_0", "text_1"])
    X_res = pd.DataFrame(np.vstack([real, synthetic]), columns=["text_0", "text_1"])
    y_res = np.concatenate([y, ["b", "b"]])
    sample_indices = np.concatenate([np.arange(7), [3, 0]])
    out = synthetic_diagnostics(X, y, X_res, y_res, sample_indices, judge=_SignJudge())
    b = out.loc["b"]
    assert b["n_synthetic"] == 2
    assert b["real_nn"] == pytest.approx(u)
    # to its source: 0.5 and 0.5 raw units -> median 0.5 nearest-neighbour distances
    assert b["to_source"] == pytest.approx(0.5)
    # to the nearest real "b" row: 0.5 and 3.5 raw units -> median 2.0
    assert b["to_nearest_real"] == pytest.approx(2.0)
    assert b["judge_accuracy"] == pytest.approx(50.0)
    assert out.loc["all", "n_synthetic"] == 2
    assert "a" not in out.index  # no synthetic row of class a


def test_copies_score_zero_and_no_judge_no_column():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(20, 3))
    y = np.array(["a"] * 15 + ["b"] * 5)
    X = pd.DataFrame(real, columns=["text_0", "text_1", "text_2"])
    copies = real[15:]
    X_res = pd.concat([X, pd.DataFrame(copies, columns=X.columns)], ignore_index=True)
    y_res = np.concatenate([y, ["b"] * 5])
    out = synthetic_diagnostics(
        X, y, X_res, y_res, np.concatenate([np.arange(20), np.arange(15, 20)])
    )
    assert out.loc["b", "to_source"] == 0 and out.loc["b", "to_nearest_real"] == 0
    assert "judge_accuracy" not in out.columns


def test_fusion_report_on_a_block_that_holds_the_label_and_one_that_is_noise():
    from sklearn_cberl import DJVAE
    from sklearn_cberl.diagnostics import fusion_report

    rng = np.random.RandomState(0)
    n = 240
    y = np.where(rng.rand(n) < 0.5, "pos", "neg")
    sign = np.where(y == "pos", 1.0, -1.0)
    X = pd.DataFrame(
        {
            "dialogue_id": np.repeat(np.arange(40), 6),
            "speaker": 0,
            "turn": np.tile(np.arange(6), 40),
            "text_0": 2 * sign + 0.3 * rng.randn(n),  # the label, plainly
            "text_1": sign + 0.3 * rng.randn(n),
            **{f"audio_{i}": rng.randn(n) for i in range(3)},  # noise
        }
    )
    model = DJVAE(n_components=2, max_epochs=30, random_state=0, device="cpu").fit(X)
    report = fusion_report(model, X, y)
    assert list(report.index) == ["text", "audio", "all"]
    assert report.loc["text", "probe_input"] > 95  # the text block holds the label
    assert report.loc["audio", "probe_input"] < 70  # noise: near chance
    assert report.loc["audio", "probe_latent_and_input"] > 90  # the latent carries the text
    assert report.loc["text", "n_features"] == 2 and report.loc["all", "n_features"] == 5
    shares = report.loc[["text", "audio"], "latent_share"]
    assert np.isclose(shares.sum(), 1.0) and (shares >= 0).all()
    assert (report["reconstruction_mse"] > 0).all()
    # A block missing (all zeros) for some rows is scored on the rows that have it.
    X_missing = X.copy()
    X_missing.loc[::4, ["audio_0", "audio_1", "audio_2"]] = 0.0
    assert np.isfinite(fusion_report(model, X_missing, y)["reconstruction_mse"]).all()
