"""The memory bound on a workspace's runs (ui/memory.py): saved snapshots leave memory oldest first to make room and
come back from disk when their weights are wanted; what cannot be made room for is refused with a sentence."""

import tracemalloc

import numpy as np
import pytest

from engine import TrainConfig
from ui.inside import kept_epochs
from ui.memory import estimate_bytes, make_room, run_bytes, snapshots_of
from ui.runs import TrainingRun, TrainingSlots, run_to_zip
from ui.store import RunStore
from ui.workspace import StoreRecorder, Workspace

CFG = TrainConfig(dataset="digits", hidden_sizes=(256,), activation="relu", output="softmax", loss="cross_entropy",
                  optimizer="adam", learning_rate=1e-3, epochs=4, init="he")


def finished(digits, recorder=None, cfg=CFG) -> TrainingRun:
    run = TrainingRun(cfg)
    if recorder is not None:
        recorder.add(run)
    run.start(digits, TrainingSlots(1))
    run.join(60)
    assert run.status == "finished"
    return run


@pytest.mark.parametrize("hidden, optimizer", [((1024, 1024), "adam"), ((2048,), "momentum")])
def test_the_estimate_covers_what_numpy_allocated_while_a_run_trained(digits, tmp_path, hidden, optimizer):
    """tracemalloc sees NumPy's own allocations: the peak of a whole training (saved to a store, checkpoints
    included) stays within the estimate, and the estimate is not wildly above it."""
    cfg = CFG.replace(hidden_sizes=hidden, optimizer=optimizer, epochs=3)
    recorder = StoreRecorder(RunStore(tmp_path), Workspace("t" * 24))
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        run = TrainingRun(cfg)
        recorder.add(run)
        run.start(digits, TrainingSlots(1))
        run.join(120)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert run.status == "finished"
    estimate = estimate_bytes(cfg, digits)
    assert peak <= estimate <= 4 * peak, (peak, estimate)


def test_saved_snapshots_leave_memory_oldest_first_and_come_back_from_disk(tmp_path, digits):
    recorder = StoreRecorder(RunStore(tmp_path), Workspace("m" * 24))
    runs = [finished(digits, recorder) for _ in range(3)]
    epochs = [r.snapshots.epochs for r in runs]
    weights = runs[0].snapshots.get(2)
    cap = sum(map(run_bytes, runs)) + 10  # room for the three as they are, not for anything more
    needed = runs[0].snapshots.nbytes // 2
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ui.memory.caps", lambda hosted: (cap, 10 * cap))
        assert make_room(needed, runs, runs, hosted=True) is None
    assert [r.snapshots_released for r in runs] == [True, False, False]
    assert sum(map(run_bytes, runs)) + needed <= cap
    assert kept_epochs(runs[0]) == epochs[0] and runs[0].snapshots_released  # listing them reads nothing back
    assert snapshots_of(runs[0]).epochs == epochs[0]  # their weights come back from disk
    for a, b in zip(runs[0].snapshots.get(2), weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_run_zip_holds_the_released_snapshots(tmp_path, digits):
    import io
    import zipfile

    recorder = StoreRecorder(RunStore(tmp_path), Workspace("z" * 24))
    run = finished(digits, recorder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ui.memory.caps", lambda hosted: (run_bytes(run) + 10, 2**40))
        assert make_room(run.snapshots.nbytes, [run], [run], hosted=True) is None
    assert run.snapshots_released
    with zipfile.ZipFile(io.BytesIO(run_to_zip(run))) as z:
        assert "snapshots.npz" in z.namelist()


def test_evicted_runs_are_not_released_their_snapshots_would_be_lost(tmp_path, digits):
    store = RunStore(tmp_path, max_runs=1)
    recorder = StoreRecorder(store, Workspace("e" * 24))
    old, new = finished(digits, recorder), finished(digits, recorder)  # the second evicts the first from the store
    assert not store.holds(old) and store.holds(new)
    cap = run_bytes(old) + run_bytes(new) + 10
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ui.memory.caps", lambda hosted: (cap, 10 * cap))
        make_room(new.snapshots.nbytes, [old, new], [old, new], hosted=True)
    assert not old.snapshots_released and new.snapshots_released


def test_runs_only_in_memory_are_not_released_and_a_new_run_is_refused_with_a_sentence(digits):
    runs = [finished(digits) for _ in range(2)]  # no store: their snapshots exist in memory only
    cap = sum(map(run_bytes, runs)) + 10
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ui.memory.caps", lambda hosted: (cap, 10 * cap))
        why = make_room(2**16, runs, runs, hosted=True)
    assert why and "cap is" in why and "not saved to disk" in why and "Wait for a training" not in why
    assert not any(r.snapshots_released for r in runs)


def test_a_network_over_the_whole_cap_is_refused_before_it_trains(digits, mnist):
    why = make_room(estimate_bytes(CFG.replace(dataset="mnist", hidden_sizes=(4096, 4096, 4096)), mnist), [], [],
                    hosted=True)
    assert why and "this demo allows 768 MB" in why and "fewer or smaller layers" in why
    assert make_room(estimate_bytes(CFG, digits), [], [], hosted=True) is None


def test_the_server_cap_counts_what_runs_keep_not_the_working_memory_of_trainings(digits):
    """Trainings' working memory is bounded by the training slots (a run queues for one); the server's cap bounds
    what every run keeps, so a visitor is refused only when kept runs fill the server."""
    runs = [finished(digits) for _ in range(2)]
    kept = sum(run_bytes(r, resident=True) for r in runs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ui.memory.caps", lambda hosted: (2**40, kept + 1000))
        assert make_room(10**9, [], runs, hosted=True, resident=500) is None  # a big training, little kept
        why = make_room(10, [], runs, hosted=True, resident=2000)
    assert why and "server's memory" in why
