"""The training contract every backend keeps: `train()`, its EpochResult, the data splits, the batch order,
divergence, and what an epoch's evaluation records. The loops themselves are in engine/backends/."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from engine.config import TrainConfig
from engine.data import Dataset, scale_pixels
from engine.layers import ACTIVATIONS
from engine.model import MLP, seed_streams

ACTIVATION_TYPES = tuple(ACTIVATIONS.values())
ShouldStop = Callable[[], bool]
OnBatch = Callable[[int, int, float], None]  # (batches done this epoch, batches per epoch, that batch's loss)
PROBE_ROWS = 512  # test rows whose activations layer_stats describes


@dataclass(frozen=True)
class EpochResult:
    """What one epoch produced; losses and accuracies are full passes with dropout off."""

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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layer_stats"] = [dict(s) for s in self.layer_stats]
        return d


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


def layer_stats(model: MLP, probe: np.ndarray) -> tuple[dict[str, float], ...]:
    """Per Linear layer: weight spread, the last batch's gradient norm, and what its activation does on a probe."""
    stats = []
    x = probe
    for layer in model.layers:
        x = layer.forward(x, train=False)
        if isinstance(layer, ACTIVATION_TYPES):  # describe the Linear layer it follows
            stats[-1].update(act_mean=float(x.mean()), act_std=float(x.std()),
                             dead_frac=float(np.mean(np.all(x <= 0, axis=0))),
                             saturated_frac=float(np.mean(np.abs(x) > 0.99)) if model.config and
                             model.config.activation in ("sigmoid", "tanh") else 0.0)
        if "W" in layer.params:
            W = layer.params["W"]
            stats.append(dict(weight_mean=float(W.mean()), weight_std=float(W.std()),
                              grad_norm=float(np.linalg.norm(layer.grads["W"]))))
    return tuple(stats)


def evaluate_epoch(model: MLP, splits: Splits, epoch: int, train_seconds: float, t_start: float,
                   train_rows: tuple[MLP, np.ndarray] | None = None) -> EpochResult:
    """Full-pass train, validation and test metrics after an epoch, and the layers' statistics.

    `train_rows`: the network and rows that evaluate the training set, where a training computes
    with fewer input columns (engine.fast.trim); the learner's model evaluates the rest.
    """
    net, x_train = train_rows or (model, splits.x_train)
    train_loss, train_acc = net.evaluate(x_train, splits.y_train)
    test_loss, test_acc = model.evaluate(splits.x_test, splits.y_test)
    val_loss = val_acc = None
    if splits.x_val is not None:
        val_loss, val_acc = model.evaluate(splits.x_val, splits.y_val)
    stats = layer_stats(model, splits.x_test[:PROBE_ROWS])
    eval_seconds = time.perf_counter() - t_start
    return EpochResult(epoch, train_loss, train_acc, test_loss, test_acc, val_loss, val_acc,
                       train_seconds + eval_seconds, train_seconds, eval_seconds, stats)


def diverged(cfg: TrainConfig, history: list[EpochResult], epoch: int, batch: int) -> TrainingDiverged:
    """The error a backend raises when the loss becomes NaN or infinite."""
    return TrainingDiverged(
        f"Training diverged: the loss became NaN or infinite in epoch {epoch}, batch {batch}. "
        f"The learning rate ({cfg.learning_rate:g}) is probably too high for this setup; "
        "try a value 3-10 times smaller.", history, epoch, batch)


def train(cfg: TrainConfig, data: Dataset, model: MLP | None = None, should_stop: ShouldStop | None = None,
          on_batch: OnBatch | None = None) -> Iterator[EpochResult]:
    """Train `model` (or a fresh one from cfg) on data with cfg's backend, yielding an EpochResult after each epoch.

    Stop by not asking for the next epoch, or by `should_stop()` returning True between batches.
    `on_batch(done, total, loss)` is called after every batch (loss None where a backend does not read
    it back: on a GPU that would make the host wait). A non-finite loss raises TrainingDiverged
    carrying the history so far.
    """
    from engine.backends import get_backend

    return get_backend(cfg.backend).train(cfg, data, model=model, should_stop=should_stop, on_batch=on_batch)
