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
