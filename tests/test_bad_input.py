"""The bad-input matrix: every estimator and the full pipeline against awkward input.

Each case either gives a correct result or a ``ValueError`` / ``TypeError`` whose message
names the offending column or parameter - never an error raised inside torch / PyG - and
no case mutates the caller's frames or arrays. ``docs/reliability.md`` lists the outcomes.
"""

import copy

import numpy as np
import pandas as pd
import pytest
from imblearn.over_sampling import SMOTE
from numpy.testing import assert_array_equal
from tiny import conversations

from sklearn_cberl import make_cberl_pipeline
from sklearn_cberl.classifier import CBERLClassifier
from sklearn_cberl.fusion import DJVAE
from sklearn_cberl.over_sampling import ConversationSampler, EmoGANSampler

NAMES = ["gan", "smote", "vae", "clf", "pipe"]
SAMPLERS = {"gan", "smote"}
META = ["dialogue_id", "speaker", "turn"]


def make(name, modalities=None):
    """Tiny, seeded versions of each estimator (one or two epochs)."""
    if name == "gan":
        return EmoGANSampler(
            max_epochs=1, classifier_max_epochs=1, hidden_size=8, latent_size=2, device="cpu",
            random_state=0,
        )  # fmt: skip
    if name == "smote":
        return ConversationSampler(SMOTE(random_state=0))
    if name == "vae":
        return DJVAE(
            n_components=2, hidden_layer_sizes=(8,), max_epochs=1, modalities=modalities,
            device="cpu", random_state=0,
        )  # fmt: skip
    if name == "clf":
        return CBERLClassifier(
            hidden_size=8, n_estimators=2, attention_hidden=(8,), max_epochs=1,
            validation_fraction=None, modalities=modalities, device="cpu", random_state=0,
        )  # fmt: skip
    return make_cberl_pipeline(
        random_state=0, device="cpu", fusion="separate", aug__max_epochs=1,
        aug__classifier_max_epochs=1,
        aug__hidden_size=8, fuse__max_epochs=1, fuse__n_components=2, fuse__hidden_layer_sizes=(8,),
        fuse__modalities=modalities, clf__max_epochs=1, clf__hidden_size=8,
        clf__n_estimators=2, clf__attention_hidden=(8,), clf__validation_fraction=None,
    )  # fmt: skip


@pytest.fixture(scope="module")
def data(tiny_conversations):
    return tiny_conversations


@pytest.fixture(scope="module")
def long_dialogue():
    """A conversation frame whose first dialogue has 500 utterances."""
    X, y = conversations(n_dialogues=45, random_state=1)
    X = X.copy()
    X.loc[:499, "dialogue_id"] = "long"
    X.loc[:499, "turn"] = np.arange(500)
    return X, y


# --------------------------------------------------------------------------- helpers
def fit(estimator, X, y):
    if hasattr(estimator, "fit_resample"):
        return estimator.fit_resample(X, y)
    return estimator.fit(X, y)


def snapshot(*values):
    return [copy.deepcopy(v) for v in values]


def assert_unchanged(before, after):
    for old, new in zip(before, after):
        if isinstance(old, pd.DataFrame):
            pd.testing.assert_frame_equal(new, old)
        elif isinstance(old, pd.Series):
            pd.testing.assert_series_equal(new, old)
        else:
            np.testing.assert_array_equal(np.asarray(new), np.asarray(old))


def assert_clear_error(excinfo):
    """A ValueError/TypeError raised by our code or sklearn/imblearn, never inside torch."""
    assert excinfo.type in (ValueError, TypeError)
    path = str(excinfo.traceback[-1].path)
    assert "/torch/" not in path and "torch_geometric" not in path, path


def check_result(name, estimator, X, y, result):
    """What a correct result looks like for each kind of estimator."""
    n = len(X)
    if name in SAMPLERS:
        X_res, y_res = result
        assert len(X_res) == len(y_res) >= n
        head = X_res.iloc[:n] if isinstance(X_res, pd.DataFrame) else np.asarray(X_res)[:n]
        if isinstance(X, pd.DataFrame):
            # real rows first and unchanged (turn becomes float with inserted turns); a
            # conversation frame also gets the boolean row mark
            if "synthetic" in X_res.columns:
                assert_array_equal(X_res["synthetic"], np.arange(len(X_res)) >= n)
                head = head.drop(columns="synthetic")
            pd.testing.assert_frame_equal(head, X.reset_index(drop=True), check_dtype=False)
        else:
            np.testing.assert_array_equal(head, np.asarray(X, dtype=float))
        np.testing.assert_array_equal(np.asarray(y_res)[:n], np.asarray(y))
        features = np.asarray(X_res)[n:]
        if isinstance(X_res, pd.DataFrame):
            features = X_res.drop(columns=[*META, "synthetic"], errors="ignore").to_numpy()[n:]
        assert np.isfinite(features.astype(float)).all()
        return
    if name == "vae":
        Z = estimator.transform(X)
        assert len(Z) == n
        if isinstance(X, pd.DataFrame):
            pd.testing.assert_index_equal(Z.index, X.index)
            Z = Z.filter(like="fused_")
        assert np.isfinite(np.asarray(Z)).all()
        return
    pred = estimator.predict(X)
    assert pred.shape == (n,)
    assert set(pred) <= set(np.asarray(y).tolist())


# --------------------------------------------------------------------------- fit-time cases
def _with_value(X, column, row, value):
    X = X.copy()
    X.loc[X.index[row], column] = value
    return X


def _rare(y, n):
    y = y.copy()
    y.iloc[[5, 40][:n]] = "rare"
    return y


def _one_utterance_dialogues(X):
    return X.assign(dialogue_id=np.arange(len(X)), turn=0)


def _unsorted(X, y):
    perm = np.random.default_rng(0).permutation(len(X))
    X = X.iloc[perm].assign(turn=lambda f: f["turn"] * 3 + 7)  # gaps and an offset
    return X, y.iloc[perm]


def _duplicate_turn(X):
    X = X.copy()
    X.loc[1, "turn"] = X.loc[0, "turn"]
    return X


def _object_features(X):
    return X.assign(text_0=X["text_0"].astype(object))


def _float32(X):
    features = [c for c in X.columns if c not in META]
    return X.astype(dict.fromkeys(features, np.float32))


def _plain(X):
    return X.drop(columns=META).to_numpy()


OK = None
NAN = r"Feature column 'text_1' contains NaN"
ONE_CLASS_IMBLEARN = r"target 'y' needs to have more than 1 class"

#: case -> (build (X, y) -> (X, y), modalities for vae/clf/pipe, expected per estimator:
#: None = a correct result, or a regex the error message must match).
FIT_CASES = {
    "nan": (lambda X, y: (_with_value(X, "text_1", 3, np.nan), y), None, dict.fromkeys(NAMES, NAN)),
    "inf": (
        lambda X, y: (_with_value(X, "audio_2", 7, -np.inf), y),
        None,
        dict.fromkeys(NAMES, r"Feature column 'audio_2' contains infinity"),
    ),
    "missing_metadata_column": (
        lambda X, y: (X.drop(columns="speaker"), y),
        None,
        dict.fromkeys(NAMES, r"missing the metadata column\(s\) \['speaker'\]"),
    ),
    "missing_modality_column": (
        lambda X, y: (X.drop(columns=[c for c in X.columns if c.startswith("audio_")]), y),
        ("text", "audio"),  # the estimators are told to expect an audio block
        {
            "gan": OK,  # no modalities parameter: fits on the text block
            "smote": OK,
            "vae": r"Modality block 'audio' has no columns",
            "clf": r"Modality block 'audio' has no columns",
            "pipe": r"Modality block 'audio' has no columns",
        },
    ),
    "single_class": (
        lambda X, y: (X, pd.Series("neutral", index=y.index)),
        None,
        {
            "gan": ONE_CLASS_IMBLEARN,
            "smote": ONE_CLASS_IMBLEARN,
            "vae": OK,  # unsupervised: y is ignored
            "clf": r"at least 2 classes in y; got 1 class",
            "pipe": ONE_CLASS_IMBLEARN,
        },
    ),
    "class_with_1_sample": (
        lambda X, y: (X, _rare(y, 1)),
        None,
        {
            "gan": OK,  # sources drawn from the nearest class: see the dedicated test
            "smote": r"SMOTE\(k_neighbors=5\).*class 'rare' has 1: leave the class out",
            "vae": OK,
            "clf": OK,
            "pipe": OK,
        },
    ),
    "class_with_2_samples": (
        lambda X, y: (X, _rare(y, 2)),
        None,
        {
            "gan": OK,
            "smote": r"class 'rare' has 2: lower `k_neighbors` to at most 1",
            "vae": OK,
            "clf": OK,
            "pipe": OK,
        },
    ),
    "one_utterance_dialogues": (
        lambda X, y: (_one_utterance_dialogues(X), y),
        None,
        dict.fromkeys(NAMES, OK),
    ),
    "unsorted_noncontiguous_turns": (_unsorted, None, dict.fromkeys(NAMES, OK)),
    "duplicate_dialogue_turn": (
        lambda X, y: (_duplicate_turn(X), y),
        None,
        dict.fromkeys(NAMES, r"Duplicate \('dialogue_id', 'turn'\) pair \(dlg0000, 0\)"),
    ),
    "string_labels": (lambda X, y: (X, y.astype(object)), None, dict.fromkeys(NAMES, OK)),
    "int_labels": (
        lambda X, y: (X, pd.Series(pd.factorize(y)[0], index=y.index)),
        None,
        dict.fromkeys(NAMES, OK),
    ),
    "categorical_labels": (
        lambda X, y: (X, y.astype("category")),
        None,
        dict.fromkeys(NAMES, OK),
    ),
    "float32_features": (lambda X, y: (_float32(X), y), None, dict.fromkeys(NAMES, OK)),
    "float64_features": (lambda X, y: (X, y), None, dict.fromkeys(NAMES, OK)),
    "empty_frame": (
        lambda X, y: (X.iloc[:0], y.iloc[:0]),
        None,
        dict.fromkeys(NAMES, r"empty DataFrame \(0 utterances\)"),
    ),
    "object_dtype_feature_column": (
        lambda X, y: (_object_features(X), y),
        None,
        dict.fromkeys(NAMES, r"Feature column 'text_0' has dtype object"),
    ),
    "plain_numeric_array": (lambda X, y: (_plain(X), y.to_numpy()), None, dict.fromkeys(NAMES, OK)),
    "object_array_of_numbers": (
        lambda X, y: (_plain(X).astype(object), y.to_numpy()),
        None,
        dict.fromkeys(NAMES, OK),
    ),
    "plain_frame_with_nan": (
        lambda X, y: (_with_value(X.drop(columns=META), "text_1", 2, np.nan), y),
        None,
        dict.fromkeys(NAMES, NAN),
    ),
}

MATRIX = [pytest.param(case, name, id=f"{case}-{name}") for case in FIT_CASES for name in NAMES]


@pytest.mark.parametrize("case, name", MATRIX)
def test_fit_matrix(data, case, name):
    build, modalities, expected = FIT_CASES[case]
    X, y = build(*data)
    before = snapshot(X, y)
    estimator = make(name, modalities)
    if expected[name] is None:
        result = fit(estimator, X, y)
        check_result(name, estimator, X, y, result)
    else:
        with pytest.raises((ValueError, TypeError), match=expected[name]) as excinfo:
            fit(estimator, X, y)
        assert_clear_error(excinfo)
    assert_unchanged(before, [X, y])


@pytest.mark.parametrize("name", NAMES)
def test_500_utterance_dialogue(long_dialogue, name):
    X, y = long_dialogue
    before = snapshot(X, y)
    estimator = make(name)
    result = fit(estimator, X, y)
    check_result(name, estimator, X, y, result)
    assert_unchanged(before, [X, y])


def test_emogan_over_samples_a_class_with_a_single_utterance(data):
    X, y = data
    y = _rare(y, 1)
    sampler = make("gan").set_params(sampling_strategy="auto")
    X_res, y_res = sampler.fit_resample(X, y)
    assert (y_res == "rare").sum() == y.value_counts().max()  # balanced like the others
    assert sampler.source_classes_["rare"]  # translations also start from a neighbour class
    assert sampler.filter_stats_["rare"]["requested"] == (y_res == "rare").sum() - 1


@pytest.mark.parametrize("trains", [True, False], ids=["training", "nothing_to_train"])
def test_emogan_checks_validation_data_even_when_nothing_is_trained(data, trains):
    X, y = data
    # "auto" trains the GAN; target counts equal to the class sizes add no row
    strategy = "auto" if trains else y.value_counts().to_dict()
    sampler = make("gan").set_params(sampling_strategy=strategy)
    X_val, y_val = X.iloc[:20], y.iloc[:20]
    before = snapshot(X_val, y_val)
    cases = [
        ((X_val, pd.Series(["nope"] * 20)), r"labels \['nope'\] not present in y"),
        ((X_val, y.iloc[:17]), "20 rows in X_val but y_val has shape"),  # was a torch error
        ((X_val.drop(columns="text_0"), y_val), "validation_data does not have the columns"),
        (X_val, r"validation_data must be a tuple \(X_val, y_val\)"),
    ]
    for validation_data, match in cases:
        with pytest.raises((ValueError, TypeError), match=match) as excinfo:
            sampler.fit_resample(X, y, validation_data=validation_data)
        assert_clear_error(excinfo)
    sampler.fit_resample(X, y, validation_data=(X_val, y_val))  # the good case
    assert (sampler.n_iter_ > 0) == trains
    assert_unchanged(before, [X_val, y_val])


def test_conversation_sampler_on_balanced_labels_adds_nothing(data):
    X, _ = data
    y = pd.Series(np.arange(len(X)) % 2, index=X.index)
    sampler = ConversationSampler(SMOTE(k_neighbors=2))
    X_res, y_res = sampler.fit_resample(X, y)
    pd.testing.assert_frame_equal(X_res.drop(columns="synthetic"), X.reset_index(drop=True))
    assert not X_res["synthetic"].any()
    assert len(sampler.sample_indices_) == len(X) and not sampler.synthetic_mask_.any()


def test_label_types_are_kept(data):
    X, y = data
    codes = pd.Series(pd.factorize(y)[0], index=y.index)
    clf = make("clf").fit(X, codes)
    assert clf.classes_.dtype.kind == "i" and clf.predict(X).dtype.kind == "i"
    _, y_res = make("gan").fit_resample(X, y.astype("category"))
    assert isinstance(y_res.dtype, pd.CategoricalDtype)
    X32 = _float32(X)
    X_res, _ = make("gan").fit_resample(X32, y)
    assert (X_res.dtypes[[c for c in X32 if c not in META]] == np.float32).all()
    assert (make("vae").fit(X32).transform(X32).filter(like="fused_").dtypes == np.float32).all()


# --------------------------------------------------------------------------- predict time
@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    return {name: fit(make(name), X, y) for name in ("vae", "clf", "pipe")}


def infer(model, X):
    return (
        model.transform(X)
        if hasattr(model, "transform") and not hasattr(model, "predict")
        else model.predict(X)
    )


PREDICT_ERRORS = {
    "wrong_number_of_features": (lambda X: X.drop(columns="text_0"), r"missing:\n- text_0"),
    "missing_modality_columns": (
        lambda X: X.drop(columns=[c for c in X.columns if c.startswith("audio_")]),
        r"missing:\n- audio_0\n- audio_1\n- audio_2",
    ),
    "missing_metadata_column": (
        lambda X: X.drop(columns="turn"),
        r"missing the metadata column\(s\) \['turn'\]",
    ),
    "nan": (lambda X: _with_value(X, "text_1", 0, np.nan), NAN),
    "duplicate_dialogue_turn": (_duplicate_turn, r"Duplicate \('dialogue_id', 'turn'\)"),
    "empty_frame": (lambda X: X.iloc[:0], r"empty DataFrame"),
    "object_dtype_feature_column": (_object_features, r"'text_0' has dtype object"),
}


@pytest.mark.parametrize("name", ["vae", "clf", "pipe"])
@pytest.mark.parametrize("case", PREDICT_ERRORS)
def test_predict_time_errors_name_the_column(fitted, data, name, case):
    X, _ = data
    build, match = PREDICT_ERRORS[case]
    X_bad = build(X)
    before = snapshot(X_bad)
    with pytest.raises((ValueError, TypeError), match=match) as excinfo:
        infer(fitted[name], X_bad)
    assert_clear_error(excinfo)
    assert_unchanged(before, [X_bad])


@pytest.mark.parametrize("name", ["vae", "clf", "pipe"])
def test_predict_is_independent_of_row_order_and_turn_spacing(fitted, data, name):
    X, y = data
    X_u, _ = _unsorted(X, y)
    before = snapshot(X_u)
    expected, got = infer(fitted[name], X), infer(fitted[name], X_u)
    if name == "vae":
        pd.testing.assert_frame_equal(
            got.drop(columns="turn"), expected.loc[X_u.index].drop(columns="turn")
        )
    else:
        np.testing.assert_array_equal(got, expected[X.index.get_indexer(X_u.index)])
    assert_unchanged(before, [X_u])


@pytest.mark.parametrize("name", ["vae", "clf", "pipe"])
def test_float32_input_at_predict(fitted, data, name):
    X, _ = data
    out32, out64 = infer(fitted[name], _float32(X)), infer(fitted[name], X)
    if name == "vae":
        assert (out32.filter(like="fused_").dtypes == np.float32).all()
        np.testing.assert_allclose(
            out32.filter(like="fused_"), out64.filter(like="fused_"), rtol=1e-4, atol=1e-5
        )
    else:  # the classifier computes in float32 either way
        np.testing.assert_array_equal(out32, out64)


@pytest.mark.parametrize("name", ["clf", "pipe"])
def test_unknown_label_at_score_counts_as_an_error(fitted, data, name):
    X, y = data
    y_unknown = y.copy()
    y_unknown.iloc[:10] = "never-seen"
    before = snapshot(y_unknown)
    pred = fitted[name].predict(X)
    assert fitted[name].score(X, y_unknown) == pytest.approx(np.mean(pred == y_unknown))
    assert fitted[name].score(X, y_unknown) < fitted[name].score(X, y)
    assert_unchanged(before, [y_unknown])


@pytest.mark.parametrize("name", ["vae", "clf"])
def test_plain_array_with_wrong_number_of_features(data, name):
    X, y = data
    model = fit(make(name), _plain(X), y.to_numpy())
    with pytest.raises(ValueError, match=r"X has 6 features, but \w+ is expecting 7") as excinfo:
        infer(model, _plain(X)[:, :-1])
    assert_clear_error(excinfo)


@pytest.mark.parametrize("name", ["vae", "clf", "pipe"])
def test_a_series_or_multiindex_columns_say_what_was_expected(fitted, data, name):
    X, y = data
    with pytest.raises(ValueError, match=r"X is a pandas Series.*X\.iloc\[\[i\]\]") as excinfo:
        infer(fitted[name], X.iloc[0])  # one utterance passed as a row Series
    assert_clear_error(excinfo)
    X_multi = X.copy()
    X_multi.columns = pd.MultiIndex.from_tuples([("block", c) for c in X.columns])
    with pytest.raises(ValueError, match=r"MultiIndex columns.*flatten") as excinfo:
        infer(fitted[name], X_multi)
    assert_clear_error(excinfo)
    with pytest.raises(ValueError, match=r"MultiIndex columns"):
        fit(make(name), X_multi, y)
