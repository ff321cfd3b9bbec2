"""Shared fixtures: the real MNIST, loaded once per test session."""

import os
import tempfile

import numpy as np
import pytest

from engine.data import load_dataset

# The app's workspaces (ui/workspace.py) save runs under MLP_LAB_DATA: the tests' go to a folder of their own.
os.environ.setdefault("MLP_LAB_DATA", tempfile.mkdtemp(prefix="mlp-lab-tests-"))


@pytest.fixture(scope="session")
def mnist():
    return load_dataset("mnist")


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
