import numpy as np
import pandas as pd
import pytest

from sklearn_cberl.conversation import (
    METADATA_COLUMNS,
    check_conversations,
    modality_of,
)


def _frame():
    return pd.DataFrame(
        {
            "dialogue_id": ["b", "a", "b", "a", "b"],
            "speaker": ["x", "y", "y", "y", "x"],
            "turn": [2, 1, 0, 0, 1],
            "text_0": [1.0, 2.0, 3.0, 4.0, 5.0],
            "text_1": [0.0, 0.0, 0.0, 0.0, 1.0],
            "audio_0": [9.0, 8.0, 7.0, 6.0, 5.0],
        }
    )


def test_groups_dialogues_by_turn_and_restores_input_order():
    X = _frame()
    conv = check_conversations(X)
    # dialogue codes by first appearance: b -> 0, a -> 1
    assert list(conv.dialogue_ids) == ["b", "a"]
    assert conv.lengths.tolist() == [3, 2]
    # b sorted by turn: rows 2 (t0), 4 (t1), 0 (t2); then a: rows 3 (t0), 1 (t1)
    assert conv.order.tolist() == [2, 4, 0, 3, 1]
    assert conv.position.tolist() == [2, 1, 0, 0, 1]
    assert conv.offsets.tolist() == [0, 3, 5]
    sorted_values = conv.X[conv.order, 0]
    np.testing.assert_array_equal(conv.to_input_order(sorted_values), conv.X[:, 0])
    assert list(conv.blocks) == ["text", "audio"]
    assert conv.block("text").shape == (5, 2)
    assert conv.speaker[0] == conv.speaker[4] != conv.speaker[1]
    assert list(conv.metadata.columns) == list(METADATA_COLUMNS)


def test_named_modalities_select_blocks_and_ignore_other_columns():
    X = _frame().assign(note=["n"] * 5)
    conv = check_conversations(X, modalities=["audio"])
    assert list(conv.blocks) == ["audio"]
    assert conv.feature_names.tolist() == ["audio_0"]


def test_numpy_fallback_every_row_its_own_dialogue():
    conv = check_conversations(np.arange(12.0).reshape(4, 3))
    assert conv.is_plain and conv.n_dialogues == 4
    assert conv.order.tolist() == [0, 1, 2, 3]
    assert conv.feature_names.tolist() == ["x0", "x1", "x2"]
    frame = pd.DataFrame(np.ones((3, 2)), columns=["col_0", "col_1"])
    conv = check_conversations(frame)
    assert conv.is_plain and conv.feature_names.tolist() == ["col_0", "col_1"]


def test_dtype_kept_for_float32_and_input_not_mutated():
    X = _frame()
    X[["text_0", "text_1", "audio_0"]] = X[["text_0", "text_1", "audio_0"]].astype(np.float32)
    before = X.copy()
    conv = check_conversations(X)
    assert conv.X.dtype == np.float32
    pd.testing.assert_frame_equal(X, before)
    assert check_conversations(_frame().astype({"audio_0": int})).X.dtype == np.float64


def test_modality_of():
    assert modality_of("text_12") == "text"
    assert modality_of("fused_0") == "fused"
    assert modality_of("plain") == "plain"


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda X: X.drop(columns="turn"), r"missing the metadata column\(s\) \['turn'\]"),
        (lambda X: X.drop(columns="speaker"), r"\['speaker'\]"),
        (lambda X: X.assign(text_0=[np.nan, 1, 2, 3, 4]), "'text_0' contains NaN"),
        (lambda X: X.assign(audio_0=[np.inf, 1, 2, 3, 4]), "'audio_0' contains infinity"),
        (lambda X: X.assign(text_1=list("abcde")), "'text_1' has dtype .*expected a real numeric"),
        (
            lambda X: X.assign(turn=[2, 1, 0, 0, 2]),
            r"Duplicate \('dialogue_id', 'turn'\) pair \(b, 2\)",
        ),
        (lambda X: X.iloc[:0], "empty DataFrame"),
        (lambda X: X[list(METADATA_COLUMNS)], "no feature columns"),
        (lambda X: X.assign(turn=list("abcde")), "'turn' has dtype"),
        (lambda X: X.assign(speaker=[None, "x", "y", "y", "x"]), "'speaker' contains missing"),
    ],
)
def test_violations_name_the_column(mutate, match):
    with pytest.raises(ValueError, match=match):
        check_conversations(mutate(_frame()))


def test_named_modality_without_columns():
    with pytest.raises(ValueError, match="Modality block 'visual' has no columns"):
        check_conversations(_frame(), modalities=["text", "visual"])


def test_numpy_nan_and_sparse_rejected():
    X = np.ones((3, 2))
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_conversations(X)


def test_feature_names_checked_against_estimator():
    from sklearn.base import BaseEstimator

    est = BaseEstimator()
    check_conversations(_frame(), estimator=est, reset=True)
    assert est.n_features_in_ == 6
    assert list(est.feature_names_in_) == list(_frame().columns)
    with pytest.raises(ValueError, match="feature names"):
        check_conversations(
            _frame().rename(columns={"audio_0": "audio_9"}), estimator=est, reset=False
        )
