"""load_mosi on written-out miniature files in the release's layout, and make_imbalance."""

import numpy as np
import pandas as pd
import pytest

from sklearn_cberl.conversation import check_conversations
from sklearn_cberl.datasets import load_mosi, make_imbalance

WIDTHS = {"text": 100, "audio": 73, "video": 100}


def write_mosi(root, n_train_videos=10, n_test_videos=4, seed=0):
    """transcripts.csv + {text,audio,video}_{train,test}.csv, headerless, as released: text
    rows index the transcripts; audio/video rows carry the label last, aligned by row."""
    rng = np.random.default_rng(seed)
    transcripts, rows = [], {"train": [], "test": []}
    videos = [f"vid_{v}x" for v in range(n_train_videos + n_test_videos)]  # '_' inside ids
    for v, video in enumerate(videos):
        split = "train" if v < n_train_videos else "test"
        for n in range(1, 3 + v % 4):
            rows[split].append(len(transcripts))
            transcripts.append((f"{video}_{n}", f"WORDS {v} {n}", v, int(rng.random() < 0.5)))
    pd.DataFrame(transcripts).to_csv(root / "transcripts.csv", header=False, index=False)
    labels = np.array([t[3] for t in transcripts])
    for split, index in rows.items():
        # Shuffled row order: the loader must follow column 0, not the file order.
        index = list(rng.permutation(index))
        text = np.column_stack([index, rng.normal(size=(len(index), WIDTHS["text"]))])
        pd.DataFrame(text).astype({0: int}).to_csv(
            root / f"text_{split}.csv", header=False, index=False
        )
        for kind in ("audio", "video"):
            values = np.column_stack([rng.normal(size=(len(index), WIDTHS[kind])), labels[index]])
            pd.DataFrame(values).to_csv(root / f"{kind}_{split}.csv", header=False, index=False)
    return transcripts, rows


def test_load_mosi_frames_splits_and_alignment(tmp_path):
    transcripts, rows = write_mosi(tmp_path)
    data = load_mosi(tmp_path, valid_size=0.2, random_state=0)
    n_train, n_test = len(rows["train"]), len(rows["test"])
    assert len(data.X_train) + len(data.X_valid) == n_train and len(data.X_test) == n_test
    X = data.X_train
    assert list(X.columns[:3]) == ["dialogue_id", "speaker", "turn"]
    for prefix, width in (("text", 100), ("audio", 73), ("visual", 100)):
        assert sum(c.startswith(f"{prefix}_") for c in X.columns) == width
    assert X.columns[-1] == "transcript" and X["transcript"].str.startswith("WORDS").all()
    # Dialogue = video (ids may contain '_'), turn = the utterance number, one speaker.
    assert set(X["dialogue_id"]) <= {t[0].rsplit("_", 1)[0] for t in transcripts}
    assert (X["speaker"] == X["dialogue_id"]).all()
    by_id = {t[0]: t for t in transcripts}
    for frame, y in ((data.X_train, data.y_train), (data.X_test, data.y_test)):
        ids = frame["dialogue_id"] + "_" + frame["turn"].astype(str)
        expected = ["positive" if by_id[i][3] else "negative" for i in ids]
        assert list(y) == expected
    # Whole videos on one side; 20 % of the 10 training videos held out.
    assert not set(data.X_train["dialogue_id"]) & set(data.X_valid["dialogue_id"])
    assert data.X_valid["dialogue_id"].nunique() == 2
    check_conversations(data.X_train.drop(columns="transcript"))
    # Seeded hold-out; valid_from="test" holds out test videos instead.
    again = load_mosi(tmp_path, valid_size=0.2, random_state=0)
    pd.testing.assert_frame_equal(again.X_valid, data.X_valid)
    other = load_mosi(tmp_path, valid_size=0.5, valid_from="test", random_state=0)
    assert len(other.X_train) == n_train
    assert len(other.X_valid) + len(other.X_test) == n_test
    assert set(other.X_valid["dialogue_id"]) | set(other.X_test["dialogue_id"]) == {
        f"vid_{v}x" for v in range(10, 14)
    }


def test_load_mosi_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("CBERL_MOSI_DIR", raising=False)
    with pytest.raises(ValueError, match="CBERL_MOSI_DIR"):
        load_mosi()
    with pytest.raises(FileNotFoundError, match="transcripts.csv"):
        load_mosi(tmp_path)
    write_mosi(tmp_path)
    with pytest.raises(ValueError, match="valid_from"):
        load_mosi(tmp_path, valid_from="dev")
    audio = pd.read_csv(tmp_path / "audio_train.csv", header=None)
    audio.iloc[0, -1] = 1 - audio.iloc[0, -1]
    audio.to_csv(tmp_path / "audio_train.csv", header=False, index=False)
    with pytest.raises(ValueError, match="not aligned"):
        load_mosi(tmp_path)


def test_make_imbalance_keeps_order_metadata_and_input(tmp_path):
    write_mosi(tmp_path, n_train_videos=12)
    data = load_mosi(tmp_path, valid_size=0)
    X, y = data.X_train, data.y_train
    before = X.copy()
    n_pos = int((y == "positive").sum())
    X_imb, y_imb = make_imbalance(X, y, {"negative": n_pos // 4}, random_state=0)
    pd.testing.assert_frame_equal(X, before)
    assert (y_imb == "negative").sum() == n_pos // 4 and (y_imb == "positive").sum() == n_pos
    assert X_imb.index.is_monotonic_increasing  # input order kept
    pd.testing.assert_frame_equal(X_imb, X.loc[X_imb.index])
    assert (y_imb.index == X_imb.index).all()
    again, _ = make_imbalance(X, y, {"negative": n_pos // 4}, random_state=0)
    pd.testing.assert_frame_equal(again, X_imb)
    with pytest.raises(ValueError, match="'neutral', which is not in y"):
        make_imbalance(X, y, {"neutral": 1})
    with pytest.raises(ValueError, match="only removes rows"):
        make_imbalance(X, y, {"negative": len(y) + 1})
