"""Fair training slots: first come, first served; a paused run gives its slot back; run ids count per session."""

import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from engine import TrainConfig
from ui.runs import TrainingRun, TrainingSlots

CFG = TrainConfig(dataset="digits", hidden_sizes=(16,), activation="relu", output="softmax", loss="cross_entropy",
                  learning_rate=0.1, epochs=200, batch_size=4, init="he")


def wait_until(done, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_waiters_get_the_slot_in_the_order_they_asked():
    slots = TrainingSlots(1)
    assert slots.acquire()
    started, go = [], threading.Event()

    def waiter(i: int) -> None:
        while not slots.acquire(timeout=0.05):  # as a run polls for its stop flag: its place is kept
            pass
        started.append(i)
        go.wait()
        slots.release()

    threads = []
    for i in range(8):
        threads.append(threading.Thread(target=waiter, args=(i,), daemon=True))
        threads[-1].start()
        wait_until(lambda n=i + 1: len(slots._queue) == n)  # each has asked before the next one does
    slots.release()
    go.set()
    for t in threads:
        t.join(10)
    assert started == list(range(8))


def test_a_waiter_that_ended_gives_its_place_up():
    slots = TrainingSlots(1)
    assert slots.acquire()
    quitter = threading.Thread(target=lambda: slots.acquire(timeout=0.05))
    quitter.start()
    quitter.join()
    got = []
    patient = threading.Thread(target=lambda: got.append(slots.acquire(timeout=5)))
    patient.start()
    time.sleep(0.1)
    slots.release()
    patient.join(10)
    assert got == [True]


def test_releasing_more_than_acquired_is_an_error():
    with pytest.raises(ValueError, match="released more often"):
        TrainingSlots(2).release()


def test_a_paused_run_gives_its_slot_to_the_queue_and_queues_again_when_resumed(digits):
    slots = TrainingSlots(1)
    first, second = TrainingRun(CFG), TrainingRun(CFG.replace(epochs=2))
    try:
        first.start(digits, slots)
        wait_until(lambda: first.status == "running")
        second.start(digits, slots)
        time.sleep(0.3)
        assert second.status == "queued"
        first.pause()
        wait_until(lambda: first.status == "paused")
        wait_until(lambda: second.status in ("running", "finished"))  # the paused run no longer holds the slot
        first.resume()
        time.sleep(0.05)
        assert first.status in ("queued", "running")
        second.join(60)
        assert second.status == "finished"
        wait_until(lambda: first.status == "running")  # it had its turn again once the slot was free
    finally:
        first.stop()
        second.stop()
        first.join(30)
        second.join(30)
    assert first.status == "stopped" and first.epochs_done < CFG.epochs
    assert slots.acquire(timeout=1)  # nothing leaked: the one slot is free


def test_a_run_stopped_while_paused_releases_nothing_twice(digits):
    slots = TrainingSlots(1)
    run = TrainingRun(CFG)
    run.start(digits, slots)
    wait_until(lambda: run.status == "running")
    run.pause()
    wait_until(lambda: run.status == "paused")
    run.stop()
    run.join(30)
    assert run.status == "stopped" and slots._busy == 0


def _two_runs_in_a_session() -> None:
    import streamlit as st

    from engine import TrainConfig
    from ui.runs import TrainingRun

    st.write(" ".join(TrainingRun(TrainConfig()).id for _ in range(2)))


def test_run_ids_count_per_session_not_per_server():
    TrainingRun(CFG)  # runs elsewhere in this process
    for _ in range(2):  # two visitors
        at = AppTest.from_function(_two_runs_in_a_session).run()
        assert not at.exception and at.markdown[0].value == "run-1 run-2"
