"""The training contract every backend keeps: `train()`, its EpochResult, the data splits, the batch order,
divergence, what an epoch's evaluation records and the Checkpoint a training goes on from. The loops themselves are
in engine/backends/."""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from engine.config import TrainConfig
from engine.data import Dataset, scale_pixels
from engine.layers import ACTIVATIONS, Linear
from engine.losses import apply_output
from engine.model import MLP, seed_streams

ACTIVATION_TYPES = tuple(ACTIVATIONS.values())
ShouldStop = Callable[[], bool]
OnBatch = Callable[[int, int, float], None]  # (batches done this epoch, batches per epoch, that batch's loss)
OnCheckpoint = Callable[["Checkpoint"], None]  # told where training stands after each epoch
PROBE_ROWS = 512  # test rows whose activations layer_stats describes
SATURATION_MARGIN = 0.02  # an activation this close to a bound of its range counts as saturated
SATURATING = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}  # the bounds of the saturating activations' ranges


@dataclass(frozen=True)
class EpochResult:
    """What one epoch produced; losses and accuracies are full passes with dropout off.

    `layer_stats`: one dict per Linear layer (input to output), from the weights after the epoch:
      weight_mean, weight_std   of W
      grad_norm                 ||dL/dW|| of the epoch's last batch (what `layer.grads["W"]` holds then)
      update_ratio              ||W_after - W_before|| / ||W_before|| over the whole epoch (absent where the
                                weights before the epoch were not given)
      pre_mean, pre_std         of the layer's output z = x @ W + b on the probe batch (splits.x_test[:PROBE_ROWS])
      act_mean, act_std         of its activation on the probe (the output layer: the output activation)
      saturated_frac            sigmoid/tanh (and a sigmoid output) only: share of the probe's activations within
                                SATURATION_MARGIN of the bounds (0 and 1, or -1 and 1)
      dead_frac                 ReLU and leaky ReLU only: share of units with z <= 0 for every probe example
    `test_confusion`: the (n_classes, n_classes) test-set counts, row = true class, column = prediction.
    """

    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    val_loss: float | None = None
    val_acc: float | None = None
    seconds: float = 0.0  # wall time of the epoch: training plus evaluation
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    layer_stats: tuple[dict[str, float], ...] = field(default=())  # one dict per Linear layer
    test_confusion: tuple[tuple[int, ...], ...] = field(default=())  # [true][predicted] counts on the test set
    # early stopping ended the run after this epoch and gave the model back the weights of epoch `kept_epoch`
    # (whose line of the history measures them); None on every other epoch
    kept_epoch: int | None = None

    @property
    def class_accuracy(self) -> tuple[float, ...]:
        """Test accuracy of each true class, from test_confusion (empty where there is none)."""
        return tuple(row[i] / max(sum(row), 1) for i, row in enumerate(self.test_confusion))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layer_stats"] = [dict(s) for s in self.layer_stats]
        d["test_confusion"] = [list(row) for row in self.test_confusion]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EpochResult:
        """The inverse of to_dict (as JSON gives it back: lists for tuples)."""
        d = dict(d)
        d["layer_stats"] = tuple(dict(s) for s in d.get("layer_stats", ()))
        d["test_confusion"] = tuple(tuple(int(v) for v in row) for row in d.get("test_confusion", ()))
        return cls(**d)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; `history` holds the epochs completed before."""

    def __init__(self, message: str, history: list[EpochResult], epoch: int, batch: int) -> None:
        super().__init__(message)
        self.history, self.epoch, self.batch = list(history), epoch, batch


@dataclass(frozen=True)
class Splits:
    """Float32 inputs (scaled as the config says) and int64 labels for each split the run uses."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None


def make_splits(cfg: TrainConfig, data: Dataset) -> Splits:
    """Apply the config's training subset and validation split (seeded), and scale the pixels."""
    rng = np.random.default_rng(seed_streams(cfg.seed)["split"])
    n = len(data.y_train)
    order = np.arange(n)
    if cfg.train_limit is not None and cfg.train_limit < n or cfg.val_split > 0:
        order = rng.permutation(n)
    n_val = int(round(len(order) * cfg.val_split)) if cfg.val_split > 0 else 0
    val_idx, train_idx = order[:n_val], order[n_val:]
    if cfg.train_limit is not None:
        train_idx = train_idx[:cfg.train_limit]
    if len(train_idx) == 0:
        raise ValueError("No training examples are left after the validation split and subset.")

    def to_float(x):
        return scale_pixels(x, cfg.dataset, cfg.input_scaling)

    x_train = to_float(data.x_train if len(train_idx) == n else data.x_train[train_idx])
    y_train = np.ascontiguousarray(data.y_train[train_idx])
    splits = dict(x_train=x_train, y_train=y_train, x_test=to_float(data.x_test), y_test=np.asarray(data.y_test))
    if n_val:
        splits.update(x_val=to_float(data.x_train[val_idx]), y_val=data.y_train[val_idx])
    return Splits(**splits)


def batch_order(rng: np.random.Generator, n: int, batch_size: int) -> list[np.ndarray]:
    """One epoch's batches: shuffled indices, the last partial batch kept."""
    perm = rng.permutation(n)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


def linear_weights(model: MLP) -> list[np.ndarray]:
    """Copies of each Linear layer's W: what `layer_stats` measures an epoch's update against."""
    return [lin.params["W"].copy() for lin in model.linears]


def _activation_stats(kind: str, a: np.ndarray, z: np.ndarray) -> dict[str, float]:
    """act_mean/std of activations a (rows, units) and, by kind, saturated_frac or dead_frac."""
    stats = dict(act_mean=float(a.mean()), act_std=float(a.std()))
    if kind in SATURATING:
        low, high = SATURATING[kind]
        stats["saturated_frac"] = float(np.mean((a <= low + SATURATION_MARGIN) | (a >= high - SATURATION_MARGIN)))
    elif kind in ("relu", "leaky_relu"):
        stats["dead_frac"] = float(np.mean(np.all(z <= 0, axis=0)))
    return stats


def layer_stats(model: MLP, probe: np.ndarray, before: list[np.ndarray] | None = None) -> tuple[dict[str, float], ...]:
    """Per Linear layer: its weights, the last batch's gradient, the epoch's update and what it does on a probe.

    probe: (rows, n_in) inputs; before: each Linear layer's W before the epoch (linear_weights), for update_ratio.
    The keys are documented on EpochResult.
    """
    kind = model.config.activation if model.config else "sigmoid"
    stats: list[dict[str, float]] = []
    x = z = probe
    for layer in model.layers:
        x = layer.forward(x, train=False)
        if isinstance(layer, Linear):
            z, W = x, layer.params["W"]
            s = dict(weight_mean=float(W.mean()), weight_std=float(W.std()),
                     grad_norm=float(np.linalg.norm(layer.grads["W"])), pre_mean=float(z.mean()),
                     pre_std=float(z.std()))
            if before is not None:
                W0 = before[len(stats)]
                s["update_ratio"] = float(np.linalg.norm(W - W0) / max(np.linalg.norm(W0), 1e-30))
            stats.append(s)
        elif isinstance(layer, ACTIVATION_TYPES) and stats:  # describe the Linear layer it follows (not a conv)
            stats[-1].update(_activation_stats(kind, x, z))
    output = model.loss.output_name
    stats[-1].update(_activation_stats(output if output == "sigmoid" else "", apply_output(z, output), z))
    return tuple(stats)


def evaluate_with_confusion(model: MLP, x: np.ndarray, t: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and the (n_classes, n_classes) confusion counts of a split, in one pass (as MLP.evaluate)."""
    k = model.linears[-1].params["W"].shape[1]
    total, counts = 0.0, np.zeros(k * k, dtype=np.int64)
    chunk = model.eval_chunk
    for i in range(0, len(x), chunk):
        xb, tb = x[i:i + chunk].astype(model.dtype, copy=False), t[i:i + chunk]
        z = model.forward(xb, train=False)
        counts += np.bincount(tb * k + z.argmax(axis=1), minlength=k * k)
        total += model.loss.forward(z, tb) * len(tb)
    counts = counts.reshape(k, k)
    return total / len(x), float(np.trace(counts)) / len(x), counts


def confusion_tuple(counts: np.ndarray) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(int(v) for v in row) for row in counts)


def evaluate_epoch(model: MLP, splits: Splits, epoch: int, train_seconds: float, t_start: float,
                   train_rows: tuple[MLP, np.ndarray] | None = None,
                   before: list[np.ndarray] | None = None) -> EpochResult:
    """Full-pass train, validation and test metrics after an epoch, the test confusion matrix and layer statistics.

    `train_rows`: the network and rows that evaluate the training set, where a training computes
    with fewer input columns (engine.fast.trim); the learner's model evaluates the rest.
    `before`: the Linear layers' W before the epoch (linear_weights), for the update ratio.
    """
    net, x_train = train_rows or (model, splits.x_train)
    train_loss, train_acc = net.evaluate(x_train, splits.y_train)
    test_loss, test_acc, confusion = evaluate_with_confusion(model, splits.x_test, splits.y_test)
    val_loss = val_acc = None
    if splits.x_val is not None:
        val_loss, val_acc = model.evaluate(splits.x_val, splits.y_val)
    stats = layer_stats(model, splits.x_test[:PROBE_ROWS], before)
    eval_seconds = time.perf_counter() - t_start
    return EpochResult(epoch, train_loss, train_acc, test_loss, test_acc, val_loss, val_acc,
                       train_seconds + eval_seconds, train_seconds, eval_seconds, stats, confusion_tuple(confusion))


class EarlyStopping:
    """The config's early stopping: watch the validation loss (the training loss without a validation split) and
    stop once `patience` epochs in a row have not lowered it by more than `min_delta`; keep the best epoch's weights.

    Keras' EarlyStopping(patience, min_delta, restore_best_weights=True), with PyTorch Lightning's strict
    improvement: a loss counts as better when it is below best - min_delta.
    """

    def __init__(self, cfg: TrainConfig, model: MLP) -> None:
        self.patience, self.min_delta, self.model = cfg.patience, cfg.min_delta, model
        self.best_loss, self.best_epoch, self.wait = math.inf, 0, 0
        self.best_weights: list[np.ndarray] | None = None

    def check(self, result: EpochResult) -> EpochResult:
        """The epoch's result, marked with `kept_epoch` when training should stop after it; remembers the best."""
        if not self.patience:
            return result
        loss = result.train_loss if result.val_loss is None else result.val_loss
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.wait = loss, result.epoch, 0
            self.best_weights = self.model.get_weights()  # the learner's model holds this epoch's weights now
        else:
            self.wait += 1
        return replace(result, kept_epoch=self.best_epoch) if self.stopped else result

    @property
    def stopped(self) -> bool:
        """Patience has run out: training ends at this epoch."""
        return bool(self.patience) and self.wait >= self.patience

    def restore(self) -> None:
        """The best epoch's weights back into the model."""
        self.model.set_weights(self.best_weights)

    def memory(self) -> dict:
        """What it remembers, for a Checkpoint: the best loss, its epoch, the epochs waited since (JSON)."""
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "wait": self.wait}

    def recall(self, memory: dict, best_weights: list[np.ndarray] | None) -> None:
        """Take a Checkpoint's memory back."""
        self.best_loss, self.best_epoch, self.wait = float(memory["best_loss"]), memory["best_epoch"], memory["wait"]
        self.best_weights = best_weights


@dataclass
class Checkpoint:
    """Where a training stands after `epoch` whole epochs, besides the weights the model holds: what it needs to go
    on as if it had never stopped (PyTorch's `{"optimizer": optimizer.state_dict(), ...}` checkpoint, whole).

    optimizer     the optimizer's memory in engine/optim.py's names, per parameter (`MLP.parameter_names`):
                  "steps" (t), "0.W.m" and "0.W.v" for Adam, "0.W.v" for momentum; SGD has none
    random        the random streams' positions: "shuffle" (the batch order), "dropout" (numpy bit generator
                  states, or a torch generator's state as a list of bytes)
    early         early stopping's memory (EarlyStopping.memory), and `best_weights` its best epoch's weights

    `train(cfg, data, model, resume=checkpoint)`, the model holding the weights of that epoch, trains epochs
    epoch + 1 ... cfg.epochs: the same history and weights, to float rounding, as one training that never stopped.
    """

    history: list[EpochResult]
    optimizer: dict[str, np.ndarray]
    random: dict[str, object]
    early: dict = field(default_factory=dict)
    best_weights: list[np.ndarray] | None = None

    @property
    def epoch(self) -> int:
        return len(self.history)

    def write_npz(self, file) -> None:
        """One .npz into an open binary file: the arrays under "optimizer/..." and "best/<i>", everything else as
        JSON in "meta"."""
        meta = {"history": [r.to_dict() for r in self.history], "random": self.random, "early": self.early}
        arrays = {f"optimizer/{k}": v for k, v in self.optimizer.items()}
        arrays.update({f"best/{i}": a for i, a in enumerate(self.best_weights or [])})
        np.savez(file, meta=np.array(json.dumps(meta)), **arrays)

    def to_npz(self) -> bytes:
        buf = io.BytesIO()
        self.write_npz(buf)
        return buf.getvalue()

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.optimizer.values()) + sum(a.nbytes for a in self.best_weights or [])

    @classmethod
    def from_npz(cls, raw: bytes) -> Checkpoint:
        """Back from `to_npz` (numbers and text only: nothing is unpickled); a damaged file is a ValueError."""
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as f:
                meta = json.loads(str(f["meta"]))
                optimizer = {k.removeprefix("optimizer/"): f[k] for k in f.files if k.startswith("optimizer/")}
                best = sorted((k for k in f.files if k.startswith("best/")), key=lambda k: int(k.split("/")[1]))
                best_weights = [f[k] for k in best] or None
            history = [EpochResult.from_dict(r) for r in meta["history"]]
            return cls(history, optimizer, meta["random"], meta["early"], best_weights)
        except (OSError, ValueError, KeyError, TypeError, EOFError) as err:  # JSONDecodeError is a ValueError
            raise ValueError(f"the checkpoint is unreadable ({err})") from err


def diverged(cfg: TrainConfig, history: list[EpochResult], epoch: int, batch: int) -> TrainingDiverged:
    """The error a backend raises when the loss becomes NaN or infinite."""
    return TrainingDiverged(
        f"Training diverged: the loss became NaN or infinite in epoch {epoch}, batch {batch}. "
        f"The learning rate ({cfg.learning_rate:g}) is probably too high for this setup; "
        "try a value 3-10 times smaller.", history, epoch, batch)


def train(cfg: TrainConfig, data: Dataset, model: MLP | None = None, should_stop: ShouldStop | None = None,
          on_batch: OnBatch | None = None, resume: Checkpoint | None = None,
          on_checkpoint: OnCheckpoint | None = None) -> Iterator[EpochResult]:
    """Train `model` (or a fresh one from cfg) on data with cfg's backend, yielding an EpochResult after each epoch.

    Stop by not asking for the next epoch, or by `should_stop()` returning True between batches.
    `on_batch(done, total, loss)` is called after every batch (loss None where a backend does not read
    it back: on a GPU that would make the host wait). A non-finite loss raises TrainingDiverged
    carrying the history so far. `on_checkpoint(checkpoint)` is told where training stands after each
    epoch, before that epoch is yielded; `resume=checkpoint` (with `model` holding that epoch's weights) goes on
    from there.
    """
    from engine.backends import get_backend

    return get_backend(cfg.backend).train(cfg, data, model=model, should_stop=should_stop, on_batch=on_batch,
                                          resume=resume, on_checkpoint=on_checkpoint)
