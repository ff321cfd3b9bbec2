"""A bound on the memory a workspace's runs and the whole server's take (issue: a tab with three 47M-parameter runs
took the server from 0.2 to 3.4 GB).

What a run holds is its arrays: the model, the copy kept at each epoch's end, its per-epoch snapshots (for Inside,
up to engine.snapshots.BUDGET_BYTES), a checkpoint kept in memory, and while it trains the dataset copies, the
gradients and the optimizer's memory. Before a run starts or resumes, `make_room` checks that its estimate fits the
workspace's and the server's caps; where it does not, the snapshots of the workspace's finished runs that the store
has saved leave memory, oldest first (TrainingRun.all_snapshots reads them back from disk when a view needs their
weights); if that is not enough, the run is refused with a sentence.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from engine import Dataset, TrainConfig
from engine.config import IMAGE_SIDES, n_parameters
from engine.model import EVAL_CHUNK
from engine.snapshots import BUDGET_BYTES, Snapshots
from ui.runs import TrainingRun, training_data_bytes

HOSTED_WORKSPACE_BYTES = 768 * 2**20  # a hosted demo: per visitor's workspace
HOSTED_SERVER_BYTES = 1536 * 2**20  # and for every open workspace together (the load test's goal: 2 GB RSS)
LOCAL_SHARE = 0.75  # locally: the runs may take this share of the machine's memory
OPTIMIZER_ARRAYS = {"adam": 2, "momentum": 1}  # arrays of the parameters' size the optimizer keeps
# while a run trains, besides its model: the epoch copy, gradients, the fast twin's buffers, the optimizer's memory,
# and that memory once more as the epoch's checkpoint
TRAINING_COPIES = 3
EVAL_COPIES = 5  # arrays of (rows, widest layer) evaluation holds at once, at most (measured: 4 on a 2048-unit layer)
SAVE_COPIES = 2  # saving the run's end: its model and snapshots serialised, and the bytes taken out of the buffer


def run_bytes(run: TrainingRun, resident: bool = False) -> int:
    """The bytes of the arrays the run holds now; `resident`: without a training's working memory (dataset copies,
    gradients, optimizer), which only the runs holding a training slot have (MAX_CONCURRENT_TRAININGS at once)."""
    model = sum(a.nbytes for a in run.model.named_arrays().values()) if run.model is not None else 0
    checkpoint = run._checkpoint.nbytes if run._checkpoint is not None else 0
    held = model + run.snapshots.nbytes + checkpoint
    if run.in_progress and not resident:
        optimizer = OPTIMIZER_ARRAYS.get(run.config.optimizer, 0)
        held += model * (TRAINING_COPIES + 2 * optimizer) + run.data_bytes
    return held


def resident_estimate(cfg: TrainConfig, data: Dataset) -> int:
    """What a run of `cfg` keeps once trained (its model and snapshots)."""
    model = 4 * n_parameters(cfg.hidden_sizes, data.n_features, data.n_classes, IMAGE_SIDES.get(cfg.dataset))
    return model + min(BUDGET_BYTES, model * (cfg.epochs + 1))


def estimate_bytes(cfg: TrainConfig, data: Dataset) -> int:
    """What a run of `cfg` on `data` will hold while it trains, at most: run_bytes at its largest."""
    side = IMAGE_SIDES.get(cfg.dataset)
    model = 4 * n_parameters(cfg.hidden_sizes, data.n_features, data.n_classes, side)
    snapshots = min(BUDGET_BYTES, model * (cfg.epochs + 1))
    optimizer = OPTIMIZER_ARRAYS.get(cfg.optimizer, 0)
    widest = max([s.size for s in cfg.layer_specs if s.kind == "dense"] + [data.n_features]
                 + [s.size * side * side for s in cfg.layer_specs if s.kind == "conv"])  # a convolution's maps
    # evaluating a chunk of rows: the widest layer's outputs, activations, and their float64 and statistics copies
    evaluation = EVAL_COPIES * 4 * widest * min(EVAL_CHUNK, len(data.x_train))
    return (model * (1 + TRAINING_COPIES + 3 * optimizer + SAVE_COPIES) + snapshots * (1 + SAVE_COPIES)
            + training_data_bytes(cfg, data) + evaluation)


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
    saved = getattr(run.recorder, "saved", None)
    return not run.in_progress and run.snapshots.nbytes > 0 and saved is not None and saved(run)


def release(run: TrainingRun) -> None:
    run.released_epochs = tuple(run.snapshots.epochs)
    run.snapshots = Snapshots()
    run.snapshots_released = True


def make_room(needed: int, workspace: list[TrainingRun], everyone: Iterable[TrainingRun], hosted: bool,
              resident: int = 0) -> str | None:
    """Fit a new run under the caps: `needed` bytes (estimate_bytes) within the workspace's cap, and its `resident`
    bytes (resident_estimate) with every run's resident bytes within the server's (the trainings' working memory is
    bounded by the training slots: a run queues for one); releasing saved snapshots of `workspace`'s finished runs
    (oldest first) where needed. None when it fits, else why it cannot start, in a sentence."""
    per_workspace, per_server = caps(hosted)
    everyone = list(everyone)
    mb = 2**20
    if needed > per_workspace:
        return (f"This network needs about {needed / mb:,.0f} MB of memory to train; "
                f"{'this demo allows' if hosted else 'this machine has room for'} {per_workspace / mb:,.0f} MB "
                "per workspace. Choose fewer or smaller layers.")

    def over() -> bool:
        mine = sum(map(run_bytes, workspace))
        server = sum(run_bytes(r, resident=True) for r in everyone)
        return mine + needed > per_workspace or server + resident > per_server

    for run in workspace:  # oldest first
        if not over():
            break
        if releasable(run):
            release(run)
    if not over():
        return None
    held = sum(map(run_bytes, workspace))
    if held + needed > per_workspace:
        training = any(r.in_progress for r in workspace)
        return (f"Your runs hold {held / mb:,.0f} MB of memory and this one needs about {needed / mb:,.0f} MB more "
                f"(the cap is {per_workspace / mb:,.0f} MB per workspace). "
                + ("Wait for a training to finish, or stop one." if training else
                   "Their per-epoch weights cannot be set aside (they are not saved to disk): open a new workspace "
                   "(the address without ?ws=) or choose a smaller network."))
    return "The server's memory is taken by other trainings; try again in a minute."


def snapshots_of(run: TrainingRun) -> Snapshots:
    """The run's per-epoch weights, read back from the store where `make_room` released them."""
    return run.all_snapshots()
