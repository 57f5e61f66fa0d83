"""Scale-out on dask: GridSearchCV over the full pipeline on a LocalCluster.

``joblib.parallel_backend("dask")`` sends scikit-learn's parallel fits to a
``dask.distributed`` cluster; here a ``LocalCluster`` of 2 single-threaded worker
processes stands in for a multi-node cluster (the recipe in ``docs/reliability.md``). The
pipeline pickles to the workers and back, and a fit writes no file: the classifier keeps
its best weights in memory (skorch ``EarlyStopping(load_best=True)``, no ``Checkpoint``),
so parallel jobs cannot share checkpoint files or temp dirs.
"""

import os
import tempfile

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold
from tiny import PIPE, conversations

from sklearn_cberl import make_cberl_pipeline

PYG_MODULE = "sklearn_cberl.nn.mgnn_RelationalAttentionConv_propagate_"

distributed = pytest.importorskip("distributed", reason="the `distributed` extra is not installed")

FAST = {
    **PIPE,
    "clf__max_epochs": 3,
    "clf__attention_hidden": (8,),
    "clf__validation_fraction": 0.2,  # exercises EarlyStopping(load_best=True)
    "clf__patience": 1,
}


@pytest.fixture(scope="module")
def data():
    return conversations(n_dialogues=16)


def search(n_jobs):
    pipe = make_cberl_pipeline(random_state=0, device="cpu", **FAST)
    grid = {"fuse": ["passthrough", pipe.named_steps["fuse"]], "clf__gamma": [0.0, 3.0]}
    return GridSearchCV(
        pipe, grid, cv=GroupKFold(2), scoring="f1_weighted", n_jobs=n_jobs, error_score="raise"
    )


def test_grid_search_on_a_dask_local_cluster_matches_sequential(data, tmp_path, monkeypatch):
    X, y = data
    groups = X["dialogue_id"]
    expected = search(n_jobs=1).fit(X, y, groups=groups)
    # Any file a job wrote to the working or the temp directory would show up here.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.chdir(tmp_path)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"OMP_NUM_THREADS": "1", "TMPDIR": str(scratch)},
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with joblib.parallel_backend("dask"):
            result = search(n_jobs=2).fit(X, y, groups=groups)
        workers = client.run(os.getpid)
    assert len(set(workers.values())) == 2 and os.getpid() not in workers.values()
    assert len(result.cv_results_["params"]) == 4
    # Same seeds, same data, same CPU arithmetic: the cluster reproduces the sequential run.
    np.testing.assert_allclose(
        result.cv_results_["mean_test_score"], expected.cv_results_["mean_test_score"]
    )
    assert result.best_params_ == expected.best_params_
    np.testing.assert_array_equal(result.predict(X), expected.predict(X))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"]
    # The only temp files: PyG writes the generated propagate() of the message-passing
    # class to a uniquely named file once per process (tempfile names; never shared).
    files = [p.name for p in scratch.iterdir()]
    assert len(files) <= 2
    assert all(PYG_MODULE in name and name.endswith(".py") for name in files)


def test_a_fit_writes_no_checkpoint_or_temp_file(data, tmp_path, monkeypatch):
    X, y = data
    # PyG writes its generated propagate() module once per process: done by this fit.
    make_cberl_pipeline(random_state=0, device="cpu", **FAST).fit(X, y)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    pipe = make_cberl_pipeline(random_state=0, device="cpu", **FAST).fit(X, y)
    callbacks = dict(pipe.named_steps["clf"].net_.callbacks_)
    names = {type(cb).__name__ for cb in callbacks.values()}
    assert "EarlyStopping" in names
    assert not names & {"Checkpoint", "TrainEndCheckpoint", "LoadInitState"}
    assert list(tmp_path.iterdir()) == []
