"""The memory bound on a workspace's runs (ui/memory.py): saved snapshots leave memory oldest first to make room and
come back from disk when viewed; what cannot be made room for is refused with a sentence."""

import numpy as np
import pytest

from engine import TrainConfig
from ui.memory import estimate_bytes, make_room, run_bytes, snapshots_of
from ui.runs import TrainingRun, TrainingSlots
from ui.store import RunStore
from ui.workspace import StoreRecorder, Workspace

CFG = TrainConfig(dataset="digits", hidden_sizes=(256,), activation="relu", output="softmax", loss="cross_entropy",
                  optimizer="adam", learning_rate=1e-3, epochs=4, init="he")


def finished(digits, recorder=None) -> TrainingRun:
    run = TrainingRun(CFG)
    if recorder is not None:
        recorder.add(run)
    run.start(digits, TrainingSlots(1))
    run.join(60)
    assert run.status == "finished"
    return run


def test_the_estimate_covers_what_a_training_run_holds(digits):
    run = TrainingRun(CFG)
    run.start(digits, TrainingSlots(1))
    peak = 0
    while run._thread.is_alive():
        peak = max(peak, run_bytes(run))
    run.join()
    model = sum(a.nbytes for a in run.model.named_arrays().values())
    assert model * 5 <= peak <= estimate_bytes(CFG, digits.n_features, digits.n_classes)


def test_saved_snapshots_leave_memory_oldest_first_and_come_back_from_disk(tmp_path, digits):
    recorder = StoreRecorder(RunStore(tmp_path), Workspace("m" * 24))
    runs = [finished(digits, recorder) for _ in range(3)]
    epochs = [r.snapshots.epochs for r in runs]
    weights = runs[0].snapshots.get(2)
    one = run_bytes(runs[0])
    cap = 3 * one + 10  # room for the three as they are, not for one more run of one snapshot's worth
    needed = runs[0].snapshots.nbytes // 2
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ui.memory.caps", lambda hosted: (cap, 10 * cap))
        assert make_room(needed, runs, runs, hosted=True) is None
    assert runs[0].snapshots_released and not runs[1].snapshots_released and not runs[2].snapshots_released
    assert sum(map(run_bytes, runs)) + needed <= cap
    assert snapshots_of(runs[0]).epochs == epochs[0]  # Inside reads them back
    for a, b in zip(runs[0].snapshots.get(2), weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_runs_only_in_memory_are_not_released_and_a_new_run_is_refused_with_a_sentence(digits):
    runs = [finished(digits) for _ in range(2)]  # no store: their snapshots exist in memory only
    cap = sum(map(run_bytes, runs)) + 10
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ui.memory.caps", lambda hosted: (cap, 10 * cap))
        why = make_room(2**16, runs, runs, hosted=True)
    assert why and "cap is" in why and "per workspace" in why
    assert not any(r.snapshots_released for r in runs)


def test_a_network_over_the_whole_cap_is_refused_before_it_trains():
    why = make_room(estimate_bytes(CFG.replace(hidden_sizes=(4096, 4096, 4096)), 784, 10), [], [], hosted=True)
    assert why and "this demo allows 512 MB" in why and "fewer or smaller layers" in why
    assert make_room(estimate_bytes(CFG, 64, 10), [], [], hosted=True) is None
