import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cberl.conversation import METADATA_COLUMNS, check_conversations
from sklearn_cberl.datasets import make_conversations
from sklearn_cberl.metrics import weighted_f1


def neighbour_mean(X, window=2):
    """Mean features of the other utterances within +-window turns of the same dialogue."""
    conv = check_conversations(X)
    F = conv.X[conv.order]
    dialogue = conv.dialogue[conv.order]
    total = np.zeros_like(F)
    count = np.zeros((len(F), 1))
    for shift in range(1, window + 1):
        for a, b in (
            (slice(shift, None), slice(None, -shift)),
            (slice(None, -shift), slice(shift, None)),
        ):
            same = (dialogue[a] == dialogue[b])[:, None]
            total[a] += F[b] * same
            count[a] += same
    return np.hstack([conv.X, conv.to_input_order(total / np.maximum(count, 1))])


def test_schema_and_determinism():
    X, y = make_conversations(n_dialogues=20, random_state=3)
    X2, y2 = make_conversations(n_dialogues=20, random_state=3)
    pd.testing.assert_frame_equal(X, X2)
    pd.testing.assert_series_equal(y, y2)
    assert list(X.columns[:3]) == list(METADATA_COLUMNS)
    conv = check_conversations(X)
    assert {k: v.stop - v.start for k, v in conv.blocks.items()} == {
        "text": 100,
        "audio": 100,
        "visual": 512,
    }
    assert pd.api.types.is_string_dtype(y) and len(y) == len(X)
    assert not make_conversations(n_dialogues=20, random_state=4)[0].equals(X)


def test_imbalance_close_to_meld():
    X, y = make_conversations(n_dialogues=300, modalities={"text": 4, "audio": 4}, random_state=0)
    share = y.value_counts(normalize=True)
    assert share.index[0] == "neutral" and 0.35 < share.iloc[0] < 0.6
    assert (share.iloc[-2:] < 0.05).all()
    assert set(share.index[-2:]) == {"fear", "disgust"}


def test_context_model_beats_per_utterance_model_by_5_waf1():
    """The benchmark's raison d'etre: context carries label information."""
    gaps = []
    for seed in (0, 1):
        X, y = make_conversations(n_dialogues=240, random_state=seed)
        train = X["dialogue_id"].str[3:].astype(int) < 160
        test = ~train
        features = X.drop(columns=list(METADATA_COLUMNS)).to_numpy()
        scores = []
        for A in (features, neighbour_mean(X)):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
            model.fit(A[train], y[train])
            scores.append(100 * weighted_f1(y[test], model.predict(A[test])))
        gaps.append(scores[1] - scores[0])
    assert np.mean(gaps) >= 5, gaps


def test_some_classes_need_several_modalities():
    """Each modality alone confuses some classes whose combination is separable."""
    X, y = make_conversations(
        n_dialogues=150,
        modalities={"text": 8, "audio": 8},
        random_state=0,
        class_sep=3.0,
        speaker_shift=0.0,
    )
    train = X["dialogue_id"].str[3:].astype(int) < 100

    def score(cols):
        model = LogisticRegression(max_iter=2000).fit(X.loc[train, cols], y[train])
        return weighted_f1(y[~train], model.predict(X.loc[~train, cols]))

    text = [c for c in X if c.startswith("text_")]
    audio = [c for c in X if c.startswith("audio_")]
    both = score(text + audio)
    assert both > score(text) + 0.05 and both > score(audio) + 0.05


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_classes": 1}, "n_classes"),
        ({"class_weights": [1, 2]}, "class_weights"),
        ({"modalities": {"text": 0}}, "modalities"),
        ({"persistence": 0.9, "contagion": 0.5}, "persistence"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_conversations(n_dialogues=2, **kwargs)


def test_narrow_modality_with_many_classes():
    X, y = make_conversations(n_dialogues=5, modalities={"a": 2, "b": 3}, random_state=0)
    assert X.filter(like="a_").shape[1] == 2 and y.nunique() >= 2
