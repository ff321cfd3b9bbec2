"""Process-wide and session-wide resources: datasets, training slots, stop-on-close.

How many cores each NumPy training uses when several run at once is the engine's business
(engine.parallel.CpuShare).
"""

from __future__ import annotations

import threading

import streamlit as st

from engine import Dataset, load_dataset
from engine.backends import prewarm_torch, torch_available
from ui.runs import TrainingRun

MAX_CONCURRENT_TRAININGS = 2  # in the whole process; further runs wait, shown as "queued"


@st.cache_resource(show_spinner="Loading the dataset…")
def get_dataset(name: str) -> Dataset:
    """Loaded once per process; the arrays are read-only, so sessions share them without copies."""
    return load_dataset(name)


@st.cache_resource
def training_slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(MAX_CONCURRENT_TRAININGS)


def _stop_all(runs: list[TrainingRun]) -> None:
    for run in runs:
        run.stop()


@st.cache_resource(scope="session", on_release=_stop_all)
def session_workers() -> list[TrainingRun]:
    """The runs this browser session started; released (so stopped) when the session closes."""
    return []


@st.cache_resource
def warm_torch() -> bool:
    """Import PyTorch and initialise the GPU once in the background, so a first torch run starts at once."""
    if not torch_available():
        return False
    prewarm_torch()
    return True


def start_run(run: TrainingRun) -> None:
    """Start a run in the background and make sure it stops if this session closes."""
    run.start(get_dataset(run.config.dataset), training_slots())
    session_workers().append(run)
