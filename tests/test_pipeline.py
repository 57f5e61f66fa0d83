"""The full system: sampler -> fusion -> classifier in one imblearn Pipeline."""

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold

from sklearn_cberl import (
    DJVAE,
    PAPER_AUGMENTATION,
    AddPerClass,
    CBERLClassifier,
    CBERLPipeline,
    EmoGANSampler,
    UpToRatio,
    make_cberl_pipeline,
)
from sklearn_cberl.experiments import fit_with_validation

FAST = dict(
    fusion="separate",  # the fuse__ parameters below need the DJVAE step
    aug__max_epochs=2,
    aug__classifier_max_epochs=2,
    fuse__max_epochs=2,
    fuse__n_components=6,
    clf__max_epochs=2,
    clf__hidden_size=16,
    clf__n_estimators=2,
    clf__validation_fraction=None,
)


@pytest.fixture(scope="module")
def data(small_conversations):
    X, y = small_conversations
    first = X["dialogue_id"] < "dlg0030"
    return X[first], y[first], X[~first], y[~first]


def test_paper_pipeline_structure_and_defaults():
    pipe = make_cberl_pipeline()
    assert [name for name, _ in pipe.steps] == ["aug", "fuse", "clf"]
    clf = pipe.named_steps["clf"]
    # paper Sec. V-D defaults
    assert (clf.gamma, clf.xi_recon, clf.xi_focal, clf.dropout) == (3.0, 0.3, 0.7, 0.5)
    aug = pipe.named_steps["aug"]
    assert (aug.lambda_identity, aug.lambda_adversarial, aug.lambda_classification) == (1, 0.5, 0.5)
    # the default fusion: a DJVAE inside the classifier, pretrained alone (docs/fusion.md)
    assert pipe.named_steps["fuse"] == "passthrough"
    assert isinstance(clf.fusion, DJVAE) and clf.pretrain_fusion
    separate = make_cberl_pipeline(fusion="separate")
    assert isinstance(separate.named_steps["fuse"], DJVAE) and separate[-1].fusion is None
    ablated = make_cberl_pipeline(augment=False, fusion=None)
    assert ablated.named_steps["aug"] == "passthrough" == ablated.named_steps["fuse"]
    seeded = make_cberl_pipeline(random_state=3)
    states = [v for k, v in seeded.get_params().items() if k.endswith("random_state")]
    assert len(states) == 3 and len(set(states)) == 3


def test_full_pipeline_fits_predicts_in_input_order(data):
    X_train, y_train, X_test, y_test = data
    pipe = make_cberl_pipeline(random_state=0, device="cpu", **FAST).fit(X_train, y_train)
    shuffled = X_test.sample(frac=1.0, random_state=1)
    pred = pipe.predict(X_test)
    np.testing.assert_array_equal(
        pipe.predict(shuffled), pred[X_test.index.get_indexer(shuffled.index)]
    )
    assert set(pred) <= set(y_train)
    assert pipe.named_steps["aug"].synthetic_mask_.any()


def test_default_pipeline_fuses_inside_the_classifier(data):
    X_train, y_train, X_test, _ = data
    pipe = make_cberl_pipeline(
        random_state=0, device="cpu", aug__max_epochs=2, aug__classifier_max_epochs=2,
        clf__max_epochs=2, clf__hidden_size=16, clf__n_estimators=2,
        clf__fusion__max_epochs=2, clf__fusion__n_components=6,
    ).fit(X_train, y_train)  # fmt: skip
    clf = pipe.named_steps["clf"]
    assert clf.net_.module_.fusion is not None  # the DJVAE inside the network
    assert pipe.predict(X_test).shape == (len(X_test),)


def test_grid_search_group_kfold_over_ablations(small_conversations):
    X, y = small_conversations
    pipe = make_cberl_pipeline(random_state=0, device="cpu", **FAST)
    grid = {
        "aug": ["passthrough", clone(pipe.named_steps["aug"])],
        "fuse": ["passthrough", clone(pipe.named_steps["fuse"])],
        "clf__gamma": [0, 3],
    }
    search = GridSearchCV(pipe, grid, cv=GroupKFold(2), scoring="f1_weighted", error_score="raise")
    search.fit(X, y, groups=X["dialogue_id"])
    assert len(search.cv_results_["params"]) == 8
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict(X).shape == (len(X),)


def test_smote_family_in_the_pipeline_via_conversation_sampler(data):
    from sklearn_cberl.over_sampling import ConversationSampler

    X_train, y_train, X_test, _ = data
    pipe = make_cberl_pipeline(random_state=0, device="cpu", **FAST)
    pipe.set_params(aug=ConversationSampler(SMOTE(k_neighbors=2, random_state=0)))
    pipe.fit(X_train, y_train)
    assert pipe.predict(X_test).shape == (len(X_test),)


def test_validation_data_reaches_the_classifier_through_the_fitted_steps(data):
    X_train, y_train, X_valid, y_valid = data
    pipe = make_cberl_pipeline(random_state=0, device="cpu", **FAST)
    pipe.set_params(clf__validation_fraction=0.2, clf__max_epochs=3)
    assert isinstance(pipe, CBERLPipeline)
    pipe.fit(X_train, y_train, validation_data=(X_valid, y_valid))
    clf = pipe.named_steps["clf"]
    # validated on the given split (transformed by the fitted DJVAE), not on held-out train
    assert len(clf.validation_dialogues_) == 0 and "valid_waf1" in clf.net_.history[-1]
    assert 1 <= clf.best_epoch_ <= 3
    assert list(clf.feature_names_in_[3:]) == list(
        pipe.named_steps["fuse"].get_feature_names_out()[3:]
    )
    # DJVAE got the raw validation split too: it records its validation loss, without
    # early stopping (the default) that changes nothing in its fit.
    assert "valid_loss" in pipe.named_steps["fuse"].history_[-1]
    # The step-name form and the experiments helper are the same fit.
    pred = pipe.predict(X_valid)
    other = clone(pipe).fit(X_train, y_train, clf__validation_data=(X_valid, y_valid))
    np.testing.assert_array_equal(other.predict(X_valid), pred)
    plain = Pipeline(clone(pipe).steps)
    fit_with_validation(plain, X_train, y_train, X_valid, y_valid)
    np.testing.assert_array_equal(plain.predict(X_valid), pred)
    with pytest.raises(TypeError, match="not both"):
        clone(pipe).fit(
            X_train, y_train, validation_data=(X_valid, y_valid), clf__validation_data=()
        )


def test_plain_pipeline_with_raw_validation_data_says_what_to_do(data):
    X_train, y_train, X_valid, y_valid = data
    steps = make_cberl_pipeline(random_state=0, device="cpu", **FAST).steps
    with pytest.raises(ValueError, match="CBERLPipeline.*validation_data"):
        Pipeline(steps).fit(X_train, y_train, clf__validation_data=(X_valid, y_valid))


@pytest.mark.parametrize("placement", ["after_source", "standalone"])
def test_synthetic_rows_never_reach_the_validation_split(data, placement, monkeypatch):
    """The literal three-step Pipeline validates on held-out real utterances only."""
    X_train, y_train, X_valid, y_valid = data
    from sklearn_cberl.classifier import _classifier

    built = []
    original = _classifier.dialogue_dataset

    def spy(conv, *args, **kwargs):
        built.append(conv)
        return original(conv, *args, **kwargs)

    monkeypatch.setattr(_classifier, "dialogue_dataset", spy)
    pipe = Pipeline(make_cberl_pipeline(random_state=0, device="cpu", **FAST).steps)
    pipe.set_params(aug__placement=placement, clf__validation_fraction=0.3, clf__max_epochs=2)
    pipe.fit(X_train, y_train)
    n_synthetic = int(pipe.named_steps["aug"].synthetic_mask_.sum())
    held = set(pipe.named_steps["clf"].validation_dialogues_)
    valid, train = built[0], built[1]  # datasets built during fit (predict builds later)
    assert held and set(valid.dialogue_ids) == held
    assert valid.synthetic is not None and not valid.synthetic.any()
    assert not held & set(train.dialogue_ids)
    assert train.synthetic.sum() > 0 and train.synthetic.sum() <= n_synthetic
    # An explicit validation set that carries synthetic rows is cut to its real rows too.
    built.clear()
    X_res, y_res = clone(pipe.named_steps["aug"]).fit_resample(X_valid, y_valid)
    clf = CBERLClassifier(random_state=0, device="cpu", max_epochs=1, hidden_size=8)
    clf.fit(X_train, y_train, validation_data=(X_res, y_res))
    assert built[0].n_samples == len(X_valid) and not built[0].synthetic.any()


def test_add_per_class_matches_table_vi_semantics():
    y = np.array(["fear"] * 10 + ["neutral"] * 90)
    assert AddPerClass({"fear": 5, "neutral": 0})(y) == {"fear": 15}
    assert AddPerClass({"fear": 200}, reference_size=1000)(y) == {"fear": 30}
    sampler = EmoGANSampler(sampling_strategy=AddPerClass({"fear": 5}))
    assert clone(sampler).sampling_strategy == AddPerClass({"fear": 5})


def test_paper_counts_find_short_label_spellings_and_reject_absent_classes():
    # IEMOCAP feature releases spell the classes hap/sad/neu/ang/exc/fru.
    short = np.repeat(["hap", "sad", "neu", "ang", "exc", "fru"], [50, 80, 100, 60, 70, 90])
    targets = AddPerClass(PAPER_AUGMENTATION["iemocap"])(short)
    assert targets == {"hap": 300, "sad": 200, "neu": 180, "ang": 310, "exc": 190, "fru": 170}
    assert AddPerClass({"Happy": 5})(np.array(["HAPPY", "sad"])) == {"HAPPY": 6}
    y = np.array(["fear"] * 10 + ["neutral"] * 90)
    with pytest.raises(ValueError, match="'disgust', which is not in y.*fear"):
        AddPerClass({"fear": 5, "disgust": 7})(y)
    sampler = EmoGANSampler(sampling_strategy=AddPerClass({"disgust": 5}), max_epochs=1)
    with pytest.raises(ValueError, match="disgust"):
        sampler.fit_resample(np.random.default_rng(0).normal(size=(100, 3)), y)


def test_up_to_ratio_raises_small_classes_only():
    y = np.repeat(["a", "b", "c"], [100, 60, 10])
    assert UpToRatio(0.5)(y) == {"c": 50}
    assert UpToRatio(1.0)(y) == {"b": 100, "c": 100}
    assert UpToRatio(0.05)(y) == {}
    with pytest.raises(ValueError, match="ratio"):
        UpToRatio(1.5)(y)
    # EmoGANSampler reads a float as this policy for any number of classes.
    sampler = EmoGANSampler(
        sampling_strategy=0.5, max_epochs=1, classifier_max_epochs=1, device="cpu"
    )
    X = np.random.default_rng(0).normal(size=(170, 4))
    _, y_res = sampler.fit_resample(X, y)
    assert sampler.sampling_strategy_ == {"c": 40}
    assert (y_res == "c").sum() == 50 and len(y_res) == 210
    assert isinstance(DJVAE(), DJVAE)
