"""Shared fixtures: the real MNIST, loaded once per test session."""

import numpy as np
import pytest

from engine.data import load_dataset


@pytest.fixture(scope="session")
def mnist():
    return load_dataset("mnist")


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
