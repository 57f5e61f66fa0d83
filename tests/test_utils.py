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


def test_validation_split_keeps_dialogues_whole_and_drops_synthetic_rows():
    from sklearn_cberl.conversation import validation_split

    dialogues = np.repeat(["d3", "d1", "d2", "d0"], 3)
    real = np.ones(12, dtype=bool)
    real[[2, 5]] = False  # two synthetic rows
    train, valid = validation_split(dialogues, 0.5, random_state=0, real=real)
    assert set(dialogues[train]).isdisjoint(dialogues[valid])  # a dialogue on one side
    assert len(set(dialogues[valid])) == 2 and real[valid].all()
    assert not set(np.flatnonzero(~real)) & set(valid)
    # Seeded, and independent of the row order.
    order = np.random.RandomState(1).permutation(12)
    again = validation_split(dialogues[order], 0.5, random_state=0, real=real[order])
    assert set(dialogues[order][again[1]]) == set(dialogues[valid])
    assert validation_split(np.zeros(5), 0.5, random_state=0) is None  # one dialogue
