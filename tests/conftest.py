"""Shared fixtures: small, seeded conversation data so the suite stays CPU-fast."""

import os

import pytest

# Keep each test process to one intra-op thread: CI has 2 cores and runs pytest-xdist workers.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_configure(config):
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_conversations():
    """~600 utterances, 3 modalities of reduced width, MELD-like imbalance."""
    from sklearn_cberl.datasets import make_conversations

    return make_conversations(
        n_dialogues=40,
        modalities={"text": 12, "audio": 8, "visual": 16},
        random_state=0,
    )


@pytest.fixture(scope="session")
def tiny_conversations():
    """12 dialogues, 3 classes of 119 / 27 / 16 utterances (enough for SMOTE), 2 modalities."""
    from tiny import conversations

    return conversations()
