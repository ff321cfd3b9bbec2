"""A training run: its config, history and model, trained by a background thread that never calls st.*.

The script thread starts, pauses, steps and stops a run; the worker thread only writes the run's
own fields. Zip export/import of finished runs lives here too, beside the record it serialises.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import threading
import time
import zipfile
import zlib
from collections import deque
from contextlib import closing
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine import MLP, EpochResult, TrainConfig, TrainingDiverged, build_model, train
from engine.config import IMAGE_SIDES, MAX_PARAMS, n_parameters
from engine.conv import ToImages
from engine.data import Dataset, scale_pixels
from engine.snapshots import (
    BUDGET_BYTES,
    EPOCHS_MEMBER,
    MAX_EPOCHS_JSON,
    NPZ_SLACK,
    SNAPSHOTS_MEMBER,
    Snapshots,
    read_inside,
    write_inside,
)
from engine.train import Checkpoint
from ui import state

QUEUED, RUNNING, PAUSED, FINISHED, STOPPED, DIVERGED, FAILED, UPLOADED = (
    "queued", "running", "paused", "finished", "stopped", "diverged", "failed", "uploaded")
INTERRUPTED = "interrupted"  # the server stopped while it trained; its saved epochs came back (ui/store.py)
IN_PROGRESS = (QUEUED, RUNNING, PAUSED)
_ids = itertools.count(1)


def new_run_id() -> str:
    """run-1, run-2, ... counted per browser session, so a visitor never learns how many runs others started;
    outside a Streamlit script run (tests, benchmarks), per process."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return f"run-{next(_ids)}"
    n = st.session_state.get(state.RUN_COUNTER, 0) + 1
    st.session_state[state.RUN_COUNTER] = n
    return f"run-{n}"


def training_data_bytes(cfg: TrainConfig, data: Dataset) -> int:
    """The dataset copies a training makes while it runs: the float32 splits (engine.train.make_splits) and the fast
    step's trimmed training rows (or a torch backend's device copy)."""
    n_train = min(len(data.x_train), cfg.train_limit or len(data.x_train))
    return 4 * data.n_features * (2 * n_train + len(data.x_test))


class TrainingSlots:
    """At most `n` trainings at once; the others wait and start in the order they asked (first come, first served).

    Used like a semaphore (acquire with a timeout, release). A waiting thread keeps its place in the queue between
    timed-out attempts, and a thread that has ended gives its place up.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._busy = 0
        self._queue: deque[threading.Thread] = deque()
        self._cond = threading.Condition()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        me = threading.current_thread()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if me not in self._queue:
                self._queue.append(me)
            while not self._my_turn(me):
                left = None if deadline is None else deadline - time.monotonic()
                if not blocking or left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            self._queue.popleft()
            self._busy += 1
            self._cond.notify_all()  # the next in line may have its turn too
            return True

    def _my_turn(self, me: threading.Thread) -> bool:
        while self._queue[0] is not me and not self._queue[0].is_alive():
            self._queue.popleft()
        return self._busy < self.n and self._queue[0] is me

    def release(self) -> None:
        with self._cond:
            if self._busy == 0:
                raise ValueError("TrainingSlots released more often than acquired")
            self._busy -= 1
            self._cond.notify_all()

    @property
    def in_use(self) -> int:
        """Trainings holding a slot or waiting for one."""
        with self._cond:
            return self._busy + sum(t.is_alive() for t in self._queue)

    def __repr__(self) -> str:
        return f"TrainingSlots({self._busy}/{self.n} busy, {len(self._queue)} waiting)"


class Recorder(Protocol):
    """What saves a run as it trains, called from its worker thread; it handles its own failures (a run whose
    saving fails trains on)."""

    def epoch(self, run: TrainingRun, result: EpochResult, names: list[str], weights: list[np.ndarray],
              checkpoint: Checkpoint | None) -> None: ...

    def end(self, run: TrainingRun) -> None: ...

    def checkpoint(self, run: TrainingRun) -> Checkpoint | None:
        """The saved checkpoint of the run's last epoch, or None."""

    def has_checkpoint(self, run: TrainingRun) -> bool:
        """Whether that checkpoint is saved (without reading it)."""

    def snapshots(self, run: TrainingRun) -> Snapshots | None:
        """The run's saved snapshots, or None."""


@dataclass
class Progress:
    """Where the worker is in the epoch it trains: batches done of n_batches (that epoch is epochs_done + 1)."""

    epoch: int = 0
    batch: int = 0
    n_batches: int = 0
    started: float = 0.0  # perf_counter when training began
    epoch_started: float = 0.0


@dataclass(eq=False)
class TrainingRun:
    """One run of the session; `history` grows as epochs finish."""

    config: TrainConfig
    name: str = ""
    id: str = field(default_factory=new_run_id)
    status: str = QUEUED
    history: list[EpochResult] = field(default_factory=list)
    message: str = ""
    model: MLP | None = None
    progress: Progress = field(default_factory=Progress)
    n_params: int = 0
    pause_after_epoch: bool = False
    wall_seconds: float = 0.0
    batch_losses: list[float] = field(default_factory=list)  # this epoch's batch losses, where the engine gives them
    partial_epoch_dropped: bool = False  # stopped or diverged mid-epoch: the model went back to the last epoch's end
    snapshots: Snapshots = field(default_factory=Snapshots)  # the weights after each epoch (0: before), for Inside
    recorder: Recorder | None = None  # saves the run as it trains (its workspace's store); None: kept in memory only
    snapshots_released: bool = False  # its snapshots left memory to make room (ui/memory.py); the store has them
    released_epochs: tuple[int, ...] = ()  # the epochs they hold
    data_bytes: int = 0  # the dataset copies its training holds (float splits, trimmed inputs), while it trains

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._thread: threading.Thread | None = None
        self._slots: TrainingSlots | threading.Semaphore | None = None
        self._holds_slot = False
        self._predictions: tuple[int, np.ndarray] | None = None  # (epochs_done, test-set probabilities)
        self._epoch_weights: list[np.ndarray] | None = None  # the weights when the last epoch ended
        self._checkpoint: Checkpoint | None = None  # the last epoch's, kept here when no store saves it
        self._control = threading.Lock()  # a resume is checked and launched at once (two tabs may click)
        self._resumed_from: tuple[str, str] | None = None  # (status, message) before a resume
        if not self.name:
            self.name = f"{self.id} · {self.config.dataset} {self.config.architecture}"

    # ------------------------------------------------------------ control (script thread)

    def start(self, data: Dataset, slots: TrainingSlots | threading.Semaphore) -> None:
        """Train in a daemon thread; waits for a free slot first (status 'queued'). A paused run gives its slot
        back and queues again when resumed."""
        self.model = build_model(self.config, data.n_features, data.n_classes)
        self.n_params = self.model.n_params
        self._launch(data, slots, None)

    def resumable(self) -> bool:
        """A stopped or interrupted run with epochs left, its last epoch's checkpoint kept (in memory, or in the store:
        only the file's presence is checked here), and no worker still finishing it."""
        if self.status not in (STOPPED, INTERRUPTED) or self.model is None or self.stopped_early is not None:
            return False
        if not 0 < self.epochs_done < self.config.epochs or (self._thread is not None and self._thread.is_alive()):
            return False
        if self._checkpoint is not None:
            return self._checkpoint.epoch == self.epochs_done
        return self.recorder is not None and self.recorder.has_checkpoint(self)

    def checkpoint(self) -> Checkpoint | None:
        """Where a resumable run goes on from (its last epoch's optimizer state and random streams), read from the
        store where it is kept there; None where the run is not resumable."""
        if not self.resumable():
            return None
        checkpoint = self._checkpoint or self.recorder.checkpoint(self)
        return checkpoint if checkpoint is not None and checkpoint.epoch == self.epochs_done else None

    def continue_training(self, data: Dataset, slots: TrainingSlots | threading.Semaphore,
                          checkpoint: Checkpoint) -> bool:
        """Train the epochs left, from `checkpoint` (see `checkpoint()`), as if the run had never stopped; False
        (nothing done) where the run is not resumable now (another tab resumed it first, say)."""
        with self._control:
            if not self.resumable() or checkpoint.epoch != self.epochs_done:
                return False
            self._resumed_from = (self.status, self.message)
            self.history = list(checkpoint.history)
            self.message, self.partial_epoch_dropped = "", False
            self._stop.clear()
            self._resume.set()
            self.pause_after_epoch = False
            self._checkpoint = checkpoint
            self._launch(data, slots, checkpoint)
            return True

    def snapshot_epochs(self) -> list[int]:
        """The epochs whose weights the snapshots hold, also where they were released from memory."""
        return list(self.released_epochs) if self.snapshots_released else self.snapshots.epochs

    def all_snapshots(self) -> Snapshots:
        """The snapshots, read back from the store where they were released from memory (ui/memory.py)."""
        if self.snapshots_released:
            back = self.recorder.snapshots(self) if self.recorder is not None else None
            if back is not None:
                self.snapshots = back
            self.snapshots_released, self.released_epochs = False, ()
        return self.snapshots

    def _launch(self, data: Dataset, slots: TrainingSlots | threading.Semaphore, resume: Checkpoint | None) -> None:
        self.data_bytes = training_data_bytes(self.config, data)
        self.status = QUEUED
        self._thread = threading.Thread(target=self._work, args=(data, slots, resume), daemon=True,
                                        name=f"mlp-lab-{self.id}")
        self._thread.start()

    def pause(self) -> None:
        if self.status == RUNNING:
            self._resume.clear()

    def resume(self) -> None:
        self.pause_after_epoch = False
        self._resume.set()

    def step(self) -> None:
        """Train exactly one more epoch, then pause at its end."""
        self.pause_after_epoch = True
        self._resume.set()

    def stop(self) -> None:
        self._stop.set()
        self._resume.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------ what pages read

    @property
    def in_progress(self) -> bool:
        return self.status in IN_PROGRESS

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    @property
    def last(self) -> EpochResult | None:
        return self.history[-1] if self.history else None

    @property
    def seconds_per_epoch(self) -> float | None:
        return float(np.median([r.seconds for r in self.history])) if self.history else None

    @property
    def short_id(self) -> str:
        """'#3' for run-3: what tells two runs with the same settings apart."""
        return "#" + self.id.rsplit("-", 1)[-1]

    def epochs_text(self) -> str:
        """The one epoch counter every view shows: epochs done of the total."""
        return f"{self.epochs_done}/{self.config.epochs}"

    @property
    def stopped_early(self) -> int | None:
        """The epoch whose weights early stopping kept (the model holds them), or None."""
        return self.last.kept_epoch if self.last else None

    def summary(self) -> str:
        """The sentence the pages show for a run; its accuracy is that of the weights every view uses."""
        n, total = self.epochs_done, self.config.epochs
        acc = f", test accuracy {self.last.test_acc:.2%}" if self.last else ""
        kept = self.stopped_early
        if self.status == FINISHED and kept is not None:
            watched = "validation" if self.config.val_split > 0 else "training"
            return (f"Stopped early after epoch {n} of {total}: the {watched} loss stopped improving, so the run "
                    f"keeps epoch {kept}'s weights, test accuracy {self.history[kept - 1].test_acc:.2%}")
        if self.status == FINISHED:
            return f"Finished: {n}/{total} epochs done{acc}"
        if self.status == STOPPED:
            kept = (f"; the unfinished epoch {n + 1} was dropped, every view uses the weights after epoch {n}"
                    if self.partial_epoch_dropped and n else "")
            return f"Stopped: {n}/{total} epochs done{acc}{kept}"
        if self.status == DIVERGED:
            return f"Diverged in epoch {n + 1} ({n}/{total} epochs done). {self.message}"
        if self.status == FAILED:
            return f"Failed in epoch {n + 1} ({n}/{total} epochs done): {self.message}"
        if self.status == INTERRUPTED:
            resume = "" if self.resumable() else " (it kept no checkpoint to resume from: train it again to go on)"
            return (f"Interrupted: {n}/{total} epochs done{acc} when the server stopped; every view uses the weights "
                    f"after epoch {n}{resume}")
        if self.status == UPLOADED:
            return f"Uploaded run: {n}/{total} epochs done{acc}"
        return f"{self.status.capitalize()}: {n}/{total} epochs done"

    def eta_seconds(self) -> float | None:
        """Seconds left, from the mean epoch time so far (or the current epoch's pace)."""
        p = self.progress
        if self.status != RUNNING or not p.n_batches:
            return None
        now = time.perf_counter()
        per_epoch = (self.seconds_per_epoch if self.history else
                     (now - p.epoch_started) / max(p.batch, 1) * p.n_batches)
        left_this = per_epoch * (1 - p.batch / p.n_batches)
        return left_this + per_epoch * (self.config.epochs - self.epochs_done - 1)

    def test_predictions(self, data: Dataset) -> np.ndarray:
        """Class probabilities on the test set from the weights of the last completed epoch (one run, one model:
        they give the last epoch's test accuracy); computed once per epoch.

        While the worker trains, the copy kept at the epoch's end is used: the worker's model (and its layer
        buffers) must not be touched from another thread.
        """
        if self._predictions is None or self._predictions[0] != self.epochs_done:
            model = self.epoch_model() if self.in_progress else self.model
            # scaled as training scaled them (a table's rows are floats the model would otherwise take as they are)
            inputs = scale_pixels(data.x_test, self.config.dataset, self.config.input_scaling)
            self._predictions = (self.epochs_done, model.predict_proba(inputs))
        return self._predictions[1]

    def epoch_model(self) -> MLP:
        """A separate model holding the weights of the last completed epoch."""
        copy = build_model(self.config, *self.io_sizes)
        copy.set_weights(self._epoch_weights)
        return copy

    @property
    def io_sizes(self) -> tuple[int, int]:
        """(input features, classes) of the run's network, read off its model (a CNN's first layer is no Linear)."""
        first = self.model.layers[0]
        n_in = first.side ** 2 if isinstance(first, ToImages) else self.model.linears[0].params["W"].shape[0]
        return n_in, self.model.linears[-1].params["W"].shape[1]

    # ------------------------------------------------------------ the worker thread

    def _take_slot(self) -> bool:
        """Wait in the queue for a training slot; False when the run is stopped first."""
        self.status = QUEUED
        while not self._slots.acquire(timeout=0.2):
            if self._stop.is_set():
                return False
        self._holds_slot = True
        return True

    def _release_slot(self) -> None:
        if self._holds_slot:
            self._holds_slot = False
            self._slots.release()

    def _wait_if_paused(self) -> None:
        if not self._resume.is_set():
            self.status = PAUSED
            self._release_slot()  # a paused run blocks nobody: the queue moves on
            self._resume.wait()
            if not self._stop.is_set() and self._take_slot():
                self.status = RUNNING
                self.progress.epoch_started = time.perf_counter()

    def _should_stop(self) -> bool:
        self._wait_if_paused()
        return self._stop.is_set()

    def _on_batch(self, done: int, total: int, loss: float | None = None) -> None:
        """The engine's per-batch callback; `loss` (the batch's mean loss) where the backend gives it."""
        self.progress.batch, self.progress.n_batches = done, total
        if loss is not None:
            self.batch_losses.append(float(loss))

    def _end_epoch(self) -> None:
        """Keep the weights as the epoch left them (the worker's own thread, between epochs)."""
        self._epoch_weights = self.model.get_weights()
        self.batch_losses = []

    def _on_checkpoint(self, checkpoint: Checkpoint) -> None:
        self._checkpoint = checkpoint

    def _record(self, what: str, *args) -> None:
        if self.recorder is not None:
            getattr(self.recorder, what)(self, *args)

    def _work(self, data: Dataset, slots: TrainingSlots | threading.Semaphore, resume: Checkpoint | None) -> None:
        self._slots = slots
        if not self._take_slot():
            self.status = STOPPED  # (a resumed run keeps its checkpoint: it can be resumed again)
            if resume is not None:
                self._record("end")
            return
        t0 = time.perf_counter()
        self._epoch_weights = self.model.get_weights()  # "epoch 0" (or the one resumed from): what a stop keeps
        self.snapshots.add(self.epochs_done, self._epoch_weights)
        self.status = RUNNING
        self.progress = Progress(epoch=self.epochs_done + 1, started=t0, epoch_started=t0)
        status = FAILED
        try:
            epochs = train(self.config, data, model=self.model, should_stop=self._should_stop,
                           on_batch=self._on_batch, resume=resume, on_checkpoint=self._on_checkpoint)
            with closing(epochs):  # the engine's clean-up runs now, not when the generator is collected
                for result in epochs:
                    self._end_epoch()
                    self.snapshots.add(result.epoch, self._epoch_weights)
                    self.history.append(result)
                    self._record("epoch", result, list(self.model.named_arrays()), self._epoch_weights,
                                 self._checkpoint)
                    if self.recorder is not None:
                        self._checkpoint = None  # the store keeps it; memory holds one model per run, not three
                    if result.epoch == self.config.epochs:
                        break
                    self.progress.epoch, self.progress.batch = result.epoch + 1, 0
                    self.progress.epoch_started = time.perf_counter()
                    if self.pause_after_epoch:
                        self.pause_after_epoch = False
                        self._resume.clear()
                    self._wait_if_paused()
                    if self._stop.is_set():
                        break
            ended = self.epochs_done == self.config.epochs or self.stopped_early is not None
            status = FINISHED if ended else STOPPED
        except TrainingDiverged as err:
            self.history = list(err.history)
            self.message = str(err)
            status = DIVERGED
        except Exception as err:  # the page shows it; the session and its other runs carry on
            self.message = f"{type(err).__name__}: {err}"
            if resume is not None and self.epochs_done == resume.epoch:  # the resume failed: the run is as it was,
                status = self._resumed_from[0]  # its checkpoint kept
                self.message = f"Resuming failed ({self.message}); the run is as it was after epoch {resume.epoch}."
        finally:
            self._keep_last_epoch()
            self.wall_seconds = time.perf_counter() - t0
            self.status = status
            self._release_slot()
            if status not in (STOPPED, INTERRUPTED):
                self._checkpoint = None  # nothing to resume
            self._record("end")

    def _keep_last_epoch(self) -> None:
        """One run, one model: a run that ended inside an epoch goes back to the weights of its last whole epoch,
        the ones its history's last line measured; Results, the zip and every view then agree."""
        if self.progress.batch and self.epochs_done < self.config.epochs and self._epoch_weights is not None:
            self.model.set_weights(self._epoch_weights)
            self.partial_epoch_dropped = True
        self.batch_losses = []


# ---------------------------------------------------------------- zip export / import

def run_to_zip(run: TrainingRun) -> bytes:
    """config.json, history.csv and weights.npz of a run, zipped."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps({"name": run.name, "status": run.status,
                                              "config": run.config.to_dict()}, indent=2))
        z.writestr("history.csv", history_csv(run.history))
        weights = io.BytesIO()
        run.model.save(weights)
        z.writestr("weights.npz", weights.getvalue())
        write_inside(z, run.history, run.all_snapshots())
    return buf.getvalue()


HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                   "seconds", "train_seconds", "eval_seconds")


def history_csv(history: list[EpochResult]) -> str:
    lines = [",".join(HISTORY_COLUMNS)]
    for r in history:
        lines.append(",".join("" if getattr(r, c) is None else repr(getattr(r, c)) for c in HISTORY_COLUMNS))
    return "\n".join(lines) + "\n"


def parse_history_csv(text: str) -> list[EpochResult]:
    rows = [line.split(",") for line in text.strip().splitlines()]
    if not rows or tuple(rows[0]) != HISTORY_COLUMNS:
        raise ValueError("history.csv does not have the expected columns")
    out = []
    for row in rows[1:]:
        if len(row) != len(HISTORY_COLUMNS):
            raise ValueError("history.csv has a row with the wrong number of fields")
        values = {c: (None if v == "" else float(v)) for c, v in zip(HISTORY_COLUMNS, row)}
        values["epoch"] = int(values["epoch"])
        out.append(EpochResult(**values))
    return out


# What an uploaded run zip may hold. Every size is checked against the zip's declarations before a byte is
# decompressed (zipfile never returns more than a member declares), and every array's header before it is allocated.
MAX_ZIP_BYTES = 256 * 2**20  # the upload itself (Streamlit's server.maxUploadSize is 200 MB)
MAX_ZIP_MEMBERS = 16  # a run zip has five
MAX_UNCOMPRESSED = MAX_PARAMS * 4 + BUDGET_BYTES + MAX_EPOCHS_JSON + 4 * 2**20  # all members together
MEMBER_CAPS = {"config.json": 64 * 2**10, "history.csv": 1 * 2**20, "weights.npz": MAX_PARAMS * 4 + NPZ_SLACK,
               SNAPSHOTS_MEMBER: BUDGET_BYTES + NPZ_SLACK, EPOCHS_MEMBER: MAX_EPOCHS_JSON}
MAX_NPZ_ARRAYS = 1024


def _zip_entry_count(raw: bytes) -> int:
    """The entry count the zip's end-of-central-directory record declares, read before zipfile parses the
    directory (a directory of millions of entries would take gigabytes as ZipInfo objects)."""
    end = raw.rfind(b"PK\x05\x06", max(0, len(raw) - 2**16 - 22))
    if end < 0 or len(raw) < end + 22:
        raise ValueError("this file is not a zip archive")
    return int.from_bytes(raw[end + 10:end + 12], "little")


def _check_size(z: zipfile.ZipFile, name: str) -> None:
    """A member declaring more than a run's file of that name can be is refused before it is decompressed."""
    size = z.getinfo(name).file_size
    if size > MEMBER_CAPS[name]:
        raise ValueError(f"{name} declares {size:,} bytes; a run's {name} is at most {MEMBER_CAPS[name]:,}")


def _read_member(z: zipfile.ZipFile, name: str) -> bytes:
    _check_size(z, name)
    return z.read(name)


def check_npz(raw: bytes, member: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's (shape, dtype) in an .npz, from the headers alone; an array whose header declares more bytes
    than its file holds, or Python objects (which only unpickling could read), is refused before anything is
    allocated for it."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as npz:
            infos = npz.infolist()
            if len(infos) > MAX_NPZ_ARRAYS:
                raise ValueError(f"{member} holds {len(infos):,} arrays")
            headers = {}
            for info in infos:
                name = info.filename.removesuffix(".npy")
                with npz.open(info) as fp:
                    version = np.lib.format.read_magic(fp)
                    if version not in ((1, 0), (2, 0)):
                        raise ValueError(f"{member}: {name} is in .npy format {version}, which MLP Lab does not write")
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(fp)
                    header_bytes = fp.tell()
                if dtype.hasobject:
                    raise ValueError(f"{member}: {name} holds Python objects, which could only be read by unpickling "
                                     "them; MLP Lab saves numbers only and refuses it")
                declared = math.prod(shape) * dtype.itemsize
                if header_bytes + declared > info.file_size:
                    raise ValueError(f"{member}: {name} declares shape {shape} ({declared:,} bytes) but its file "
                                     f"holds {info.file_size - header_bytes:,}")
                headers[name] = (shape, dtype)
    except zipfile.BadZipFile as err:
        raise ValueError(f"{member} is not an .npz archive ({err})") from err
    except (OSError, EOFError, zlib.error, NotImplementedError, RuntimeError) as err:  # numpy's own are ValueErrors
        raise ValueError(f"{member} is unreadable ({err})") from err
    return headers


def model_from_npz(raw: bytes, cfg: TrainConfig) -> MLP:
    """The network config.json describes, with the weights of weights.npz, every array's shape checked first."""
    headers = check_npz(raw, "weights.npz")
    if "config" not in headers:
        raise ValueError("weights.npz holds no configuration")
    dense = sorted((k for k in headers if k[0].isdigit() and k.endswith(".W")), key=lambda k: int(k.split(".")[0]))
    if not dense or any(len(headers[k][0]) != 2 for k in dense):
        raise ValueError("weights.npz holds no weight matrices")
    side = IMAGE_SIDES.get(cfg.dataset)
    first, last = headers[dense[0]][0], headers[dense[-1]][0]
    n_in, n_out = (side * side, 10) if side else (first[0], last[1])  # a table's sizes are the weights' own
    try:
        needed = n_parameters(cfg.hidden_sizes, n_in, n_out, side)
    except ValueError as err:
        raise ValueError(f"config.json's network does not fit its dataset: {err}") from err
    held = sum(math.prod(shape) for name, (shape, _) in headers.items() if name != "config")
    if held < needed:
        raise ValueError(f"weights.npz holds {held:,} numbers; the network in config.json has {needed:,} parameters")
    model = build_model(cfg, n_in, n_out)
    expected = model.named_arrays()
    arrays = set(headers) - {"config"}
    if arrays != set(expected):
        raise ValueError(f"weights.npz holds arrays {sorted(arrays)}; the network in config.json needs "
                         f"{sorted(expected)}")
    for name, target in expected.items():
        shape = headers[name][0]
        if shape != target.shape:
            hint = " (transposed?)" if shape == target.shape[::-1] else ""
            raise ValueError(f"weights.npz: {name} has shape {shape}{hint}; the network in config.json needs "
                             f"{target.shape}")
    with np.load(io.BytesIO(raw), allow_pickle=False) as f:
        if TrainConfig.from_dict(json.loads(str(f["config"]))) != cfg:
            raise ValueError("weights.npz and config.json describe different networks")
        for name, target in expected.items():
            target[...] = f[name]
    return model


def run_from_zip(raw: bytes) -> TrainingRun:
    """A run downloaded from MLP Lab, back as a (finished) run; anything else is a ValueError that says what is
    wrong. Sizes and counts are checked against what the zip declares before anything is read."""
    if len(raw) > MAX_ZIP_BYTES:
        raise ValueError(f"the file is {len(raw) / 2**20:.0f} MB; a run zip is at most {MAX_ZIP_BYTES // 2**20} MB")
    n_entries = _zip_entry_count(raw)
    if n_entries > MAX_ZIP_MEMBERS:
        raise ValueError(f"the zip holds {n_entries:,} files; a run zip holds at most {MAX_ZIP_MEMBERS}")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = z.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise ValueError(f"the zip holds {len(infos):,} files; a run zip holds at most {MAX_ZIP_MEMBERS}")
            total = sum(i.file_size for i in infos)
            if total > MAX_UNCOMPRESSED:
                raise ValueError(f"the zip's files declare {total / 2**20:,.0f} MB uncompressed; a run takes at "
                                 f"most {MAX_UNCOMPRESSED // 2**20} MB")
            names = {i.filename for i in infos}
            missing = {"config.json", "history.csv", "weights.npz"} - names
            if missing:
                raise ValueError(f"the zip lacks {', '.join(sorted(missing))}; is it a run downloaded from MLP Lab?")
            meta = json.loads(_read_member(z, "config.json"))
            if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
                raise ValueError("config.json holds no run configuration")
            cfg = TrainConfig.from_dict(meta["config"])
            text = _read_member(z, "history.csv").decode()
            n_rows = len(text.strip().splitlines()) - 1
            if n_rows > cfg.epochs:
                raise ValueError(f"history.csv has {n_rows:,} rows; the run in config.json trains {cfg.epochs} epochs")
            history = parse_history_csv(text)
            if [r.epoch for r in history] != list(range(1, len(history) + 1)):
                raise ValueError("history.csv's epochs are not 1, 2, 3, ... in order")
            model = model_from_npz(_read_member(z, "weights.npz"), cfg)
            if EPOCHS_MEMBER in names:
                _check_size(z, EPOCHS_MEMBER)
            if SNAPSHOTS_MEMBER in names:
                check_npz(_read_member(z, SNAPSHOTS_MEMBER), SNAPSHOTS_MEMBER)
            history, snapshots = read_inside(z, history, model.get_weights())
    except zipfile.BadZipFile as err:
        raise ValueError(f"this file is not a zip archive, or a damaged one ({err})") from err
    except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError, OverflowError, EOFError, OSError,
            zlib.error, NotImplementedError, RuntimeError) as err:  # the last two: compression or encryption unknown
        raise ValueError(f"the run's files are unreadable ({err})") from err
    name = meta.get("name")
    name = name[:200] if isinstance(name, str) else "uploaded run"
    return TrainingRun(cfg, name=f"{name} (uploaded)", status=UPLOADED,
                       history=history, model=model, n_params=model.n_params, snapshots=snapshots)
