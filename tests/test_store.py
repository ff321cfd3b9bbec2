"""The run store: SQLite (WAL) plus .npz weights; each epoch saved as it completes, restarts keep what was done."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from engine import EpochResult, TrainConfig, build_model
from ui.runs import TrainingRun, TrainingSlots
from ui.store import DB_NAME, INTERRUPTED, SCHEMA_VERSION, RunStore, StoreError, new_token
from ui.workspace import Registry, StoreRecorder, Workspace

ROOT = Path(__file__).resolve().parent.parent
CFG = TrainConfig(dataset="digits", hidden_sizes=(16,), activation="relu", output="softmax", loss="cross_entropy",
                  learning_rate=0.1, epochs=3, init="he", val_split=0.2)


def trained(store: RunStore, digits, token: str, cfg: TrainConfig = CFG) -> TrainingRun:
    run = TrainingRun(cfg)
    StoreRecorder(store, Workspace(token)).add(run)
    run.start(digits, TrainingSlots(1))
    run.join(60)
    return run


def db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / DB_NAME)


def test_a_new_store_is_versioned_and_in_wal_mode(tmp_path):
    RunStore(tmp_path).close()
    con = db(tmp_path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_newer_schema_refuses_to_open_with_a_clear_message(tmp_path):
    RunStore(tmp_path).close()
    con = db(tmp_path)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    with pytest.raises(StoreError, match=f"newer MLP Lab \\(store schema {SCHEMA_VERSION + 1}; this version reads up "
                                         f"to {SCHEMA_VERSION}\\)"):
        RunStore(tmp_path)


def test_every_epoch_is_saved_and_a_finished_run_comes_back_whole(tmp_path, digits):
    store = RunStore(tmp_path)
    run = trained(store, digits, "w" * 24)
    assert run.status == "finished"
    assert db(tmp_path).execute("SELECT count(*) FROM epochs").fetchone()[0] == 3
    store.close()
    back, = RunStore(tmp_path).load_workspace("w" * 24)
    assert (back.id, back.name, back.status, back.config) == (run.id, run.name, "finished", CFG)
    assert [r.to_dict() for r in back.history] == [r.to_dict() for r in run.history]
    np.testing.assert_array_equal(back.model.predict_proba(digits.x_test), run.model.predict_proba(digits.x_test))
    assert back.snapshots.epochs == run.snapshots.epochs


def test_runs_of_another_workspace_are_not_loaded(tmp_path, digits):
    store = RunStore(tmp_path)
    trained(store, digits, "a" * 24)
    assert store.load_workspace("b" * 24) == []


def test_a_restart_marks_training_runs_interrupted_keeping_their_saved_epochs(tmp_path):
    store = RunStore(tmp_path)
    model = build_model(CFG, 64, 10)
    run = TrainingRun(CFG.replace(epochs=10), status="running", model=model)
    StoreRecorder(store, Workspace("w" * 24)).add(run)
    names = list(model.named_arrays())
    saved = None
    for e in (1, 2):
        model.linears[0].params["W"][...] += e
        saved = model.get_weights()
        store.save_epoch(run, EpochResult(epoch=e, train_loss=1.0, train_acc=0.5, test_loss=1.0, test_acc=0.5),
                         names, saved)
    store.close()  # as a killed server leaves it: no end was written
    back, = RunStore(tmp_path).load_workspace("w" * 24)
    assert back.status == INTERRUPTED and "completed epochs were kept" in back.message
    assert [r.epoch for r in back.history] == [1, 2]
    for a, b in zip(back.model.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(a, b)  # the weights of the last completed epoch


def test_kill_9_mid_training_keeps_the_completed_epochs_and_an_intact_database(tmp_path):
    script = textwrap.dedent(f"""
        from engine import TrainConfig
        from engine.data import load_dataset
        from ui.runs import TrainingRun, TrainingSlots
        from ui.store import RunStore
        from ui.workspace import StoreRecorder, Workspace
        cfg = TrainConfig(dataset="digits", hidden_sizes=(256, 256), activation="relu", output="softmax",
                          loss="cross_entropy", learning_rate=0.05, epochs=500, batch_size=8, init="he")
        run = TrainingRun(cfg)
        StoreRecorder(RunStore({str(tmp_path)!r}), Workspace("k" * 24)).add(run)
        run.start(load_dataset("digits"), TrainingSlots(1))
        run.join()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (tmp_path / DB_NAME).exists():
                try:
                    if db(tmp_path).execute("SELECT count(*) FROM epochs").fetchone()[0] >= 2:
                        break
                except sqlite3.OperationalError:
                    pass  # the schema is being made
            time.sleep(0.1)
        else:
            pytest.fail("no epoch was saved in time")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert db(tmp_path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    back, = RunStore(tmp_path).load_workspace("k" * 24)
    assert back.status == INTERRUPTED and back.epochs_done >= 2
    assert [r.epoch for r in back.history] == list(range(1, back.epochs_done + 1))


def test_a_read_only_data_folder_is_a_clear_message_without_paths(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only folders")
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="cannot be opened") as err:
            RunStore(tmp_path / "data")
        assert str(tmp_path) not in str(err.value)
    finally:
        tmp_path.chmod(0o700)


def test_a_full_disk_leaves_a_note_and_training_goes_on(tmp_path, digits, monkeypatch):
    store = RunStore(tmp_path)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)  # where each weights file goes into place
    ws = Workspace("f" * 24)
    run = TrainingRun(CFG)
    StoreRecorder(store, ws).add(run)
    run.start(digits, TrainingSlots(1))
    run.join(60)
    assert run.status == "finished" and run.epochs_done == 3
    assert ws.note.startswith("Runs are not being saved: the disk is full. Training goes on")
    assert str(tmp_path) not in ws.note


def test_retention_evicts_the_oldest_finished_runs_and_sizes_are_counted(tmp_path, digits):
    store = RunStore(tmp_path, max_runs=2)
    ws = Workspace("r" * 24)
    runs = [trained(store, digits, ws.token, CFG.replace(epochs=1)) for _ in range(2)]
    n, size, total = store.sizes(ws.token)
    assert n == 2 and size > 0 and total == size
    third = TrainingRun(CFG.replace(epochs=1))
    StoreRecorder(store, ws).add(third)
    assert runs[0].name in ws.notice and "Download a run's zip" in ws.notice
    assert [r.id for r in store.load_workspace(ws.token)] == [runs[1].id]  # the new one has no epoch yet
    with pytest.raises(StoreError, match="no longer saved"):
        store.share(runs[0])


def test_a_share_token_opens_that_run_only(tmp_path, digits):
    store = RunStore(tmp_path)
    mine, other = trained(store, digits, "s" * 24), trained(store, digits, "s" * 24)
    token = store.share(mine)
    assert len(token) >= 22 and store.share(mine) == token  # 128+ bits, made once
    shared = store.shared_run(token)
    assert shared.id == mine.id != other.id and shared.history == mine.history
    assert store.shared_run(new_token()) is None


def test_a_workspace_with_no_tab_stops_its_runs_after_the_grace_period(tmp_path, digits):
    registry = Registry(RunStore(tmp_path), grace_seconds=0.5)
    ws = registry.open("g" * 24, "tab-1")
    run = TrainingRun(CFG.replace(epochs=1000, batch_size=4))
    registry.recorder(ws).add(run)
    ws.runs.append(run)
    run.start(digits, TrainingSlots(1))
    registry.leave(ws.token, "tab-1")
    assert registry.open(ws.token, "tab-2") is ws  # a reload within the grace period: the same runs, still training
    assert run.in_progress
    registry.leave(ws.token, "tab-2")
    run.join(30)
    assert run.status == "stopped" and run.epochs_done >= 0
    back = Registry(RunStore(tmp_path)).open(ws.token, "tab-3").runs
    assert [r.status for r in back] == (["stopped"] if run.epochs_done else [])


RESUMABLE = TrainConfig(dataset="digits", hidden_sizes=(256, 256), activation="relu", output="softmax",
                        loss="cross_entropy", optimizer="adam", learning_rate=1e-3, epochs=500, batch_size=8,
                        init="he", dropout=0.1, backend="textbook", seed=11)


def _reference(digits, cfg: TrainConfig, epochs: int):
    """The same run trained without a stop, its first `epochs` epochs: history and weights."""
    from engine import train

    model = build_model(cfg, digits.n_features, digits.n_classes)
    history = []
    with closing(train(cfg, digits, model=model)) as gen:
        for result in gen:
            history.append(result)
            if result.epoch == epochs:
                break
    return history, model.get_weights()


def _wait(condition, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.02)


def _assert_same_run(run: TrainingRun, history, weights) -> None:
    assert [r.epoch for r in run.history] == [r.epoch for r in history]
    np.testing.assert_allclose([r.test_loss for r in run.history], [r.test_loss for r in history], rtol=1e-5)
    for a, b in zip(run.model.get_weights(), weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_kill_9_then_resume_trains_on_as_if_the_server_never_stopped(tmp_path, digits):
    """A server killed mid-epoch: the interrupted run resumes from its last epoch's weights, Adam's moments, the
    batch order's and dropout's random streams, and trains the epochs the uninterrupted run trains."""
    script = textwrap.dedent(f"""
        from engine import TrainConfig
        from engine.data import load_dataset
        from ui.runs import TrainingRun, TrainingSlots
        from ui.store import RunStore
        from ui.workspace import StoreRecorder, Workspace
        run = TrainingRun(TrainConfig.from_dict({RESUMABLE.to_dict()!r}))
        StoreRecorder(RunStore({str(tmp_path)!r}), Workspace("r" * 24)).add(run)
        run.start(load_dataset("digits"), TrainingSlots(1))
        run.join()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        def two_epochs() -> bool:
            try:
                return db(tmp_path).execute("SELECT count(*) FROM epochs").fetchone()[0] >= 2
            except sqlite3.OperationalError:  # not made yet
                return False
        _wait(lambda: (tmp_path / DB_NAME).exists() and two_epochs())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    store = RunStore(tmp_path)
    back, = store.load_workspace("r" * 24)
    back.recorder = StoreRecorder(store, Workspace("r" * 24))
    assert back.status == INTERRUPTED
    done = back.epochs_done
    checkpoint = back.checkpoint()
    assert checkpoint is not None and checkpoint.epoch == done
    back.continue_training(digits, TrainingSlots(1), checkpoint)
    back.step()  # one more epoch, then pause
    _wait(lambda: back.status == "paused")
    back.stop()
    back.join(60)
    assert back.status == "stopped" and back.epochs_done == done + 1
    _assert_same_run(back, *_reference(digits, RESUMABLE, done + 1))
    assert store.load_checkpoint(back).epoch == done + 1  # a stopped run can go on again
    store.close()
    again, = RunStore(tmp_path).load_workspace("r" * 24)
    assert again.status == "stopped" and again.epochs_done == done + 1


def test_a_run_stopped_mid_epoch_without_a_store_resumes_from_memory(digits):
    """Stopped inside epoch k+1 (its batches so far dropped), resumed from epoch k's checkpoint kept in memory."""
    cfg = RESUMABLE.replace(epochs=4)
    run = TrainingRun(cfg)
    run.start(digits, TrainingSlots(1))
    _wait(lambda: run.epochs_done >= 1 and run.progress.batch >= 5)
    run.stop()
    run.join(60)
    checkpoint = run.checkpoint()
    assert run.status == "stopped" and run.partial_epoch_dropped and 1 <= run.epochs_done < 4
    assert checkpoint is not None and checkpoint.epoch == run.epochs_done
    assert run.continue_training(digits, TrainingSlots(1), checkpoint)
    assert not run.continue_training(digits, TrainingSlots(1), checkpoint)  # a second click (another tab): no-op
    run.join(60)
    assert run.status == "finished" and run.checkpoint() is None and run._checkpoint is None  # nothing to resume
    _assert_same_run(run, *_reference(digits, cfg, 4))


def test_a_resume_that_fails_leaves_the_run_resumable_with_a_sentence(digits, monkeypatch):
    cfg = RESUMABLE.replace(epochs=4, hidden_sizes=(32,), batch_size=32)
    run = TrainingRun(cfg)
    run.start(digits, TrainingSlots(1))
    run.step()
    _wait(lambda: run.status == "paused")
    run.stop()
    run.join(60)
    checkpoint = run.checkpoint()

    def broken(*args, **kwargs):
        raise RuntimeError("no such device")
    monkeypatch.setattr("ui.runs.train", broken)
    assert run.continue_training(digits, TrainingSlots(1), checkpoint)
    run.join(60)
    assert run.status == "stopped" and run.epochs_done == 1 and run.resumable()
    assert run.message.startswith("Resuming failed (RuntimeError: no such device)")
