"""Shared fixtures: the real MNIST, loaded once per test session."""

import gc
import os
import tempfile

import numpy as np
import pytest

from engine.data import load_dataset
from ui.ast_lock import serialize_ast_parse

# App tests run Streamlit's script threads beside pytest's own parsing: on CPython 3.11 two parses at once can fail
# ("AST constructor recursion depth mismatch"); see ui/ast_lock.py.
serialize_ast_parse()

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


@pytest.fixture(autouse=True)
def _earlier_app_sessions_collected(request):
    """Every AppTest is a Streamlit session with the same id ("test session id"); when an earlier test's one is
    garbage-collected, Streamlit clears that id's session-scoped resources, so the running test's sweeps are
    cancelled and its runs stopped (`on_release`) at a moment chosen by the collector. Collect them before each app
    test instead."""
    if hasattr(request.module, "AppTest"):
        gc.collect()
    yield
