"""Fixtures for the FVD tests: one torch thread (the CPUs are shared; I3D at 32x32 is fast on one) and tiny videos."""
import pytest
import torch

from .helpers import SIZE


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def detector():
    from worldgen.eval.detectors import random_detector

    return random_detector(seed=0, size=SIZE)
