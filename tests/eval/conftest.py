"""Fixtures for the FVD tests: a session-wide random detector and tiny videos (one torch thread: tests/conftest.py)."""
import pytest

from .helpers import SIZE



@pytest.fixture(scope="session")
def detector():
    from worldgen.eval.detectors import random_detector

    return random_detector(seed=0, size=SIZE)
