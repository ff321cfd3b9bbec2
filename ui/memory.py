"""A bound on the memory a workspace's runs and the whole server's take (issue: a tab with three 47M-parameter runs
took the server from 0.2 to 3.4 GB).

What a run holds is its arrays: the model, the copy kept at each epoch's end, its per-epoch snapshots (for Inside,
up to engine.snapshots.BUDGET_BYTES) and, while it trains, the gradients and the optimizer's memory. Before a run
starts, `make_room` checks that its estimate fits the workspace's and the server's caps; where it does not, the
snapshots of the workspace's finished runs that the store has saved leave memory, oldest first (Inside reads them
back from disk when such a run is opened: `snapshots_of`); if that is not enough, the run is refused with a sentence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from engine import TrainConfig
from engine.config import IMAGE_SIDES, n_parameters
from engine.snapshots import BUDGET_BYTES, Snapshots
from ui.runs import TrainingRun

HOSTED_WORKSPACE_BYTES = 512 * 2**20  # a hosted demo: per visitor's workspace
HOSTED_SERVER_BYTES = 1536 * 2**20  # and for every open workspace together (the load test's goal: 2 GB RSS)
LOCAL_SHARE = 0.75  # locally: the runs may take this share of the machine's memory


def run_bytes(run: TrainingRun) -> int:
    """The bytes of the arrays the run holds now (its model, epoch copy, snapshots, checkpoint, training state)."""
    model = sum(a.nbytes for a in run.model.named_arrays().values()) if run.model is not None else 0
    held = model + run.snapshots.nbytes
    if run.in_progress:  # the epoch copy, gradients, the optimizer's memory, the fast step's twin buffers
        held += model * (3 + OPTIMIZER_ARRAYS.get(run.config.optimizer, 0))
    return held


OPTIMIZER_ARRAYS = {"adam": 2, "momentum": 1}  # arrays of the parameters' size the optimizer keeps


def estimate_bytes(cfg: TrainConfig, n_features: int, n_classes: int) -> int:
    """What a run of `cfg` will hold while it trains, at most: run_bytes at its largest."""
    side = IMAGE_SIDES.get(cfg.dataset)
    model = 4 * n_parameters(cfg.hidden_sizes, n_features, n_classes, side)
    snapshots = min(BUDGET_BYTES, model * (cfg.epochs + 1))
    return model * (4 + OPTIMIZER_ARRAYS.get(cfg.optimizer, 0)) + snapshots


def caps(hosted: bool) -> tuple[int, int]:
    """(per workspace, per server) in bytes."""
    if hosted:
        return HOSTED_WORKSPACE_BYTES, HOSTED_SERVER_BYTES
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on this platform: no cap
        total = 2**62
    return int(LOCAL_SHARE * total), int(LOCAL_SHARE * total)


def releasable(run: TrainingRun) -> bool:
    """A finished run whose snapshots the store keeps: they can leave memory and come back from disk."""
    recorder = run.recorder
    return (not run.in_progress and run.snapshots.nbytes > 0 and recorder is not None
            and getattr(recorder, "store", None) is not None and not getattr(recorder.workspace, "note", ""))


def make_room(needed: int, workspace: list[TrainingRun], everyone: Iterable[TrainingRun], hosted: bool) -> str | None:
    """Fit a new run of `needed` bytes under the caps, releasing saved snapshots of `workspace`'s finished runs
    (oldest first) where needed; None when it fits, else why it cannot start, in a sentence."""
    per_workspace, per_server = caps(hosted)
    everyone = list(everyone)
    if needed > per_workspace:
        return (f"This network needs about {needed / 2**20:,.0f} MB of memory to train; "
                f"{'this demo allows' if hosted else 'this machine has room for'} {per_workspace / 2**20:,.0f} MB "
                "per workspace. Choose fewer or smaller layers.")

    def over() -> bool:
        mine = sum(map(run_bytes, workspace))
        return mine + needed > per_workspace or sum(map(run_bytes, everyone)) + needed > per_server

    for run in workspace:  # oldest first
        if not over():
            break
        if releasable(run):
            run.snapshots = Snapshots()
            run.snapshots_released = True
    if not over():
        return None
    if sum(map(run_bytes, workspace)) + needed > per_workspace:
        return (f"Your runs hold {sum(map(run_bytes, workspace)) / 2**20:,.0f} MB of memory and this one needs about "
                f"{needed / 2**20:,.0f} MB more (the cap is {per_workspace / 2**20:,.0f} MB per workspace); wait for a "
                "training to finish or stop one.")
    return "The server's memory is taken by other trainings; try again in a minute."


def snapshots_of(run: TrainingRun) -> Snapshots:
    """The run's per-epoch weights, read back from the store where `make_room` released them."""
    if getattr(run, "snapshots_released", False) and run.recorder is not None:
        back = run.recorder.snapshots(run)
        if back is not None:
            run.snapshots = back
        run.snapshots_released = False
    return run.snapshots
