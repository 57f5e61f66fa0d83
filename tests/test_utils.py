import math

import numpy as np
import pytest
import torch

from sklearn_cberl._torch_estimator import (
    check_finite_loss,
    resolve_device,
    seed_from,
    torch_seed,
)
from sklearn_cberl.exceptions import TrainingDivergedError


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ValueError, match="device='tpu9'"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_torch_seed_is_reproducible_and_restores_global_state():
    before = torch.random.get_rng_state()
    with torch_seed(seed_from(0)):
        a = torch.rand(3)
    with torch_seed(seed_from(0)):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.random.get_rng_state(), before)
    state = np.random.RandomState(5)
    assert seed_from(state) != seed_from(state)


def test_check_finite_loss():
    assert check_finite_loss(torch.tensor(1.5), estimator="E", epoch=1) == 1.5
    with pytest.raises(TrainingDivergedError, match="E: the kl became nan at epoch 3"):
        check_finite_loss(math.nan, estimator="E", epoch=3, term="kl")
    assert issubclass(TrainingDivergedError, FloatingPointError)


def test_torch_threads_sets_and_restores_the_thread_count(monkeypatch):
    import os

    import torch

    from sklearn_cberl import config_context, get_config, set_config, torch_threads
    from sklearn_cberl._config import free_cores

    before = torch.get_num_threads()
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="positive number of threads"):
        with torch_threads(0):
            pass
    # "free": the cores other processes leave free, at least one.
    cores = len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 3.0, 0.0, 0.0))
    assert free_cores() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert free_cores() == cores
    with torch_threads("free") as n:
        assert n == cores == torch.get_num_threads()
    assert torch.get_num_threads() == before
    # The package default is one thread; config_context changes it for a block only.
    assert get_config() == {"n_threads": 1}
    with config_context(n_threads=2), torch_threads() as n:
        assert n == 2 == torch.get_num_threads()
    assert get_config() == {"n_threads": 1}
    with pytest.raises(ValueError, match="n_threads=0"):
        set_config(n_threads=0)


def test_best_epoch_keeps_the_last_epoch_without_early_stopping_and_the_best_with_it():
    from sklearn_cberl._torch_base import BestEpoch

    module = torch.nn.Linear(2, 1)
    watch = BestEpoch(module, patience=None)
    assert not any(watch.update(epoch, loss) for epoch, loss in [(1, 3.0), (2, 1.0), (3, 2.0)])
    assert (watch.epoch, watch.kept_epoch, watch.best_epoch) == (3, 3, 2)
    stop = BestEpoch(module, patience=2)
    best = {k: v.clone() for k, v in module.state_dict().items()}
    assert [stop.update(e, loss) for e, loss in [(1, 3.0), (2, 1.0), (3, 2.0), (4, 5.0)]] == [
        False,
        False,
        False,
        True,
    ]
    torch.nn.init.zeros_(module.weight)
    stop.restore()
    assert stop.kept_epoch == 2
    # restore() loads the weights of epoch 2 (snapshotted before the change above)
    assert not torch.equal(module.weight, torch.zeros_like(module.weight))
    assert torch.equal(module.weight, best["weight"])


def test_hold_out_is_seeded_sorted_and_never_empty():
    from sklearn_cberl._torch_base import hold_out

    kept, held = hold_out(10, 0.01, seed=3)
    assert len(held) == 1 and len(kept) == 9
    assert sorted([*kept, *held]) == list(range(10))
    assert (np.diff(kept) > 0).all()
    np.testing.assert_array_equal(hold_out(10, 0.3, seed=3)[1], hold_out(10, 0.3, seed=3)[1])
