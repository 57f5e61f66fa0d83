"""Persistence and device moves: pickle/joblib, the pickle-free save/load, CPU pickles."""

import copy
import io
import json
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from forging import write_document
from imblearn.over_sampling import SMOTE
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from skorch.exceptions import DeviceWarning
from tiny import CLF, GAN, PIPE, VAE

from sklearn_cberl import AddPerClass, _torch_estimator, make_cberl_pipeline, persistence
from sklearn_cberl._torch_estimator import torch_seed
from sklearn_cberl.classifier import CBERLClassifier
from sklearn_cberl.datasets import make_conversations
from sklearn_cberl.fusion import DJVAE
from sklearn_cberl.over_sampling import ConversationSampler, EmoGANSampler
from sklearn_cberl.persistence import FORMAT, load, save


@pytest.fixture(scope="module")
def data(tiny_conversations):
    return tiny_conversations


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    gan = EmoGANSampler(random_state=0, **GAN)
    gan.fit_resample(X, y)
    vae = DJVAE(random_state=0, **VAE).fit(X)
    clf = CBERLClassifier(random_state=0, **CLF).fit(X, y)
    pipe = make_cberl_pipeline(
        random_state=0,
        device="cpu",
        **{**PIPE, "aug__sampling_strategy": AddPerClass({"emotion_2": 6})},
    ).fit(X, y)
    return {"gan": gan, "vae": vae, "clf": clf, "pipe": pipe}


def gan_output(gan, X):
    """Generator translations of the first rows under a fixed torch seed."""
    features = X[[c for c in X.columns if c.startswith(("text_", "audio_"))]].to_numpy()
    Xs = torch.as_tensor(gan.scaler_.transform(features), dtype=torch.float32)
    labels = torch.arange(len(Xs)) % len(gan.classes_)
    with torch_seed(0), torch.no_grad():
        return gan.gan_.translate(Xs, labels).numpy()


def outputs(name, model, X):
    if name == "gan":
        return gan_output(model, X)
    if name == "vae":
        return model.transform(X).to_numpy()
    return model.predict_proba(X)


ALL = ["gan", "vae", "clf", "pipe"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trips_give_identical_outputs(fitted, data, name, how, tmp_path):
    X, _ = data
    model = fitted[name]
    if how == "pickle":
        restored = pickle.loads(pickle.dumps(model))
    else:
        joblib.dump(model, tmp_path / "model.joblib")
        restored = joblib.load(tmp_path / "model.joblib")
    np.testing.assert_array_equal(outputs(name, restored, X), outputs(name, model, X))


@pytest.mark.parametrize("name", ALL)
def test_safe_save_load_round_trips_predictions_exactly(fitted, data, name, tmp_path):
    X, _ = data
    model = fitted[name]
    path = save(model, tmp_path / "model.cberl")
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    restored = load(path)
    assert torch.equal(torch.get_rng_state(), torch_state)  # module rebuilding forks the RNG
    assert np.random.get_state()[1].tolist() == numpy_state[1].tolist()  # noqa: NPY002
    assert type(restored) is type(model)
    assert repr(restored) == repr(model)  # same parameters
    np.testing.assert_array_equal(outputs(name, restored, X), outputs(name, model, X))


def test_safe_format_restores_fitted_attributes(fitted, tmp_path):
    gan, clf, vae = fitted["gan"], fitted["clf"], fitted["vae"]
    g = load(save(gan, tmp_path / "gan.cberl"))
    assert g.generator_ is g.gan_.g_ts  # aliases rebuilt, not duplicated
    assert list(g.discriminators_) == list(gan.discriminators_)
    assert g.filter_stats_ == gan.filter_stats_ and g.history_ == gan.history_
    np.testing.assert_array_equal(g.sample_indices_, gan.sample_indices_)
    np.testing.assert_array_equal(g.classes_, gan.classes_)
    assert dict(g.sampling_strategy_) == dict(gan.sampling_strategy_)
    assert not g.emotion_classifier_.training
    c = load(save(clf, tmp_path / "clf.cberl"))
    np.testing.assert_array_equal(c.classes_, clf.classes_)
    assert (c.n_iter_, c.best_epoch_) == (clf.n_iter_, clf.best_epoch_)
    assert c.net_.history[:, "valid_waf1"] == clf.net_.history[:, "valid_waf1"]
    np.testing.assert_array_equal(c.estimator_weights_, clf.estimator_weights_)
    v = load(save(vae, tmp_path / "vae.cberl"))
    assert v.history_ == vae.history_ and v.modalities_ == vae.modalities_
    np.testing.assert_array_equal(v.scalers_["text"].scale_, vae.scalers_["text"].scale_)
    assert v.score(make_conversations(n_dialogues=3, modalities={"text": 4, "audio": 3})[0])


def test_safe_format_for_unfitted_estimators_and_conversation_sampler(data, tmp_path):
    X, y = data
    unfitted = make_cberl_pipeline(random_state=3, sampling_strategy=AddPerClass({"a": 2}, 100))
    restored = load(save(unfitted, tmp_path / "pipe.cberl"))
    assert repr(restored) == repr(unfitted)
    assert restored.get_params()["aug__sampling_strategy"] == AddPerClass({"a": 2}, 100)
    with pytest.raises(NotFittedError):
        restored.predict(X)
    ablated = make_cberl_pipeline(augment=False, fusion=None)  # "passthrough" steps
    assert repr(load(save(ablated, tmp_path / "ablated.cberl"))) == repr(ablated)
    sampler = ConversationSampler(SMOTE(k_neighbors=3, random_state=0))
    X_res, _ = sampler.fit_resample(X, y)
    back = load(save(sampler, tmp_path / "smote.cberl"))
    np.testing.assert_array_equal(back.sample_indices_, sampler.sample_indices_)
    assert not hasattr(back.sampler_, "nn_k_")  # the fitted SMOTE is documented as not stored
    assert len(back.fit_resample(X, y)[0]) == len(X_res)


class _Payload:
    """Unpickling this object would create a marker file (stands for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_load_never_runs_pickled_code(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": FORMAT, "version": 4, "x": _Payload(marker)}, tmp_path / "evil.cberl")
    with pytest.raises(ValueError, match=r"refers to (io|builtins)\.open, which a save file never"):
        load(tmp_path / "evil.cberl")
    assert not marker.exists()
    with open(tmp_path / "plain.pkl", "wb") as handle:
        pickle.dump(_Payload(marker), handle)
    with pytest.raises(ValueError, match="not a zip archive"):
        load(tmp_path / "plain.pkl")
    assert not marker.exists()


def test_load_refuses_classes_outside_the_allowlist(tmp_path):
    document = {"__estimator__": "os.system", "params": {"__dict__": []}, "attrs": {}}
    write_document(tmp_path / "bad.cberl", document)
    with pytest.raises(ValueError, match="'os.system'.*not among the classes"):
        load(tmp_path / "bad.cberl")
    write_document(tmp_path / "new.cberl", {}, version=99)
    with pytest.raises(ValueError, match="format version 99"):
        load(tmp_path / "new.cberl")
    torch.save({"something": "else"}, tmp_path / "other.cberl")
    with pytest.raises(ValueError, match="not a file written by"):
        load(tmp_path / "other.cberl")


def test_save_refuses_what_it_cannot_store_safely(tmp_path):
    pipe = make_cberl_pipeline().set_params(clf=LogisticRegression())
    with pytest.raises(TypeError, match="LogisticRegression.*pickle/joblib"):
        save(pipe, tmp_path / "x.cberl")
    with pytest.raises(TypeError, match="sampling_strategy"):
        save(EmoGANSampler(sampling_strategy=lambda y: {}), tmp_path / "y.cberl")


# --------------------------------------------------------------------------- devices
def test_set_params_device_after_fit_moves_inference(fitted, data):
    """Inference follows the ``device`` parameter at call time."""
    X, _ = data
    vae, clf = copy.deepcopy(fitted["vae"]), copy.deepcopy(fitted["clf"])
    expected_z, expected_p = vae.transform(X), clf.predict_proba(X)
    # Pretend the models were left on another device: inference must move them back.
    vae.device_ = torch.device("meta")
    clf.net_.device = "meta"
    vae.set_params(device="cpu")
    clf.set_params(device="cpu")
    pd.testing.assert_frame_equal(vae.transform(X), expected_z)
    np.testing.assert_array_equal(clf.predict_proba(X), expected_p)
    assert vae.device_ == torch.device("cpu") and clf.net_.device == "cpu"


def test_cuda_device_parameter_without_cuda_is_a_clear_error(fitted, data, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, _ = data
    for name in ("vae", "clf"):
        model = copy.deepcopy(fitted[name]).set_params(device="cuda")
        method = model.transform if name == "vae" else model.predict
        with pytest.raises(ValueError, match="device='cuda'.*CUDA is not available"):
            method(X)


def test_pickles_hold_torch_state_on_cpu_without_touching_the_model(fitted, data, monkeypatch):
    """The CUDA -> CPU pickling path, exercised on CPU by treating modules as off-CPU."""
    X, y = data
    original = _torch_estimator._off_cpu
    monkeypatch.setattr(
        _torch_estimator, "_off_cpu", lambda v: isinstance(v, torch.nn.Module) or original(v)
    )
    gan, vae = fitted["gan"], fitted["vae"]
    gan_modules = (gan.gan_, gan.generator_, gan.emotion_classifier_)
    state = gan.__getstate__()
    assert state["gan_"] is not gan.gan_  # a copy was moved, the fitted sampler is untouched
    assert (gan.gan_, gan.generator_, gan.emotion_classifier_) == gan_modules
    assert state["generator_"] is state["gan_"].g_ts  # aliases survive the copy
    assert state["discriminators_"]["audio"] is state["gan_"].discriminators[1]
    restored = pickle.loads(pickle.dumps(gan))
    assert restored.generator_ is restored.gan_.g_ts
    np.testing.assert_array_equal(gan_output(restored, X), gan_output(gan, X))
    vae_state = vae.__getstate__()
    assert vae_state["module_"] is not vae.module_
    assert vae_state["device_"] == torch.device("cpu")
    tensors = [*vae_state["module_"].parameters(), *vae_state["module_"].buffers()]
    assert all(t.device.type == "cpu" for t in tensors)
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(vae)).transform(X), vae.transform(X))


def test_classifier_pickled_on_cuda_loads_on_cpu(fitted, data, monkeypatch):
    """skorch's mechanism: a net saved with device='cuda' is mapped to the CPU on load."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, _ = data
    clf = copy.deepcopy(fitted["clf"]).set_params(device="auto")
    clf.net_.device = "cuda"  # what a CUDA fit leaves (the tensors themselves are on CPU)
    # No tensor outside the attributes skorch maps to the CPU on load (the SAMME
    # accumulators used to be one).
    mapped = tuple(clf.net_.cuda_dependent_attributes_)
    loose = [k for k, v in vars(clf.net_).items() if isinstance(v, torch.Tensor)]
    assert [k for k in loose if not k.startswith(mapped)] == []
    blob = pickle.dumps(clf)
    with pytest.warns(DeviceWarning) as record:
        restored = pickle.loads(blob)
    assert any("no CUDA devices are available" in str(w.message) for w in record)
    assert torch.device(restored.net_.device) == torch.device("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(restored.predict_proba(X), fitted["clf"].predict_proba(X))


def test_pickle_size_stays_small(fitted):
    buffer = io.BytesIO()
    pickle.dump(fitted["pipe"], buffer)
    assert buffer.tell() < 2_000_000


@pytest.mark.parametrize("version", [1, 2, 3])
def test_files_of_older_format_versions_are_refused_with_a_versioned_message(version, tmp_path):
    """Versions 1 and 2 are files the old code wrote (``tests/data``); version 3 differs from
    version 4 only by its missing digests. None of them loads: refit and save again."""
    from pathlib import Path

    path = Path(__file__).parent / "data" / f"pipeline_format{version}.cberl"
    if version == 3:
        payload = torch.load(save(DJVAE(**VAE), tmp_path / "v4.cberl"), weights_only=True)
        payload["version"] = 3
        del payload["sha256"]
        torch.save(payload, path := tmp_path / "v3.cberl")
    assert torch.load(path, weights_only=True)["version"] == version
    message = (
        f"model file format version {version} was written by an older sklearn-cberl; this "
        "release reads version 4: refit and save again."
    )
    with pytest.raises(ValueError) as info:
        load(path)
    assert str(info.value).endswith(message) and "\n" not in str(info.value)


def test_newer_format_version_is_a_clear_versioned_error(tmp_path):
    path = save(DJVAE(**VAE), tmp_path / "model.cberl")
    payload = torch.load(path, weights_only=True)
    payload["version"] = persistence.FORMAT_VERSION + 1
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"format version \d+; this sklearn-cberl reads"):
        load(path)


# --------------------------------------------------------------------------- format 4
def _document(path):
    return json.loads(torch.load(path, weights_only=True)["json"])


def _entries(node, found=None):
    """Every estimator entry of a JSON document, depth first."""
    found = [] if found is None else found
    if isinstance(node, dict):
        if "__estimator__" in node:
            found.append(node)
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            _entries(item, found)
    return found


def test_format4_stores_every_module_as_class_config_and_weights(fitted, tmp_path):
    path = save(fitted["pipe"], tmp_path / "pipe.cberl")
    payload = torch.load(path, weights_only=True)
    assert payload["version"] == persistence.FORMAT_VERSION == 4
    # a digest of the document and of every tensor
    assert set(payload["sha256"]["tensors"]) == set(payload["tensors"])
    assert len(payload["sha256"]["json"]) == 64
    steps = fitted["pipe"].named_steps
    roots = {"aug": ["gan_", "emotion_classifier_"], "fuse": ["module_"]}
    expected = {  # class name -> module, for the estimators holding torch modules
        type(steps[step]).__name__: {
            type(getattr(steps[step], attr)).__name__: getattr(steps[step], attr) for attr in attrs
        }
        for step, attrs in roots.items()
    }
    for entry in _entries(_document(path)):
        modules = expected.get(entry["__estimator__"].rsplit(".", 1)[1])
        if modules is None:
            continue
        table = entry["torch"]
        assert sorted(table) == [f"m{i}" for i in range(len(modules))]  # each stored once
        for stored in table.values():
            assert stored["module"] in persistence.SAFE_MODULES
            module = modules[stored["module"].rsplit(".", 1)[1]]
            assert stored["config"] == module.config  # the constructor arguments, as JSON
            assert list(stored["state"]) == list(module.state_dict())
    restored = load(path).named_steps
    for step, attrs in roots.items():
        for attr in attrs:
            module, back = getattr(steps[step], attr), getattr(restored[step], attr)
            assert type(back) is type(module) and back.config == module.config
            assert [m.training for m in back.modules()] == [m.training for m in module.modules()]
            grads = [p.requires_grad for p in back.parameters()]
            assert grads == [p.requires_grad for p in module.parameters()]


@pytest.mark.parametrize(
    "params",
    [
        {"encoder": "paper", "posterior": "concat"},  # Bi-LSTM and 1-D conv encoders, one head
        {"encoder": {"text": "cnn", "audio": "mlp"}, "hidden_layer_sizes": (8, 4)},
    ],
)
def test_djvae_variants_round_trip_through_their_module_config(data, params, tmp_path):
    X, _ = data
    vae = DJVAE(random_state=0, **{**VAE, **params}).fit(X)
    restored = load(save(vae, tmp_path / "vae.cberl"))
    assert restored.module_.config == vae.module_.config
    pd.testing.assert_frame_equal(restored.transform(X), vae.transform(X))
    np.testing.assert_array_equal(
        restored.inverse_transform(vae.transform(X)).to_numpy(),
        vae.inverse_transform(vae.transform(X)).to_numpy(),
    )


def test_module_references_keep_aliases_in_any_attribute_order(fitted, tmp_path):
    """``generator_`` and ``discriminators_`` are submodules of ``gan_``: stored once."""
    gan = copy.deepcopy(fitted["gan"])
    # An alias met before the module holding it must not become a module of its own.
    state = {"generator_": gan.generator_, "discriminators_": gan.discriminators_}
    for key in state:
        del gan.__dict__[key]
    gan.__dict__ = {**state, **gan.__dict__}
    path = save(gan, tmp_path / "gan.cberl")
    modules = [e["module"] for e in _entries(_document(path))[0]["torch"].values()]
    assert sorted(m.rsplit(".", 1)[1] for m in modules) == ["EmoGAN", "EmotionClassifier"]
    g = load(path)
    assert g.generator_ is g.gan_.g_ts
    assert all(d is m for d, m in zip(g.discriminators_.values(), g.gan_.discriminators))


def test_save_refuses_a_torch_module_it_cannot_rebuild(fitted, tmp_path):
    vae = copy.deepcopy(fitted["vae"])
    vae.extra_ = torch.nn.Linear(2, 2)  # no config, not among SAFE_MODULES
    with pytest.raises(TypeError, match="Linear module.*SAFE_MODULES|storable modules"):
        save(vae, tmp_path / "vae.cberl")
