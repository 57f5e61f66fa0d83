import math

import numpy as np
import pytest
import torch

from sklearn_cberl._utils import (
    TrainingDivergedError,
    check_finite_loss,
    resolve_device,
    seed_from,
    torch_seed,
)


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
