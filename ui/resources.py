"""Process-wide and session-wide resources: datasets, training slots (first come, first served), starting runs.

How many cores each NumPy training uses when several run at once is the engine's business
(engine.parallel.CpuShare).
"""

from __future__ import annotations

import streamlit as st

from engine import PRESETS, Dataset, load_dataset
from engine.backends import prewarm_torch, torch_available
from ui import state
from ui.memory import estimate_bytes, make_room, resident_estimate, snapshots_of
from ui.naming import run_label
from ui.runs import FAILED, TrainingRun, TrainingSlots
from ui.workspace import hosted_limits, over_limits, record, registry

MAX_CONCURRENT_TRAININGS = 2  # in the whole process; further runs wait, shown as "queued"


@st.cache_resource(show_spinner="Loading the dataset…")
def get_dataset(name: str) -> Dataset:
    """Loaded once per process; the arrays are read-only, so sessions share them without copies."""
    return load_dataset(name)


@st.cache_resource
def training_slots() -> TrainingSlots:
    """The server's training slots: first come, first served; a paused run gives its slot back."""
    return TrainingSlots(MAX_CONCURRENT_TRAININGS)


def _stop_all(runs: list[TrainingRun]) -> None:
    for run in runs:
        run.stop()


@st.cache_resource(scope="session", on_release=_stop_all)
def session_workers() -> list[TrainingRun]:
    """The runs this browser session started outside a workspace; released (so stopped) when the session closes."""
    return []


@st.cache_resource
def warm_torch() -> bool:
    """Import PyTorch and initialise the GPU once in the background, so a first torch run starts at once."""
    if not torch_available():
        return False
    prewarm_torch()
    return True


def start_run(run: TrainingRun) -> None:
    """Start a run in the background, saved in this session's workspace (which stops it when every tab of the
    workspace has been gone a while); a run outside a workspace (a share link's page) stops when its tab closes.
    A hosted demo over its limits fails the run at once with the reason as its message."""
    data = get_dataset(run.config.dataset)
    refused = over_limits(run.config, sum(r.in_progress for r in state.runs() if r is not run),
                          training_slots().in_use) or room_for(run, data)
    if refused:
        run.status, run.message = FAILED, refused
        return
    in_workspace = record(run)
    run.start(data, training_slots())
    if not in_workspace:
        session_workers().append(run)


def room_for(run: TrainingRun, data: Dataset) -> str | None:
    """Memory for the run within the workspace's and the server's caps (ui/memory.py), or why there is none."""
    others = [r for r in state.runs() if r is not run]
    everyone = [r for r in registry().all_runs() + session_workers() if r is not run]
    return make_room(estimate_bytes(run.config, data), others, everyone, hosted_limits() is not None,
                     resident_estimate(run.config, data))


def resume_button(run: TrainingRun, where: str) -> None:
    """"Resume training" for a stopped or interrupted run that kept its last epoch's checkpoint: it trains the
    epochs left, from that epoch's weights, optimizer state and random streams, as if it had never stopped."""
    if not run.resumable():
        return
    if run.message.startswith("Resuming failed"):
        st.warning(run.message, icon=":material/error:")
    left = run.config.epochs - run.epochs_done
    if not st.button(f"Resume training (epochs {run.epochs_done + 1}-{run.config.epochs})",
                     key=f"resume_{where}_{run.id}", icon=":material/play_arrow:",
                     help=f"Trains the {left} epoch{'s' * (left != 1)} left from where the run stopped: the weights, "
                          "the optimizer's memory (Adam's moments, momentum) and the shuffling of its last epoch, so "
                          "it ends as if it had never stopped."):
        return
    checkpoint = run.checkpoint()  # again: another tab may have resumed it meanwhile
    if checkpoint is None:
        return
    data = get_dataset(run.config.dataset)
    refused = over_limits(run.config, sum(r.in_progress for r in state.runs() if r is not run),
                          training_slots().in_use) or room_for(run, data)
    if refused:
        st.warning(refused)
        return
    snapshots_of(run)  # released snapshots back first: the run adds to them
    if not run.continue_training(data, training_slots(), checkpoint):
        return
    st.session_state[state.ACTIVE_RUN] = run.id
    st.session_state[state.FOLLOWED_RUNS] = [run.id]
    st.rerun()


def start_presets(names: tuple[str, ...]) -> list[str]:
    """Start these presets side by side (with the sidebar's backend, device and seed), followed on Train and
    overlaid on Compare as soon as each has an epoch; returns their run ids."""
    current = st.session_state.get(state.CONFIG)
    started = []
    for name in names:
        cfg = PRESETS[name].config
        if current is not None:
            cfg = cfg.replace(backend=current.backend, device=current.device, seed=current.seed)
        run = TrainingRun(cfg)
        run.name = f"{run.short_id} {run_label(cfg, name)}"
        state.runs().append(run)
        start_run(run)
        started.append(run.id)
    st.session_state[state.COMPARE_PENDING] = started
    st.session_state[state.ACTIVE_RUN] = started[-1]
    st.session_state[state.FOLLOWED_RUNS] = started
    return started
