"""Sweeps and forks: the grid, local worker processes, a local Ray head, cancel, failures, the CLI, `fork`."""

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from engine import TrainConfig, build_model, train
from engine.config import ConfigError
from engine.sweep import (
    DIVERGED,
    EPOCH,
    FAILED,
    FINISHED,
    STARTED,
    STOPPED,
    SweepError,
    SweepPoint,
    best_metric,
    expand,
    fork,
    local_ray_head,
    parse_grid,
    ray_available,
    run_sweep,
)

ROOT = Path(__file__).resolve().parent.parent
BASE = TrainConfig(dataset="digits", hidden_sizes=(16,), activation="tanh", output="softmax", loss="cross_entropy",
                   optimizer="sgd", learning_rate=0.2, batch_size=64, epochs=2, init="xavier")
GRID_2X2 = {"learning_rate": (0.05, 0.3), "batch_size": (32, 128)}
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")


def collect(events):
    """Per point: its epochs' results, the weights after its last epoch, its ending and message; and every kind."""
    out, kinds = {}, []
    for e in events:
        p = out.setdefault(e.index, {"history": [], "weights": None, "status": None, "message": ""})
        kinds.append((e.index, e.kind))
        if e.kind == EPOCH:
            p["history"].append(e.result)
            p["weights"] = e.weights
        elif e.ended:
            p["status"], p["message"] = e.kind, e.message
    return out, kinds


def metrics(history):
    return [tuple(getattr(r, m) for m in METRICS) for r in history]


def one_by_one(points, data):
    """The points trained here, in turn, with one BLAS thread as in a sweep's worker."""
    out = {}
    with threadpool_limits(1):
        for p in points:
            model = build_model(p.config, data.n_features, data.n_classes)
            out[p.index] = (metrics(train(p.config, data, model=model)), model.get_weights())
    return out


def assert_same_as_one_by_one(points, got, data):
    expected = one_by_one(points, data)
    for p in points:
        assert got[p.index]["status"] == FINISHED
        assert metrics(got[p.index]["history"]) == expected[p.index][0], p.label
        for a, b in zip(got[p.index]["weights"], expected[p.index][1], strict=True):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- the grid

def test_grid_takes_field_or_flag_names_and_checks_every_value():
    grid = parse_grid(["lr=0.1,1e-2", "batch_size=32,128,32", "hidden=64,16;128", "optimizer=sgd,adam"])
    assert grid == {"learning_rate": (0.1, 0.01), "batch_size": (32, 128), "hidden_sizes": ((64, 16), (128,)),
                    "optimizer": ("sgd", "adam")}
    with pytest.raises(SweepError, match="no such setting"):
        parse_grid(["width=1,2"])
    with pytest.raises(SweepError, match="Learning rate must be a positive number"):
        parse_grid(["lr=0.1,-1"])
    with pytest.raises(SweepError, match="Unknown optimizer 'rmsprop'"):
        parse_grid(["optimizer=sgd,rmsprop"])
    with pytest.raises(SweepError, match="already in the grid"):
        parse_grid(["lr=0.1", "learning_rate=0.2"])
    with pytest.raises(SweepError, match="FIELD=V1,V2"):
        parse_grid(["lr"])
    with pytest.raises(SweepError, match="semicolons"):
        parse_grid(["betas=0.9,0.999"])


def test_expand_is_the_product_first_field_slowest_and_names_impossible_combinations():
    points = expand(BASE, {"learning_rate": (0.1, 0.2), "output": ("softmax", "linear")})
    assert [p.values for p in points] == [
        {"learning_rate": 0.1, "output": "softmax"}, {"learning_rate": 0.1, "output": "linear"},
        {"learning_rate": 0.2, "output": "softmax"}, {"learning_rate": 0.2, "output": "linear"}]
    assert points[2].config == BASE.replace(learning_rate=0.2)
    assert points[1].config is None and "Cross-entropy needs probabilities" in points[1].error
    assert points[0].label == "lr=0.1 output=softmax"


def test_the_sweep_module_imports_no_ui_library_and_not_ray():
    code = ("import sys, engine.sweep; "
            "bad = [m for m in ('streamlit', 'altair', 'pandas', 'ray') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# ---------------------------------------------------------------- local worker processes

def test_a_2x2_local_sweep_gives_the_histories_of_the_four_runs_made_one_by_one(digits):
    points = expand(BASE, GRID_2X2)
    got, kinds = collect(run_sweep(points, workers=2))
    assert_same_as_one_by_one(points, got, digits)
    for p in points:  # started, then each epoch in turn, then the ending
        mine = [k for i, k in kinds if i == p.index]
        assert mine == [STARTED, EPOCH, EPOCH, FINISHED]


def test_a_failed_diverged_or_impossible_point_ends_with_its_error_and_the_others_go_on():
    base = BASE.replace(epochs=1)
    points = [SweepPoint(0, {}, base),
              SweepPoint(1, {}, base.replace(activation="relu", output="linear", loss="mse", learning_rate=1e6)),
              *expand(base, {"output": ("linear",)}),  # no configuration: linear outputs and cross-entropy
              SweepPoint(3, {}, base.replace(val_split=0.9999)),  # the whole training set held out
              SweepPoint(4, {}, base.replace(seed=1))]
    points[2] = SweepPoint(2, points[2].values, None, points[2].error)
    got, _ = collect(run_sweep(points, workers=2))
    status = {i: (p["status"], p["message"]) for i, p in got.items()}
    assert status[0][0] == status[4][0] == FINISHED and len(got[4]["history"]) == 1
    assert status[1][0] == DIVERGED and "too high" in status[1][1]
    assert status[2][0] == FAILED and "Cross-entropy needs probabilities" in status[2][1]
    assert status[3][0] == FAILED and "ValueError: No training examples are left" in status[3][1]


def test_a_dataset_that_cannot_be_loaded_fails_its_point_with_the_reason(monkeypatch):
    import engine.sweep

    def missing(name):
        raise FileNotFoundError(f"{name} is not installed")

    monkeypatch.setattr(engine.sweep, "load_dataset", missing)
    events = list(engine.sweep.point_events(expand(BASE, {})[0]))
    assert [e.kind for e in events] == [STARTED, FAILED]
    assert events[1].message == "FileNotFoundError: digits is not installed"


def test_cancel_stops_every_point_and_keeps_the_epochs_done():
    points = expand(BASE.replace(epochs=1000), {"learning_rate": (0.05, 0.1, 0.2, 0.3)})
    stop, seen = threading.Event(), []
    started = time.monotonic()
    got = {}
    for e in run_sweep(points, workers=2, stop=stop):
        if e.kind == EPOCH:
            seen.append(e.index)
            got.setdefault(e.index, []).append(e.result.epoch)
            if len(seen) == 3:
                stop.set()
        elif e.ended:
            got.setdefault(e.index, []).append(e.kind)
    assert time.monotonic() - started < 60
    assert all(g[-1] == STOPPED for g in got.values()) and len(got) == 4
    for i in set(seen):  # the epochs a point finished before the cancel came back, in order
        assert got[i][:-1] == list(range(1, len(got[i])))
        assert 1 <= len(got[i]) - 1 < 1000


def test_best_metric_is_validation_accuracy_when_every_run_has_it():
    with_val = list(train(BASE.replace(epochs=1, val_split=0.2), load_digits()))
    without = list(train(BASE.replace(epochs=1), load_digits()))
    assert best_metric([with_val, with_val]) == "val_acc"
    assert best_metric([with_val, without]) == "test_acc"
    assert best_metric([[], with_val]) == "val_acc"  # a point with no epoch does not count


def load_digits():
    from engine import load_dataset

    return load_dataset("digits")


# ---------------------------------------------------------------- the CLI

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "engine", "sweep", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_cli_prints_one_json_object_per_point_with_its_values_and_final_metrics():
    out = run_cli("--dataset", "digits", "--hidden", "16", "--output", "softmax", "--loss", "cross_entropy",
                  "--epochs", "2", "--grid", "lr=0.1,0.5", "--grid", "hidden=8;16,8", "--workers", "2", "--json")
    assert out.returncode == 0, out.stderr
    rows = sorted((json.loads(line) for line in out.stdout.splitlines()), key=lambda r: r["point"])
    assert [r["grid"] for r in rows] == [{"learning_rate": lr, "hidden_sizes": h}
                                         for lr in (0.1, 0.5) for h in ([8], [16, 8])]
    assert all(r["status"] == FINISHED and r["epochs"] == 2 and 0 < r["test_acc"] <= 1 for r in rows)
    assert rows[3]["config"]["hidden_sizes"] == [16, 8] and rows[3]["config"]["learning_rate"] == 0.5
    assert rows[0]["val_acc"] is None


def test_cli_names_a_bad_grid_in_one_line_and_a_failed_point_exits_1():
    out = run_cli("--preset", "notebook-ce", "--grid", "lr=0.1,zero")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "Learning rate: 'zero' is not a number" in out.stderr
    out = run_cli("--dataset", "digits", "--epochs", "1", "--grid", "val_split=0,0.9999")
    assert out.returncode == 1, out.stderr
    assert "No training examples are left" in out.stdout and "Best by test accuracy: val_split=0" in out.stdout


def test_cli_without_ray_says_how_to_install_it():
    if ray_available():
        pytest.skip("Ray is installed here")
    out = run_cli("--dataset", "digits", "--epochs", "1", "--grid", "lr=0.1", "--ray-address", "127.0.0.1:1")
    assert out.returncode == 1 and 'pip install "ray[default]==' in out.stderr


# ---------------------------------------------------------------- Ray, on a local head

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    if not ray_available():  # not importorskip: Ray must be imported after local_ray_head says "loopback"
        pytest.skip('Ray is optional: pip install "ray[default]==2.60.0"')
    with local_ray_head(num_cpus=2, port=free_port()) as address:
        yield address


@pytest.mark.slow
def test_on_a_local_ray_head_a_2x2_sweep_gives_the_same_histories(ray_head, digits):
    points = expand(BASE, GRID_2X2)
    got, kinds = collect(run_sweep(points, ray_address=ray_head))
    assert_same_as_one_by_one(points, got, digits)
    assert [k for i, k in kinds if i == 0] == [STARTED, EPOCH, EPOCH, FINISHED]


@pytest.mark.slow
def test_on_ray_cancel_stops_every_point_and_a_failure_leaves_the_others(ray_head):
    points = expand(BASE.replace(epochs=1000), {"val_split": (0.9999, 0.0), "learning_rate": (0.1, 0.2, 0.3)})
    stop, epochs, ended = threading.Event(), {}, {}
    for e in run_sweep(points, ray_address=ray_head, stop=stop):
        if e.kind == EPOCH:
            epochs.setdefault(e.index, []).append(e.result.epoch)
        elif e.ended:
            ended[e.index] = (e.kind, e.message)
        if sum(map(len, epochs.values())) >= 3 and len(ended) >= 3:  # the failures are in, others train on
            stop.set()
    assert len(ended) == 6
    assert {ended[i][0] for i in (0, 1, 2)} == {FAILED}  # the whole training set held out
    assert "No training examples are left" in ended[0][1]
    assert {ended[i][0] for i in (3, 4, 5)} == {STOPPED}
    assert epochs
    for got in epochs.values():
        assert got == list(range(1, len(got) + 1)) and len(got) < 1000


@pytest.mark.slow
def test_a_second_ray_address_is_refused_while_connected(ray_head):
    from engine.sweep import connect_ray

    connect_ray(ray_head)
    with pytest.raises(SweepError, match="connected to the Ray cluster at"):
        connect_ray("127.0.0.1:1")


# ---------------------------------------------------------------- change one thing

@pytest.mark.parametrize("changes", [{"learning_rate": 0.01}, {"optimizer": "momentum", "momentum": 0.5},
                                     {"optimizer": "adam", "learning_rate": 1e-3}])
def test_a_fork_changing_optimizer_settings_starts_from_the_parents_initial_weights(changes, digits):
    child = fork(BASE, **changes)
    assert child.same_init and child.same_order and "initial weights" in child.reason
    parent_w = build_model(BASE, digits.n_features, digits.n_classes).get_weights()
    child_w = build_model(child.config, digits.n_features, digits.n_classes).get_weights()
    for a, b in zip(parent_w, child_w, strict=True):
        np.testing.assert_array_equal(a, b)
    # the same start and batches: momentum 0 is plain SGD, so changing only that reproduces the parent's run
    sgd = fork(BASE, optimizer="momentum", momentum=0.0)
    assert metrics(train(sgd.config, digits)) == metrics(train(BASE, digits))


def test_a_fork_changing_nothing_reproduces_the_parents_history(digits):
    child = fork(BASE)
    assert child.config == BASE and child.same_init and child.same_order and "exactly" in child.reason
    assert metrics(train(child.config, digits)) == metrics(train(BASE, digits))


def test_a_fork_says_what_it_cannot_share_and_why():
    wider = fork(BASE, hidden_sizes=(32,))
    assert not wider.same_init and wider.same_order
    assert "new initial weights (the hidden layer sizes changed)" in wider.reason
    batch = fork(BASE, batch_size=16)
    assert batch.same_init and not batch.same_order and "batch size" in batch.reason
    reseeded = fork(BASE, seed=3)
    assert not reseeded.same_init and not reseeded.same_order
    with pytest.raises(ConfigError, match="Learning rate"):
        fork(BASE, learning_rate=-1)


def test_the_worker_pipe_carries_points_and_epochs_without_pickle():
    """Points and events cross the pipe as JSON plus arrays; a message holding a pickled object is refused."""
    import io
    import struct

    import numpy as np

    from engine import PRESETS, EpochResult
    from engine.sweep import EPOCH, PointEvent, SweepPoint, receive_event, receive_point, send_event, send_point

    cfg = PRESETS["notebook-mse"].config.replace(hidden_sizes=("64bn.3", 16), betas=(0.8, 0.99))
    pipe = io.BytesIO()
    send_point(pipe, SweepPoint(3, {"hidden_sizes": cfg.hidden_sizes, "learning_rate": 0.5}, cfg))
    result = EpochResult(1, 0.5, 0.9, 0.6, 0.88, layer_stats=({"grad_norm": 1.5},), test_confusion=((1, 0), (0, 1)))
    weights = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)]
    send_event(pipe, PointEvent(3, EPOCH, result, weights))
    pipe.seek(0)
    point = receive_point(pipe)
    assert point.config == cfg and point.values == {"hidden_sizes": cfg.hidden_sizes, "learning_rate": 0.5}
    event = receive_event(pipe)
    assert event.result == result and all(np.array_equal(a, b) for a, b in zip(event.weights, weights))
    hostile = io.BytesIO()
    np.savez(hostile, meta=np.frombuffer(b'{"index": 0}', np.uint8), a0=np.array([object()], dtype=object))
    raw = hostile.getvalue()
    with pytest.raises(ValueError):
        receive_event(io.BytesIO(struct.pack("<Q", len(raw)) + raw))
