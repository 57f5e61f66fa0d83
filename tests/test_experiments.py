import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cberl.conversation import METADATA_COLUMNS
from sklearn_cberl.datasets import make_conversations
from sklearn_cberl.experiments import (
    ProtocolResult,
    markdown_table,
    mean_std,
    metric_table,
    run_protocol,
    select_on_validation,
    set_random_states,
    summary_table,
)


@pytest.fixture(scope="module")
def splits():
    X, y = make_conversations(n_dialogues=60, modalities={"text": 6, "audio": 6}, random_state=0)
    X = X.drop(columns=list(METADATA_COLUMNS))
    n = len(X)
    a, b = int(0.6 * n), int(0.8 * n)
    return {
        "X_train": X[:a],
        "y_train": y[:a],
        "X_valid": X[a:b],
        "y_valid": y[a:b],
        "X_test": X[b:],
        "y_test": y[b:],
    }


class CountingLR(LogisticRegression):
    """Records the sizes of the sets it predicts on, to check the test split is touched once."""

    seen = []

    def predict(self, X):
        CountingLR.seen.append(len(X))
        return super().predict(X)


def test_selection_on_validation_and_single_test_look(splits):
    CountingLR.seen = []
    model = make_pipeline(StandardScaler(), CountingLR(max_iter=500))
    res = run_protocol(model, splits, param_grid={"countinglr__C": [1e-4, 1.0]}, seeds=[0, 1])
    n_test, n_valid = len(splits["X_test"]), len(splits["X_valid"])
    # per seed: 2 validation predictions + exactly 1 test prediction
    assert CountingLR.seen == [n_valid, n_valid, n_test] * 2
    assert all(run["params"] == {"countinglr__C": 1.0} for run in res.runs)
    summary = res.summary()
    assert 0 < summary["WAF1"]["mean"] <= 100 and summary["WAF1"]["std"] >= 0
    assert "F1 fear" in summary
    table = summary_table([res], ["WAF1", "F1 fear"])
    assert "±" in table.loc["model", "WAF1"]
    assert markdown_table(table).startswith("| model | WAF1 | F1 fear |")


def test_set_random_states_and_mean_std():
    pipe = make_pipeline(LogisticRegression(), LogisticRegression())
    set_random_states(pipe, 3)
    seeds = {k: v for k, v in pipe.get_params().items() if k.endswith("random_state")}
    assert len(set(seeds.values())) == 2 and all(3000 <= v < 4000 for v in seeds.values())
    # A step's seed depends on its name, not on the other steps.
    from sklearn.pipeline import Pipeline

    both = set_random_states(
        Pipeline([("a", LogisticRegression()), ("b", LogisticRegression())]), 3
    )
    alone = set_random_states(Pipeline([("b", LogisticRegression())]), 3)
    assert alone.get_params()["b__random_state"] == both.get_params()["b__random_state"]
    assert mean_std([1.0, 3.0]) == "2.00 ± 1.00"
    assert np.isclose(float(mean_std([5]).split()[0]), 5)


def test_select_on_validation_keeps_the_first_best_and_reports_each_fit(splits):
    fits = []
    candidates = [(C, LogisticRegression(C=C, max_iter=500)) for C in (1.0, 1.0, 1e-4)]
    score, key, model, fit_time = select_on_validation(
        iter(candidates),
        splits["X_train"],
        splits["y_train"],
        splits["X_valid"],
        splits["y_valid"],
        on_fit=lambda *args: fits.append(args),
    )
    assert [f[0] for f in fits] == [1.0, 1.0, 1e-4]
    assert model is candidates[0][1] and key == 1.0  # a tie keeps the first candidate
    assert score == max(f[1] for f in fits) and fit_time >= 0


def test_failed_results_read_failed_in_tables():
    res = ProtocolResult("broken", labels=["a"], errors=["seed 0: no samples"])
    table = metric_table({"broken": res}, {"WAF1": ("weighted", "f1")}, fit_time="fit s")
    assert table.loc["broken"].tolist() == ["failed", "failed"]
    assert mean_std([], empty="failed") == "failed"


def test_starved_data_sets_cut_two_mid_size_classes_of_the_training_split_only():
    from sklearn_cberl.experiments._datasets import STARVED_CLASSES, load_dataset

    base, starved = load_dataset("demo", quick=True), load_dataset("demo-starved", quick=True)
    counts, cut = base.y_train.value_counts(), starved.y_train.value_counts()
    for label in STARVED_CLASSES:
        assert cut[label] == max(1, int(counts[label] / 8))
    others = [c for c in counts.index if c not in STARVED_CLASSES]
    assert (cut[others] == counts[others]).all()
    assert starved.minority == list(STARVED_CLASSES)
    for split in ("valid", "test"):
        pd.testing.assert_frame_equal(starved[f"X_{split}"], base[f"X_{split}"])
