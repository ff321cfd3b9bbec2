"""A training run: its config, history and model, trained by a background thread that never calls st.*.

The script thread starts, pauses, steps and stops a run; the worker thread only writes the run's
own fields. Zip export/import of finished runs lives here too, beside the record it serialises.
"""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
import zipfile
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from engine import MLP, EpochResult, TrainConfig, TrainingDiverged, build_model, train
from engine.data import Dataset
from engine.model import load_model

QUEUED, RUNNING, PAUSED, FINISHED, STOPPED, DIVERGED, FAILED, UPLOADED = (
    "queued", "running", "paused", "finished", "stopped", "diverged", "failed", "uploaded")
IN_PROGRESS = (QUEUED, RUNNING, PAUSED)
_ids = itertools.count(1)


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
    id: str = field(default_factory=lambda: f"run-{next(_ids)}")
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

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._thread: threading.Thread | None = None
        self._predictions: tuple[int, np.ndarray] | None = None  # (epochs_done, test-set probabilities)
        self._epoch_weights: list[np.ndarray] | None = None  # the weights when the last epoch ended
        if not self.name:
            self.name = f"{self.id} · {self.config.dataset} {self.config.architecture}"

    # ------------------------------------------------------------ control (script thread)

    def start(self, data: Dataset, slots: threading.Semaphore) -> None:
        """Train in a daemon thread; waits for a free slot first (status 'queued')."""
        self.model = build_model(self.config, data.n_features, data.n_classes)
        self.n_params = self.model.n_params
        self._thread = threading.Thread(target=self._work, args=(data, slots), daemon=True,
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

    def summary(self) -> str:
        """The sentence the pages show for a run; its accuracy is that of the weights every view uses."""
        n, total = self.epochs_done, self.config.epochs
        acc = f", test accuracy {self.last.test_acc:.2%}" if self.last else ""
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
            self._predictions = (self.epochs_done, model.predict_proba(data.x_test))
        return self._predictions[1]

    def epoch_model(self) -> MLP:
        """A separate model holding the weights of the last completed epoch."""
        weights = self._epoch_weights
        W0, W_last = weights[0], weights[-2]
        copy = build_model(self.config, W0.shape[0], W_last.shape[1])
        copy.set_weights(weights)
        return copy

    # ------------------------------------------------------------ the worker thread

    def _wait_if_paused(self) -> None:
        if not self._resume.is_set():
            self.status = PAUSED
            self._resume.wait()
            if not self._stop.is_set():
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

    def _work(self, data: Dataset, slots: threading.Semaphore) -> None:
        while not slots.acquire(timeout=0.2):
            if self._stop.is_set():
                self.status = STOPPED
                return
        t0 = time.perf_counter()
        self._epoch_weights = self.model.get_weights()  # "epoch 0": what a run stopped in its first epoch keeps
        self.status = RUNNING
        self.progress = Progress(epoch=1, started=t0, epoch_started=t0)
        status = FAILED
        try:
            epochs = train(self.config, data, model=self.model, should_stop=self._should_stop,
                           on_batch=self._on_batch)
            with closing(epochs):  # the engine's clean-up runs now, not when the generator is collected
                for result in epochs:
                    self._end_epoch()
                    self.history.append(result)
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
            status = FINISHED if self.epochs_done == self.config.epochs else STOPPED
        except TrainingDiverged as err:
            self.history = list(err.history)
            self.message = str(err)
            status = DIVERGED
        except Exception as err:  # the page shows it; the session and its other runs carry on
            self.message = f"{type(err).__name__}: {err}"
        finally:
            self._keep_last_epoch()
            self.wall_seconds = time.perf_counter() - t0
            self.status = status
            slots.release()

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


def run_from_zip(raw: bytes) -> TrainingRun:
    """A run downloaded from MLP Lab, back as a (finished) run; anything else is a ValueError."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = set(z.namelist())
            missing = {"config.json", "history.csv", "weights.npz"} - names
            if missing:
                raise ValueError(f"the zip lacks {', '.join(sorted(missing))}; is it a run downloaded from MLP Lab?")
            meta = json.loads(z.read("config.json"))
            if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
                raise ValueError("config.json holds no run configuration")
            cfg = TrainConfig.from_dict(meta["config"])
            history = parse_history_csv(z.read("history.csv").decode())
            model = load_model(io.BytesIO(z.read("weights.npz")))
    except zipfile.BadZipFile as err:
        raise ValueError("this file is not a zip archive") from err
    except (KeyError, TypeError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"the run's files are unreadable ({err})") from err
    if model.config != cfg:
        raise ValueError("weights.npz and config.json describe different networks")
    run = TrainingRun(cfg, name=f"{meta.get('name', 'uploaded run')} (uploaded)", status=UPLOADED,
                      history=history, model=model, n_params=model.n_params)
    return run
