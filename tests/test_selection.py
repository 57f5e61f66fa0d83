"""CBERLStageSearch: stages chosen on validation data with scikit-learn's search machinery."""

import numpy as np
import pandas as pd
import pytest
from tiny import PIPE, conversations

from sklearn_cberl import CBERLStageSearch
from sklearn_cberl.classifier import CBERLClassifier

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


def test_the_search_never_reads_the_test_rows_and_refits_the_choice(data, monkeypatch):
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
    model = search().fit(X, y, validation_data=(X_val, y_val))
    assert len(seen) >= 2 * 5  # 4 candidates + the refit, each with its validation set
    assert not any(dialogue.startswith("TEST-") for ids in seen for dialogue in ids)
    # One row per candidate: the classifier alone, the two fusions, the sampler.
    results = pd.DataFrame(model.cv_results_)
    assert list(results["stage"]) == ["fusion"] * 3 + ["sampler"]
    assert results["config"].iloc[0] == "classifier"
    assert model.best_score_ == results["mean_test_score"].max()
    assert results.loc[results["rank_test_score"] == 1, "params"].iloc[0] == model.best_config_
    # The refit is the chosen configuration fitted directly with the same seeds.
    direct = model.candidate(model.best_config_).fit(X, y, validation_data=(X_val, y_val))
    np.testing.assert_array_equal(direct.predict_proba(X_test), model.predict_proba(X_test))
    assert set(model.predict(X_test)) <= set(model.classes_)
    assert model.n_features_in_ == X.shape[1]


def test_without_validation_data_the_folds_keep_dialogues_whole(data):
    X, y = data["train"]
    model = search(fusions=(), ratios=(), cv=2).fit(X, y)
    assert model.cv_results_["config"] == ["classifier"]
    assert "split1_test_score" in model.cv_results_
    assert model.best_config_ == {"augment": False, "sampling_strategy": None, "fusion": None}


def test_bad_parameters_are_named(data):
    X, y = data["train"]
    with pytest.raises(ValueError, match="fusions="):
        search(fusions=("sum",)).fit(X, y)
    with pytest.raises(ValueError, match="ratios="):
        search(ratios=(2.0,)).fit(X, y)
    with pytest.raises(ValueError, match="random_state="):
        search(random_state=None).fit(X, y)


def test_a_ratio_that_adds_no_row_is_not_fitted(data):
    (X, y), (X_val, y_val) = data["train"], data["valid"]
    # 0.01 of the majority: every class already has that many rows.
    model = search(ratios=(0.01,), fusions=()).fit(X, y, validation_data=(X_val, y_val))
    assert model.cv_results_["config"] == ["classifier"]
    assert model.best_config_["augment"] is False
