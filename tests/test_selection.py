"""CBERLStageSearch: stages chosen on validation data with scikit-learn's search machinery."""

import numpy as np
import pandas as pd
import pytest
from tiny import PIPE, conversations

from sklearn_cberl import CBERLStageSearch
from sklearn_cberl.classifier import CBERLClassifier
from sklearn_cberl.selection._rule import StoredPredictions, bootstrap_scores, choose_simplest

PARAMS = {k: v for k, v in PIPE.items() if k not in ("aug__sampling_strategy", "fusion")}


@pytest.fixture(scope="module")
def data():
    X, y = conversations(n_dialogues=30, random_state=2)
    ids = X["dialogue_id"].unique()
    train, valid, test = ids[:18], ids[18:24], ids[24:]
    X = X.copy()
    # Test dialogues are recognisable wherever they go.
    X["dialogue_id"] = X["dialogue_id"].where(
        ~X["dialogue_id"].isin(test), "TEST-" + X["dialogue_id"]
    )
    part = {name: X["dialogue_id"].isin(ids) for name, ids in (("train", train), ("valid", valid))}
    part["test"] = X["dialogue_id"].str.startswith("TEST-")
    return {name: (X[mask].reset_index(drop=True), y[mask].reset_index(drop=True))
            for name, mask in part.items()}  # fmt: skip


def search(**kwargs):
    kwargs = {"ratios": (0.5,), "fusions": ("separate", "end_to_end"), "params": PARAMS,
              "device": "cpu", **kwargs}  # fmt: skip
    return CBERLStageSearch(**kwargs)


def test_the_search_never_reads_the_test_rows_and_keeps_the_choice(data, monkeypatch):
    (X, y), (X_val, y_val), (X_test, _) = data["train"], data["valid"], data["test"]
    seen = []
    original = CBERLClassifier.fit

    def fit(self, X, y, **kwargs):
        seen.append(set(X["dialogue_id"]))
        validation = kwargs.get("validation_data")
        if validation is not None:
            seen.append(set(validation[0]["dialogue_id"]))
        return original(self, X, y, **kwargs)

    monkeypatch.setattr(CBERLClassifier, "fit", fit)
    model = search(tolerance=0).fit(X, y, validation_data=(X_val, y_val))
    # 4 candidates, each with its validation set; the choice's fit is kept, not repeated.
    assert len(seen) == 2 * 4
    assert model.refit_time_ == 0.0
    assert not any(dialogue.startswith("TEST-") for ids in seen for dialogue in ids)
    # One row per candidate: the classifier alone, the two fusions, the sampler.
    results = pd.DataFrame(model.cv_results_)
    assert list(results["stage"]) == ["fusion"] * 3 + ["sampler"]
    assert results["config"].iloc[0] == "classifier"
    assert (results["gap_se"] >= 0).all()
    # tolerance=0: the best validation score (of the fusion step, then of the sampler step).
    fusion = results.iloc[:3]
    best_fusion = fusion["params"].iloc[int(np.argmax(fusion["mean_test_score"]))]["fusion"]
    step2 = [results["mean_test_score"].iloc[int(np.argmax(fusion["mean_test_score"]))],
             results["mean_test_score"].iloc[3]]  # fmt: skip
    assert model.best_config_["fusion"] == best_fusion
    assert model.best_config_["augment"] == (step2[1] > step2[0])
    assert model.best_score_ == max(step2)
    # The kept fit is the chosen configuration fitted directly with the same seeds.
    direct = model.candidate(model.best_config_).fit(X, y, validation_data=(X_val, y_val))
    np.testing.assert_array_equal(direct.predict_proba(X_test), model.predict_proba(X_test))
    assert set(model.predict(X_test)) <= set(model.classes_)
    assert model.n_features_in_ == X.shape[1]


def test_a_stage_must_beat_the_validation_noise(data):
    (X, y), (X_val, y_val) = data["train"], data["valid"]
    # An unbounded tolerance: nothing beats the classifier alone by infinitely many errors.
    model = search(tolerance=float("inf")).fit(X, y, validation_data=(X_val, y_val))
    assert model.best_config_ == {"augment": False, "sampling_strategy": None, "fusion": None}
    assert model.best_score_ == model.cv_results_["mean_test_score"][0]


def test_the_rule_takes_the_simplest_candidate_within_the_noise():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=500)  # what every candidate gets right or wrong: cancels
    # The best (2) leads candidate 0 by 2.5 and candidate 1 by 0.5, each gap with SE ~1.
    resampled = np.vstack([shared + rng.normal(size=500), shared + 2 + rng.normal(size=500),
                           shared + 2.5])  # fmt: skip
    scores = [0.0, 2.0, 2.5]
    chosen, gap_se = choose_simplest(scores, resampled, tolerance=1.0)
    assert chosen == 1 and gap_se[2] == 0 and 0.9 < gap_se[0] < 1.1
    assert choose_simplest(scores, resampled, tolerance=0)[0] == 2
    assert choose_simplest(scores, resampled, tolerance=3.0)[0] == 0


def test_the_bootstrap_draws_whole_dialogues():
    y = np.array([0, 0, 1, 1, 1, 0])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    right = StoredPredictions(np.array([0, 1]), y.copy())
    # Wrong on exactly one whole dialogue ("b"): each resample's accuracy is a multiple of
    # 1/3 only if dialogues are drawn whole (every dialogue has 2 rows).
    wrong = StoredPredictions(np.array([0, 1]), np.where(groups == "b", 1 - y, y))
    scores = bootstrap_scores([right, wrong], y, groups, "accuracy", random_state=0)
    assert (scores[0] == 1).all()
    np.testing.assert_allclose(scores[1] * 3, np.round(scores[1] * 3))
    assert 0 < scores[1].mean() < 1


def test_without_validation_data_the_choice_is_refitted_on_all_training_data(data):
    (X, y), (X_test, _) = data["train"], data["test"]
    model = search(fusions=(), ratios=(), cv=2).fit(X, y)
    assert model.cv_results_["config"] == ["classifier"]
    assert "split1_test_score" in model.cv_results_
    assert model.best_config_ == {"augment": False, "sampling_strategy": None, "fusion": None}
    direct = model.candidate(model.best_config_).fit(X, y)
    np.testing.assert_array_equal(direct.predict_proba(X_test), model.predict_proba(X_test))


def test_bad_parameters_are_named(data):
    X, y = data["train"]
    with pytest.raises(ValueError, match="fusions="):
        search(fusions=("sum",)).fit(X, y)
    with pytest.raises(ValueError, match="ratios="):
        search(ratios=(2.0,)).fit(X, y)
    with pytest.raises(ValueError, match="tolerance="):
        search(tolerance=-1).fit(X, y)
    with pytest.raises(ValueError, match="random_state="):
        search(random_state=None).fit(X, y)


def test_a_ratio_that_adds_no_row_is_not_fitted(data):
    (X, y), (X_val, y_val) = data["train"], data["valid"]
    # 0.01 of the majority: every class already has that many rows.
    model = search(ratios=(0.01,), fusions=()).fit(X, y, validation_data=(X_val, y_val))
    assert model.cv_results_["config"] == ["classifier"]
    assert model.best_config_["augment"] is False


def test_candidates_fitted_side_by_side_give_the_same_search(data):
    (X, y), (X_val, y_val), (X_test, _) = data["train"], data["valid"], data["test"]
    kwargs = {"ratios": (0.5,), "fusions": ("end_to_end",)}
    one = search(**kwargs).fit(X, y, validation_data=(X_val, y_val))
    two = search(n_jobs=2, **kwargs).fit(X, y, validation_data=(X_val, y_val))
    np.testing.assert_allclose(two.cv_results_["mean_test_score"],
                               one.cv_results_["mean_test_score"])  # fmt: skip
    assert two.best_config_ == one.best_config_
    np.testing.assert_array_equal(two.predict_proba(X_test), one.predict_proba(X_test))


def test_the_callers_thread_setting_reaches_the_worker_processes(data, monkeypatch):
    from sklearn_cberl import config_context, get_config
    from sklearn_cberl.selection import _stage_search

    seen = []
    original = _stage_search._fit_and_predict

    def spy(*args):
        seen.append(args[-1])
        return original(*args)

    monkeypatch.setattr(_stage_search, "_fit_and_predict", spy)
    (X, y), (X_val, y_val) = data["train"], data["valid"]
    with config_context(n_threads=2):
        search(ratios=(), fusions=()).fit(X, y, validation_data=(X_val, y_val))
    assert seen == [2]

    # ... and the task applies it, whatever the (worker's) own configuration.
    class Recorder(CBERLClassifier):
        def fit(self, X, y, **kwargs):
            self.threads_seen_ = get_config()["n_threads"]
            return super().fit(X, y, **kwargs)

    model = Recorder(max_epochs=1, hidden_size=8, device="cpu", random_state=0)
    fitted, _, _ = original(model, X, y, {}, X_val, 2)
    assert fitted.threads_seen_ == 2 and get_config()["n_threads"] == 1
