import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from sklearn_cberl.metrics import emotion_report, format_report, weighted_accuracy, weighted_f1


def test_report_matches_hand_computation():
    y_true = ["a", "a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "b", "b", "c", "c"]
    table = emotion_report(y_true, y_pred)
    assert list(table.index) == ["a", "b", "c", "weighted", "macro"]
    # class a: recall 2/3; precision 1; F1 = 0.8
    assert table.loc["a", "acc"] == pytest.approx(200 / 3)
    assert table.loc["a", "f1"] == pytest.approx(80)
    # WAA with support weights equals plain accuracy
    assert table.loc["weighted", "acc"] == pytest.approx(100 * accuracy_score(y_true, y_pred))
    assert table.loc["weighted", "f1"] == pytest.approx(
        100 * f1_score(y_true, y_pred, average="weighted")
    )
    assert table.loc["macro", "f1"] == pytest.approx(
        100 * f1_score(y_true, y_pred, average="macro")
    )
    assert table.loc["weighted", "support"] == 6
    assert weighted_accuracy(y_true, y_pred) == pytest.approx(4 / 6)
    assert weighted_f1(y_true, y_pred) == pytest.approx(table.loc["weighted", "f1"] / 100)


def test_labels_order_absent_class_and_text():
    table = emotion_report([0, 0, 1], [0, 1, 1], labels=[1, 0, 2], percent=False)
    assert list(table.index[:3]) == ["1", "0", "2"]
    assert table.loc["2", "support"] == 0 and table.loc["2", "f1"] == 0
    text = format_report(table)
    assert "WAA" in text and "WAF1" in text and "macro-F1" in text
    assert np.isclose(table.loc["weighted", "acc"], 2 / 3)
