"""Sweeps and forks: many runs that differ in chosen settings, on this machine's cores or on a Ray cluster.

A sweep expands a grid (TrainConfig fields, each with a list of values) into points, one training
run each, and streams every point's epochs back as `PointEvent`s while the points train:

- locally, in a pool of worker processes (not threads: the GIL), one per core, each with one BLAS
  thread, so that N points train side by side without fighting over cores;
- on a Ray cluster when an address is given: each point is a Ray generator task that yields its
  epochs as it trains, and each dataset is put in Ray's object store once for all of them. Ray is
  an optional extra, imported only here and only then.

Cancelling stops every point between two batches; the epochs already done are kept. A point that
fails or diverges ends with its error while the others go on.

`fork` is "change one thing": a parent's configuration with some settings changed, and whether the
child starts from the parent's exact initial weights and batch order (it does whenever the change
leaves what draws them alone).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import itertools
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from engine.config import FIELDS, ConfigError, TrainConfig, cli_flag, describe, parse_value
from engine.data import Dataset, load_dataset
from engine.model import build_model
from engine.train import EpochResult, TrainingDiverged, train

RAY_VERSION = "2.60.0"
RAY_INSTALL_HINT = (f'Sweeps on a Ray cluster need Ray, which is not installed. Install it with '
                    f'`pip install "ray[default]=={RAY_VERSION}"`, or leave the Ray address empty to use '
                    "this machine's cores.")

# A point's events: it started, it finished an epoch, or it ended (one of the end statuses, last).
STARTED, EPOCH = "started", "epoch"
FINISHED, STOPPED, DIVERGED, FAILED = "finished", "stopped", "diverged", "failed"
ENDINGS = (FINISHED, STOPPED, DIVERGED, FAILED)
POLL_SECONDS = 0.1  # how often a waiting sweep looks at its stop flag
WORKER_EXIT_SECONDS = 10.0  # for a worker process to stop its point and exit
CONNECT_SECONDS = 5.0  # to find a Ray head at the address given
HEAD_START_SECONDS, HEAD_STOP_SECONDS = 90.0, 60.0  # a local Ray head's (local_ray_head)


class SweepError(ValueError):
    """A sweep that cannot start: a bad grid, Ray missing or unreachable. The message says what to do."""


# ---------------------------------------------------------------- the grid

def grid_field(name: str) -> str:
    """The TrainConfig field a grid names: its own name (learning_rate) or its flag's (lr, hidden)."""
    flags = {cli_flag(f).removeprefix("--").replace("-", "_"): f for f in FIELDS}
    key = name.strip().replace("-", "_")
    if key in FIELDS:
        return key
    if key in flags:
        return flags[key]
    raise SweepError(f"--grid {name}: no such setting; choose one of: {', '.join(FIELDS)}.")


def parse_grid_values(name: str, text: str) -> tuple:
    """'0.1,0.3' -> (0.1, 0.3), each value checked as the field's own; ';' separates values that hold commas."""
    parts = text.split(";") if ";" in text else text.split(",")
    if not text.strip() or any(not p.strip() for p in parts):
        raise SweepError(f"{describe(name)['label']}: write the values separated by commas, e.g. {name}=0.1,0.3 "
                         "(or by semicolons when a value itself has commas: hidden_sizes=64,16;128).")
    values = []
    for part in parts:
        try:
            value = parse_value(name, part)
        except ConfigError as err:
            hint = " (separate values that hold commas with semicolons)" if name in ("hidden_sizes", "betas") else ""
            raise SweepError(f"{err}{hint}") from None
        if value not in values:
            values.append(value)
    return tuple(values)


def parse_grid(specs: Sequence[str]) -> dict[str, tuple]:
    """['lr=0.1,0.3', 'batch_size=32,128'] -> {'learning_rate': (0.1, 0.3), 'batch_size': (32, 128)}."""
    grid: dict[str, tuple] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        if not sep:
            raise SweepError(f"--grid {spec}: write FIELD=V1,V2,..., e.g. --grid lr=0.1,0.3")
        key = grid_field(name)
        if key in grid:
            raise SweepError(f"--grid {spec}: {key} is already in the grid; give all its values at once.")
        grid[key] = parse_grid_values(key, text)
    return grid


@dataclass(frozen=True)
class SweepPoint:
    """One combination of the grid's values: its configuration, or why the values make none."""

    index: int
    values: dict[str, Any]  # field -> this point's value, for the grid's fields only
    config: TrainConfig | None
    error: str = ""

    @property
    def label(self) -> str:
        """'lr=0.1 batch_size=32': the grid's values, as the CLI takes them."""
        return " ".join(f"{short_name(k)}={value_text(v)}" for k, v in self.values.items()) or "base"


def short_name(name: str) -> str:
    return cli_flag(name).removeprefix("--").replace("-", "_")


def value_text(value: Any) -> str:
    """A grid value as text: 0.1, 64-16 (hidden sizes, as an architecture), 0.9,0.999, or 'none'."""
    if isinstance(value, tuple):
        if all(isinstance(v, int) for v in value):
            return "-".join(map(str, value))
        return ",".join(f"{v:g}" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)


def expand(base: TrainConfig, grid: dict[str, Sequence]) -> list[SweepPoint]:
    """Every combination of the grid's values over `base`, the first field varying slowest."""
    points = []
    for index, combo in enumerate(itertools.product(*grid.values())):
        values = dict(zip(grid, combo))
        try:
            points.append(SweepPoint(index, values, base.replace(**values)))
        except ValueError as err:  # a combination the engine cannot train, e.g. a linear output with cross-entropy
            points.append(SweepPoint(index, values, None, str(err)))
    return points


# ---------------------------------------------------------------- one point, wherever it runs

@dataclass(frozen=True)
class PointEvent:
    """What a point did: started, finished an epoch (its result and the weights after it), or ended."""

    index: int
    kind: str  # STARTED, EPOCH, or one of ENDINGS
    result: EpochResult | None = None
    weights: list | None = field(default=None, repr=False)  # MLP.get_weights() after the epoch
    message: str = ""

    @property
    def ended(self) -> bool:
        return self.kind in ENDINGS


def point_events(point: SweepPoint, data: Dataset | None = None, should_stop=None) -> Iterator[PointEvent]:
    """Train one point on `data` (None: its dataset, loaded here), yielding its events; never raises for the
    point's own failure, a dataset that cannot be loaded included (it ends FAILED)."""
    yield PointEvent(point.index, STARTED)
    cfg, done = point.config, 0
    try:
        if data is None:
            data = load_dataset(cfg.dataset)
        model = build_model(cfg, data.n_features, data.n_classes)
        for result in train(cfg, data, model=model, should_stop=should_stop):
            done = result.epoch
            yield PointEvent(point.index, EPOCH, result, model.get_weights())
    except TrainingDiverged as err:
        yield PointEvent(point.index, DIVERGED, message=str(err))
    except Exception as err:  # noqa: BLE001 - the point ends with its error, the sweep goes on
        yield PointEvent(point.index, FAILED, message=f"{type(err).__name__}: {err}")
    else:
        yield PointEvent(point.index, FINISHED if done == cfg.epochs else STOPPED)


# ---------------------------------------------------------------- local: a pool of worker processes

STOP = "stop"  # the message that stops a worker's points


def write_message(stream, meta: dict, arrays: Sequence = ()) -> None:
    """One message on a pipe: its length, then an .npz holding `meta` as JSON and the arrays (no pickle)."""
    buf = io.BytesIO()
    np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
             **{f"a{i}": a for i, a in enumerate(arrays)})
    stream.write(struct.pack("<Q", buf.tell()) + buf.getvalue())
    stream.flush()


def read_message(stream) -> tuple[dict, list]:
    """The next message of write_message; EOFError when the pipe has ended. Arrays are read with pickle refused."""
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    raw = stream.read(struct.unpack("<Q", head)[0])
    with np.load(io.BytesIO(raw), allow_pickle=False) as f:
        meta = json.loads(bytes(f["meta"]).decode())
        return meta, [f[f"a{i}"] for i in range(len(f.files) - 1)]


def send_point(stream, point: SweepPoint | str) -> None:
    """A point (or STOP) to a worker."""
    if point == STOP:
        write_message(stream, {"stop": True})
        return
    write_message(stream, {"index": point.index, "values": point.values, "error": point.error,
                           "config": point.config.to_dict() if point.config else None})


def receive_point(stream) -> SweepPoint | str:
    meta, _ = read_message(stream)
    if meta.get("stop"):
        return STOP
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in meta["values"].items()}
    cfg = TrainConfig.from_dict(meta["config"]) if meta["config"] else None
    return SweepPoint(meta["index"], values, cfg, meta["error"])


def send_event(stream, event: PointEvent) -> None:
    """A point's event from a worker: the epoch's result as JSON, the weights as arrays."""
    write_message(stream, {"index": event.index, "kind": event.kind, "message": event.message,
                           "result": event.result.to_dict() if event.result else None}, event.weights or ())


def receive_event(stream) -> PointEvent:
    meta, arrays = read_message(stream)
    result = EpochResult.from_dict(meta["result"]) if meta["result"] else None
    return PointEvent(meta["index"], meta["kind"], result, arrays if result else None, meta["message"])
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WORKER = "from engine.sweep import worker_main; worker_main()"


def available_cores() -> int:
    """The cores this process may run on: a local sweep's default number of worker processes."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_main() -> None:
    """A worker process: trains the points its stdin sends, writes their events to stdout (write_message).

    Started fresh with `python -c` rather than by multiprocessing, whose 'spawn' re-runs the parent's main
    script in the child (in the app, the Streamlit page); 'fork' copies a threaded process badly.
    """
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, not into the events
    points: queue.Queue[SweepPoint | None] = queue.Queue()
    stop = threading.Event()

    def read() -> None:
        while True:
            try:
                message = receive_point(sys.stdin.buffer)
            except (EOFError, OSError, ValueError):  # the sweep is over, or gone
                stop.set()
                points.put(None)
                return
            if message == STOP:
                stop.set()
            else:
                points.put(message)

    threading.Thread(target=read, daemon=True).start()
    while (point := points.get()) is not None:
        events = ([PointEvent(point.index, STOPPED)] if stop.is_set() else
                  point_events(point, should_stop=stop.is_set))
        for event in events:
            send_event(out, event)


class Worker:
    """A worker process seen from the sweep: send it points, read its events on a thread into `events`."""

    def __init__(self, number: int, events: queue.Queue) -> None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the folder holding engine/
        env = {**os.environ, **ONE_THREAD,  # set before numpy loads BLAS: one thread per point
               "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
        self.number = number
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, start_new_session=True)  # the terminal's Ctrl-C is the sweep's
        threading.Thread(target=self._read, args=(events,), daemon=True).start()

    def _read(self, events: queue.Queue) -> None:
        while True:
            try:
                events.put((self, receive_event(self.proc.stdout)))
            except (EOFError, OSError, ValueError):
                events.put((self, None))  # it exited
                return

    def send(self, message) -> bool:
        try:
            send_point(self.proc.stdin, message)
        except OSError:  # it died; its reader says so
            return False
        return True

    def close(self) -> None:
        """Let it finish (its stdin ends: it stops its point), then make sure it is gone."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(WORKER_EXIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def local_events(points: Sequence[SweepPoint], workers: int, stop: threading.Event) -> Iterator[PointEvent]:
    """Train the points in `workers` processes, each given its next point when it ends one."""
    todo = list(reversed(points))
    events: queue.Queue = queue.Queue()
    pool = [Worker(i, events) for i in range(min(workers, len(points)))]
    running: dict[int, SweepPoint] = {}  # worker number -> its point

    def give(worker: Worker) -> None:
        if todo and not stop.is_set():
            running[worker.number] = todo.pop()
            worker.send(running[worker.number])

    try:
        for worker in pool:
            give(worker)
        cancelled = False
        while running:
            if stop.is_set() and not cancelled:
                cancelled = True
                for worker in pool:
                    worker.send(STOP)
            try:
                worker, event = events.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if event is None:  # a worker died; its point (if any) with it
                point = running.pop(worker.number, None)
                if point is not None:
                    code = worker.proc.wait()
                    yield PointEvent(point.index, FAILED, message=f"its worker process died (exit code {code})")
                continue
            yield event
            if event.ended:
                del running[worker.number]
                give(worker)
        for point in reversed(todo):  # cancelled before they started, or no worker was left
            yield PointEvent(point.index, STOPPED if stop.is_set() else FAILED,
                             message="" if stop.is_set() else "no worker process was left to train it")
    finally:
        for worker in pool:
            worker.close()


# ---------------------------------------------------------------- Ray: a generator task per point

def ray_available() -> bool:
    return importlib.util.find_spec("ray") is not None


def _ray_point(point: SweepPoint, data: Dataset) -> Iterator[PointEvent]:
    """A Ray generator task: `data` arrives from the object store; cancelling it interrupts the training."""
    from threadpoolctl import threadpool_limits

    os.environ.update(ONE_THREAD)  # for PyTorch, should it load now (Ray sets OMP_NUM_THREADS to the task's CPUs)
    threadpool_limits(1)  # the BLAS numpy has loaded already: one thread per point, as locally
    yield from point_events(point, data)


_ray_lock = threading.Lock()
_ray_address: str | None = None  # the cluster this process is connected to


def head_host_port(address: str) -> tuple[str, int]:
    """'127.0.0.1:6379' -> ('127.0.0.1', 6379); a SweepError for anything else."""
    host, _, port = address.strip().removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"Ray address {address!r}: write the head node's host:port, e.g. 127.0.0.1:6379.")
    return host, int(port)


def connect_ray(address: str) -> None:
    """Connect this process to the Ray cluster at `address` (once; a second, different address is refused)."""
    global _ray_address
    if not ray_available():
        raise SweepError(RAY_INSTALL_HINT)
    with _ray_lock:
        if _ray_address is not None:
            if address != _ray_address:
                raise SweepError(f"This process is connected to the Ray cluster at {_ray_address}; "
                                 "sweep there, or restart it to use another cluster.")
            return
        host, port = head_host_port(address)
        try:  # Ray itself retries an address that does not answer for minutes
            socket.create_connection((host, port), timeout=CONNECT_SECONDS).close()
        except OSError as err:
            raise SweepError(f"No Ray cluster answers at {address} ({err.strerror or err}). Check the address "
                             "(host:port of the head node, e.g. 127.0.0.1:6379) and that the cluster is up "
                             "(`ray start --head`).") from None
        import ray

        import engine

        try:  # the engine's code travels with the tasks; the cluster needs numpy, like this machine
            ray.init(address=address, runtime_env={"py_modules": [engine]}, log_to_driver=False,
                     logging_level="warning")
        except Exception as err:  # noqa: BLE001 - Ray raises ConnectionError, ValueError, RuntimeError...
            raise SweepError(f"Could not connect to the Ray cluster at {address}: {err}") from None
        _ray_address = address


def disconnect_ray() -> None:
    global _ray_address
    import ray

    with _ray_lock:
        ray.shutdown()
        _ray_address = None


@contextlib.contextmanager
def local_ray_head(num_cpus: int, port: int) -> Iterator[str]:
    """A Ray head on this machine's loopback only (`ray start --head --block`), for tests and benchmarks; yields
    its address. Leaving stops it: SIGTERM to `ray start --block` stops every process it started.

    Ray then binds 127.0.0.1, not the machine's address, the head and this process alike: this process must
    not have imported ray before (Ray reads the setting on import; engine.sweep imports it when connecting).
    """
    if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
        raise RuntimeError("local_ray_head: ray is imported already, bound to this machine's address; "
                           "start the head first")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    proc = subprocess.Popen([ray_cli, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port",
                             str(port), "--num-cpus", str(num_cpus), "--include-dashboard", "false",
                             "--disable-usage-stats"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + HEAD_START_SECONDS
    try:
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed: {proc.stderr.read()[-2000:] if proc.poll() is not None else ''}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        if ray_available():
            disconnect_ray()
        proc.terminate()
        try:
            proc.wait(HEAD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ray_events(points: Sequence[SweepPoint], address: str, stop: threading.Event) -> Iterator[PointEvent]:
    """Run each point as a Ray generator task on the cluster at `address`, one CPU each."""
    connect_ray(address)
    import ray
    from ray.exceptions import RayError, TaskCancelledError

    task = ray.remote(num_cpus=1, max_retries=0)(_ray_point)
    data = {name: ray.put(load_dataset(name)) for name in {p.config.dataset for p in points}}
    gens = {task.remote(p, data[p.config.dataset]): p.index for p in points}
    cancelled = False
    try:
        while gens:
            if stop.is_set() and not cancelled:
                cancelled = True
                for gen in gens:
                    ray.cancel(gen)
            ready, _ = ray.wait(list(gens), num_returns=1, timeout=POLL_SECONDS)
            for gen in ready:
                index = gens[gen]
                try:
                    event = ray.get(next(gen))
                except StopIteration:  # the task yielded its ending already
                    del gens[gen]
                    continue
                except TaskCancelledError:
                    event = PointEvent(index, STOPPED)
                except RayError as err:  # the worker or its node died
                    event = PointEvent(index, FAILED, message=f"on Ray: {type(err).__name__}: {err}")
                if event.ended:
                    del gens[gen]
                yield event
    finally:
        for gen in gens:
            ray.cancel(gen)


# ---------------------------------------------------------------- a sweep

def run_sweep(points: Sequence[SweepPoint], workers: int | None = None, ray_address: str | None = None,
              stop: threading.Event | None = None) -> Iterator[PointEvent]:
    """Every point's events as they come; a point that makes no configuration ends FAILED at once.

    `workers`: local processes (default: one per core, at most one per point); `ray_address`: run on
    that Ray cluster instead; `stop`: set it to cancel every point (each ends STOPPED, epochs kept).
    """
    stop = stop or threading.Event()
    for p in points:
        if p.config is None:
            yield PointEvent(p.index, FAILED, message=p.error)
    valid = [p for p in points if p.config is not None]
    if not valid:
        return
    if ray_address:
        yield from ray_events(valid, ray_address, stop)
    else:
        yield from local_events(valid, max(1, min(workers or available_cores(), len(valid))), stop)


def best_metric(histories: Sequence[Sequence[EpochResult]]) -> str:
    """'val_acc' where every history has validation accuracy (choose by it, not by the test set), else 'test_acc'."""
    done = [h for h in histories if h]
    return "val_acc" if done and all(h[-1].val_acc is not None for h in done) else "test_acc"


# ---------------------------------------------------------------- change one thing

INIT_FIELDS = ("seed", "dataset", "hidden_sizes", "init")  # what draws the initial weights (dataset: their shape)
ORDER_FIELDS = ("seed", "dataset", "train_limit", "val_split", "batch_size")  # what draws the batches


class Fork(NamedTuple):
    """A run's configuration with settings changed, and what it shares with its parent."""

    config: TrainConfig
    same_init: bool  # starts from the parent's exact initial weights
    same_order: bool  # sees the same examples in the same batches, epoch after epoch
    reason: str  # a sentence for the learner


def fork(parent: TrainConfig, **changes: Any) -> Fork:
    """The parent's configuration with `changes` (a ConfigError if they make no valid one), and what it shares.

    The engine draws the initial weights from seed_streams(seed)['init'] in the layers' shapes, and the
    batches from seed_streams(seed)['shuffle'] over the training split: a change that leaves those
    alone (learning rate, momentum, optimizer, loss, activation, L2, dropout, epochs...) keeps both.
    """
    child = parent.replace(**changes)
    changed = [f for f in FIELDS if getattr(child, f) != getattr(parent, f)]
    init_diff = [f for f in changed if f in INIT_FIELDS]
    order_diff = [f for f in changed if f in ORDER_FIELDS]

    def names(fields: list[str]) -> str:
        return " and ".join(describe(f)["label"].lower() for f in fields)

    if not changed:
        reason = "Nothing changed: it will repeat the parent run exactly."
    elif not init_diff and not order_diff:
        reason = "Starts from the parent's initial weights and sees the same batches in the same order."
    else:
        parts = []
        if init_diff:
            parts.append(f"new initial weights (the {names(init_diff)} changed)")
        if order_diff:
            parts.append(f"a new batch order (the {names(order_diff)} changed)")
        shared = ("; it keeps the parent's initial weights" if not init_diff else
                  "; it keeps the parent's batch order" if not order_diff else "")
        reason = "This change needs " + " and ".join(parts) + shared + "."
    return Fork(child, not init_diff, not order_diff, reason)


# ---------------------------------------------------------------- `python -m engine sweep`

def point_summary(point: SweepPoint, history: list[EpochResult], status: str, message: str) -> dict[str, Any]:
    """The JSON object the CLI prints for an ended point: its grid values, config and final metrics."""
    out: dict[str, Any] = {"point": point.index + 1, "status": status,
                           "grid": {k: list(v) if isinstance(v, tuple) else v for k, v in point.values.items()},
                           "config": point.config.to_dict() if point.config else None, "epochs": len(history)}
    last = history[-1] if history else None
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc"):
        out[key] = getattr(last, key) if last else None
    out["seconds"] = round(sum(r.seconds for r in history), 4)
    if message:
        out["error"] = message
    return out


def point_line(point: SweepPoint, n: int, summary: dict[str, Any]) -> str:
    acc = "".join(f", {label} {summary[key]:.2%}" for key, label in (("val_acc", "val acc"), ("test_acc", "test acc"))
                  if summary[key] is not None)
    error = f": {summary['error']}" if "error" in summary else ""
    return (f"[{point.index + 1}/{n}] {point.label}: {summary['status']}, {summary['epochs']} epochs"
            f"{acc} ({summary['seconds']:.1f} s){error}")


def cmd_sweep(args: argparse.Namespace) -> int:
    from engine.cli import config_from_args, fail

    try:
        base = config_from_args(args)
        grid = parse_grid(args.grid)
    except ValueError as err:
        return fail(str(err))
    if args.workers is not None and args.workers < 1:
        return fail("--workers must be 1 or more")
    points = expand(base, grid)
    address = args.ray_address or os.environ.get("RAY_ADDRESS") or None
    where = f"the Ray cluster at {address}" if address else \
        f"{max(1, min(args.workers or available_cores(), len(points)))} local worker processes"
    if not args.json:
        print(f"{len(points)} points on {where}", flush=True)
    histories: dict[int, list[EpochResult]] = {p.index: [] for p in points}
    summaries = []
    stop, started = threading.Event(), time.perf_counter()

    def interrupted(*_) -> None:  # Ctrl-C: stop every point; the epochs done are reported
        stop.set()
        print("Stopping every point...", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        for event in run_sweep(points, args.workers, address, stop):
            if event.kind == EPOCH:
                histories[event.index].append(event.result)
            elif event.ended:
                point = points[event.index]
                summary = point_summary(point, histories[event.index], event.kind, event.message)
                summaries.append(summary)
                print(json.dumps(summary) if args.json else point_line(point, len(points), summary), flush=True)
    except SweepError as err:
        return fail(str(err), 1)
    finally:
        signal.signal(signal.SIGINT, previous)
        if address and ray_available():
            disconnect_ray()
    if not args.json:
        metric = best_metric(list(histories.values()))
        finished = [s for s in summaries if s[metric] is not None and s["status"] == FINISHED]
        elapsed = time.perf_counter() - started
        print(f"{len(summaries)} points in {elapsed:.1f} s ({60 * len(summaries) / elapsed:.1f} points per minute)")
        if finished:
            best = max(finished, key=lambda s: s[metric])
            print(f"Best by {'validation' if metric == 'val_acc' else 'test'} accuracy: "
                  f"{points[best['point'] - 1].label} ({best[metric]:.2%})")
    if stop.is_set():
        return 130
    return 0 if all(s["status"] == FINISHED for s in summaries) else 1


def register(subparsers) -> None:
    """The `sweep` subcommand (engine.cli.SUBCOMMANDS)."""
    from engine.cli import add_config_arguments

    p = subparsers.add_parser("sweep", help="train every combination of a grid of settings and report each",
                              description="Train the configuration (a preset and flags, as for `train`) once per "
                                          "combination of the --grid values, on this machine's cores or a Ray "
                                          "cluster.")
    add_config_arguments(p)
    p.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2,...",
                   help="a setting and its values, e.g. lr=0.01,0.1 (repeat for more settings; values holding "
                        "commas are separated by semicolons: hidden_sizes=64,16;128)")
    p.add_argument("--workers", type=int, metavar="N",
                   help=f"local worker processes (default: one per core, here {available_cores()})")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="run each point as a task on the Ray cluster at ADDR (default: $RAY_ADDRESS; "
                        f'needs `pip install "ray[default]=={RAY_VERSION}"`)')
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per ended point: its grid values, config and final metrics")
    p.set_defaults(run=cmd_sweep)

