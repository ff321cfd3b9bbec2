"""Training: the `train` generator, its EpochResult, the data splits and the batch order backends share."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from engine.config import TrainConfig
from engine.data import Dataset, scale_pixels
from engine.layers import ACTIVATIONS, Linear
from engine.model import MLP, build_model, seed_streams
from engine.optim import OPTIMIZERS, Optimizer
from engine.parallel import ParallelStep, cpu_share, parallel_workers

ACTIVATION_TYPES = tuple(ACTIVATIONS.values())
ShouldStop = Callable[[], bool]
OnBatch = Callable[[int, int], None]  # (batches done this epoch, batches per epoch)


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


# Below this share of dead input columns, leaving them out is not worth copying the training rows.
TRIM_MIN_SHARE = 0.01
# The first layer skips the input columns zero throughout a batch (Linear.sparse_input) when a
# batch is expected to have at least this share of them and the layer has at least this many units,
# so that the products it saves outweigh looking for them (a pass over the batch).
# Measured (one process, epochs interleaved, skipping on/off): 1000 units 0.89-0.94 of the time
# serially, 0.85-0.97 on the parallel step; 512 units 1.005, 256 units 1.01, 128 units 1.09;
# notebook-mse (64) 1.14, twolayernet (50) 1.23: a narrow layer's products are too short to gain.
SPARSE_MIN_SHARE = 0.1
SPARSE_MIN_UNITS = 768
# Rows sampled to count how often each column is nonzero (that only orders the columns).
SPARSE_SAMPLE_ROWS = 8192


@dataclass(frozen=True)
class InputTrim:
    """The input columns a NumPy training computes with (see `live_inputs`)."""

    live: np.ndarray  # columns used as they are
    folded: np.ndarray  # columns constant and not zero in every training row, computed as one
    values: np.ndarray  # their constants (float64)
    sparse: bool = False  # the first layer skips columns zero in a whole batch; live is ordered for it

    @property
    def n_inputs(self) -> int:
        """Columns in the training's first-layer products."""
        return len(self.live) + (len(self.folded) > 0)

    @property
    def norm(self) -> float:
        """|c|: the folded column's value."""
        return float(np.sqrt(self.values @ self.values))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The training rows as the trimmed network takes them: live columns, then the folded one."""
        if not len(self.folded):
            return x.take(self.live, axis=1)
        out = np.empty((len(x), self.n_inputs), dtype=x.dtype)
        out[:, :-1] = x[:, self.live]
        out[:, -1] = self.norm
        return out


def live_inputs(cfg: TrainConfig, x_train: np.ndarray) -> InputTrim | None:
    """The input columns a NumPy training computes with, and in what order; None for all of them as they are.

    A column that is zero in every training row adds nothing to the first layer's outputs, and its
    row of the weight gradient is exactly zero in every batch. Without L2 (which pulls weights
    toward zero) no optimizer here moves those weights: SGD and momentum add zero, and Adam's
    moments stay zero, so its update is 0 / (0 + eps). Training can leave such columns out of the
    first layer's products and update: MNIST has 67 of its 784 pixels blank in all 60,000 training
    images, 8.5% of a first layer's work (Fashion-MNIST has none).

    A column j that is a constant c_j, not zero, in every training row (MNIST's blank pixels once
    standardized: c = -0.42) gets the gradient c_j g in every batch, g being the bias's gradient. For
    SGD and momentum, whose updates are linear in the gradient, such rows stay W0[j] + c_j U with one
    vector U for all of them; so all of them are computed as one column of value C = |c| whose
    weights are (c . W0[folded]) / C + C U, which gives the same products, the same gradient norm and
    the same updates (`TrimmedInputs`). Adam's update is not linear: it keeps such columns.

    Columns may also be zero throughout a batch without being zero in every row: in a batch of 100
    MNIST images some 200 of the 717 live pixels are blank. A wide first layer skips them
    (`Linear.sparse_input`, see `sparse_pays`); the live columns are then ordered from the most
    often lit to the least, so that a batch's nonzero columns are mostly a prefix.
    """
    n = x_train.shape[1]
    if cfg.l2 > 0:  # weight decay moves every weight: all columns stay
        live, folded = np.arange(n), np.arange(0)
    else:
        first = x_train[0]
        constant = (x_train == first).all(axis=0)
        zero = constant & (first == 0)
        foldable = constant & ~zero if cfg.optimizer in ("sgd", "momentum") else np.zeros_like(constant)
        live = np.flatnonzero(~zero & ~foldable)
        folded = np.flatnonzero(foldable)
    if not len(live):
        return None
    lit = sparse_pays(cfg, x_train, live)
    if lit is not None:
        live = live[np.argsort(-lit, kind="stable")]
    trim = InputTrim(live, folded, x_train[0, folded].astype(np.float64), sparse=lit is not None)
    return trim if trim.sparse or n - trim.n_inputs >= TRIM_MIN_SHARE * n else None


def sparse_pays(cfg: TrainConfig, x_train: np.ndarray, live: np.ndarray) -> np.ndarray | None:
    """How often each live column is nonzero (a sample's share), where skipping zero columns pays; else None.

    It pays for a first layer of at least SPARSE_MIN_UNITS units, when a batch drawn at random is
    expected to have at least SPARSE_MIN_SHARE of the live columns zero throughout.
    """
    units = cfg.hidden_sizes[0] if cfg.hidden_sizes else 0
    if units < SPARSE_MIN_UNITS:
        return None
    sample = x_train[::max(1, len(x_train) // SPARSE_SAMPLE_ROWS), live]
    lit = np.count_nonzero(sample, axis=0) / len(sample)
    zero_share = float(np.mean((1 - lit) ** min(cfg.batch_size, len(x_train))))
    return lit if zero_share >= SPARSE_MIN_SHARE else None


class TrimmedInputs:
    """The network training runs when it leaves out, folds or reorders input columns (see `live_inputs`).

    `model` shares every layer with the learner's model but the first Linear, whose weights are
    the live rows, copied, and one row for the folded columns; its bias is the same array. `sync()`
    writes the rows back (the folded ones as W0[j] + c_j U). Meanwhile the learner's
    `MLP.get_weights()` merges them in (`merge`), so a snapshot taken mid-epoch is current.
    """

    def __init__(self, model: MLP, trim: InputTrim) -> None:
        first = model.linears[0]
        self.full, self.trim, self.W = model, trim, first.params["W"]
        rows = self.W.take(trim.live, axis=0)
        if len(trim.folded):
            self.W0 = self.W[trim.folded].astype(np.float64)
            rows = np.vstack([rows, (trim.values @ self.W0 / trim.norm).astype(self.W.dtype)])
            self.w0 = rows[-1].astype(np.float64)  # as trained from: U is exactly 0 until it moves
        trimmed = Linear(rows, first.params["b"], needs_input_grad=False)
        trimmed.sparse_input = trim.sparse
        self.model = MLP([trimmed if layer is first else layer for layer in model.layers], model.loss, model.config)
        model.trimmed_inputs = self

    def merge(self, W: np.ndarray) -> None:
        """Write the training's current first-layer rows into W, a full first-layer weight array."""
        rows = self.model.linears[0].params["W"]
        W[self.trim.live] = rows[:len(self.trim.live)]
        if len(self.trim.folded):
            U = (rows[-1] - self.w0) / self.trim.norm
            W[self.trim.folded] = self.W0 + self.trim.values[:, None] * U

    def sync(self) -> None:
        self.merge(self.W)

    def close(self) -> None:
        self.sync()
        self.full.trimmed_inputs = None


def make_optimizer(cfg: TrainConfig, model: MLP) -> Optimizer:
    kwargs = {"weight_decay": cfg.l2}
    if cfg.optimizer == "momentum":
        kwargs["momentum"] = cfg.momentum
    elif cfg.optimizer == "adam":
        kwargs["betas"] = cfg.betas
    return OPTIMIZERS[cfg.optimizer](model.parameters(), cfg.learning_rate, **kwargs)


def layer_stats(model: MLP, probe: np.ndarray, grad_norms: list[float] | None = None) -> tuple[dict[str, float], ...]:
    """Per Linear layer: weight spread, last gradient's norm, and what its activation does on a probe batch.

    `grad_norms`: the last batch's weight-gradient norms, taken before the update (the NumPy
    optimizers use gradient arrays as scratch); None reads them from the layers' grads.
    """
    stats = []
    norms = iter(grad_norms) if grad_norms is not None else None
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
                              grad_norm=float(next(norms) if norms else np.linalg.norm(layer.grads["W"]))))
    return tuple(stats)


def numpy_train(cfg: TrainConfig, data: Dataset, model: MLP | None = None,
                should_stop: ShouldStop | None = None, on_batch: OnBatch | None = None,
                splits: Splits | None = None, workers: int | None = None,
                trim_inputs: bool = True) -> Iterator[EpochResult]:
    """The NumPy engine's training loop.

    `workers`: threads per step (engine.parallel); None picks 1 or all this training's cores by
    what was measured to pay. `trim_inputs`: leave out input columns that are zero in every
    training row, fold constant ones into one for SGD and momentum, and have a wide first layer
    skip the columns zero throughout a batch, where that changes nothing but float rounding (see
    `live_inputs`).
    """
    splits = splits or make_splits(cfg, data)
    model = model or build_model(cfg, data.n_features, data.n_classes)
    trim = live_inputs(cfg, splits.x_train) if trim_inputs else None
    trimmed = TrimmedInputs(model, trim) if trim is not None else None
    if trimmed is not None:  # the training rows as the trimmed network takes them; the full ones are not needed
        splits = replace(splits, x_train=trim.apply(splits.x_train))
    net = trimmed.model if trimmed is not None else model  # the network the batches train
    optimizer = make_optimizer(cfg, net)
    rng = np.random.default_rng(seed_streams(cfg.seed)["shuffle"])
    X, Y = splits.x_train, splits.y_train
    history: list[EpochResult] = []
    probe = splits.x_test[:512]
    share = cpu_share()
    grad_norms = [0.0] * len(net.linears)
    scale = optimizer.grad_scale  # folded into the loss gradient: SGD's step is then one pass

    def serial_step(xb: np.ndarray, yb: np.ndarray, last: bool) -> float:
        loss = net.train_step_loss(xb, yb, scale)
        if math.isfinite(loss):
            if last:  # the epoch's gradient statistics, before the optimizer overwrites the gradients
                grad_norms[:] = [float(np.linalg.norm(lin.grads["W"])) / scale for lin in net.linears]
            optimizer.step(scale)
        return loss

    try:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            batches = batch_order(rng, len(Y), cfg.batch_size)
            with share.training(), np.errstate(over="ignore", invalid="ignore"):  # blow-ups: TrainingDiverged
                n_workers = parallel_workers(net, optimizer, cfg.batch_size, share.workers(), workers)
                parallel = n_workers > 1
                with ExitStack() as stack:
                    if parallel:
                        stack.enter_context(share.parallel_loop())
                        step = stack.enter_context(ParallelStep(net, optimizer, n_workers))
                    for b, idx in enumerate(batches, 1):
                        xb, yb, last = X[idx], Y[idx], b == len(batches)  # fancy indexing: faster than np.take
                        if parallel and not last:
                            loss = step.step(xb, yb)
                        elif parallel:
                            loss = step.run_serial(serial_step, xb, yb, True)
                        else:
                            loss = serial_step(xb, yb, last)
                        if not math.isfinite(loss):
                            raise _diverged(cfg, history, epoch, b)
                        if on_batch is not None:
                            on_batch(b, len(batches))
                        if should_stop is not None and should_stop():
                            return
                t1 = time.perf_counter()
                if trimmed is not None:
                    trimmed.sync()
                result = evaluate_epoch(model, splits, epoch, t1 - t0, probe, t1, grad_norms, train_model=net)
            if not all(math.isfinite(v) for v in (result.train_loss, result.test_loss)):
                raise _diverged(cfg, history, epoch, len(batches))
            history.append(result)
            yield result
    finally:  # stopped, diverged, closed or done: the learner's model gets every row back
        if trimmed is not None:
            trimmed.close()


def evaluate_epoch(model: MLP, splits: Splits, epoch: int, train_seconds: float, probe: np.ndarray,
                   t_start: float, grad_norms: list[float] | None = None,
                   train_model: MLP | None = None) -> EpochResult:
    """Full-pass train, validation and test metrics after an epoch.

    `train_model`: the network that evaluates the training rows, where they were trimmed
    (`TrimmedInputs.model`, synced); the learner's model evaluates the rest.
    """
    train_loss, train_acc = (train_model or model).evaluate(splits.x_train, splits.y_train)
    test_loss, test_acc = model.evaluate(splits.x_test, splits.y_test)
    val_loss = val_acc = None
    if splits.x_val is not None:
        val_loss, val_acc = model.evaluate(splits.x_val, splits.y_val)
    stats = layer_stats(model, probe, grad_norms)
    eval_seconds = time.perf_counter() - t_start
    return EpochResult(epoch, train_loss, train_acc, test_loss, test_acc, val_loss, val_acc,
                       train_seconds + eval_seconds, train_seconds, eval_seconds, stats)


def _diverged(cfg: TrainConfig, history: list[EpochResult], epoch: int, batch: int) -> TrainingDiverged:
    return TrainingDiverged(
        f"Training diverged: the loss became NaN or infinite in epoch {epoch}, batch {batch}. "
        f"The learning rate ({cfg.learning_rate:g}) is probably too high for this setup; "
        "try a value 3-10 times smaller.", history, epoch, batch)


def train(cfg: TrainConfig, data: Dataset, model: MLP | None = None, should_stop: ShouldStop | None = None,
          on_batch: OnBatch | None = None) -> Iterator[EpochResult]:
    """Train `model` (or a fresh one from cfg) on data, yielding an EpochResult after each epoch.

    Stop by not asking for the next epoch, or by `should_stop()` returning True between batches.
    A non-finite loss raises TrainingDiverged carrying the history so far.
    """
    from engine.backends import get_backend

    return get_backend(cfg.backend).train(cfg, data, model=model, should_stop=should_stop, on_batch=on_batch)
