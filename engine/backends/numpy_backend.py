"""The NumPy training loop, shared by the `textbook` and `numpy` backends; they differ only in the step.

`textbook_train` steps with the textbook modules alone (engine/layers, losses, optim, model): the
code a learner reads. `numpy_train` steps with engine.fast.step.FastStep: the same maths, made fast,
in the variant measured fastest on this machine. Same seed, same history, to float rounding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import nullcontext

import numpy as np

from engine.config import TrainConfig
from engine.data import Dataset
from engine.model import MLP, build_model, seed_streams
from engine.optim import make_optimizer
from engine.train import (
    Checkpoint,
    EarlyStopping,
    EpochResult,
    OnBatch,
    OnCheckpoint,
    ShouldStop,
    Splits,
    batch_order,
    diverged,
    evaluate_epoch,
    linear_weights,
    make_splits,
)


class TextbookStep:
    """One batch, the textbook way: forward, loss, backward, optimizer step."""

    def __init__(self, cfg: TrainConfig, model: MLP, splits: Splits) -> None:
        self.model, self.x_train = model, splits.x_train
        self.net = model  # the network that takes x_train's rows (a FastStep's may take fewer columns)
        self.optimizer = make_optimizer(cfg, model.parameters())

    def __call__(self, x: np.ndarray, t: np.ndarray, last: bool) -> float:
        model = self.model
        logits = model.forward(x, train=True)  # (batch, n_classes)
        loss = model.loss.forward(logits, t)
        if math.isfinite(loss):  # a diverged batch changes no weight: the loop stops and says why
            model.backward(model.loss.backward())  # every layer's grads now hold dL/dθ
            self.optimizer.step()
        return loss

    def optimizer_state(self) -> dict[str, np.ndarray]:
        return self.optimizer.state_dict(self.model.parameter_names())

    def load_optimizer_state(self, arrays: dict[str, np.ndarray]) -> None:
        self.optimizer.load_state_dict(arrays, self.model.parameter_names())

    def epoch(self) -> nullcontext:
        return nullcontext()

    def end_epoch(self) -> None:
        """Nothing to do: the textbook step trains the learner's model itself."""


def fit(cfg: TrainConfig, model: MLP, splits: Splits, step, should_stop: ShouldStop | None = None,
        on_batch: OnBatch | None = None, resume: Checkpoint | None = None,
        on_checkpoint: OnCheckpoint | None = None) -> Iterator[EpochResult]:
    """Shuffle, step through the batches, evaluate, yield; `step` is a TextbookStep or a FastStep.

    With early stopping (cfg.patience) the last result yielded carries `kept_epoch`, and the model then holds that
    epoch's weights. `resume`: go on from that checkpoint (the model holds its weights); `on_checkpoint`: told
    where training stands after each epoch.
    """
    rng = np.random.default_rng(seed_streams(cfg.seed)["shuffle"])
    X, Y = step.x_train, splits.y_train
    history: list[EpochResult] = []
    early = EarlyStopping(cfg, model)
    if resume is not None:
        history = list(resume.history)
        rng.bit_generator.state = resume.random["shuffle"]
        if model.dropout_rng is not None:
            model.dropout_rng.bit_generator.state = resume.random["dropout"]
        step.load_optimizer_state(resume.optimizer)
        early.recall(resume.early, resume.best_weights)
    before = linear_weights(model)  # the weights each epoch starts from: its update ratio's reference
    try:
        for epoch in range(len(history) + 1, cfg.epochs + 1):
            started = time.perf_counter()
            batches = batch_order(rng, len(Y), cfg.batch_size)
            with step.epoch(), np.errstate(over="ignore", invalid="ignore"):  # blow-ups: TrainingDiverged
                for b, idx in enumerate(batches, 1):
                    loss = step(X[idx], Y[idx], last=b == len(batches))
                    if not math.isfinite(loss):
                        raise diverged(cfg, history, epoch, b)
                    if on_batch is not None:
                        on_batch(b, len(batches), loss)
                    if should_stop is not None and should_stop():
                        return
                step.end_epoch()
                trained = time.perf_counter()
                result = evaluate_epoch(model, splits, epoch, trained - started, trained,
                                        train_rows=(step.net, X), before=before)
                before = linear_weights(model)
            if not (math.isfinite(result.train_loss) and math.isfinite(result.test_loss)):
                raise diverged(cfg, history, epoch, len(batches))
            result = early.check(result)
            history.append(result)
            if on_checkpoint is not None:
                on_checkpoint(Checkpoint(list(history), step.optimizer_state(), {
                    "shuffle": rng.bit_generator.state,
                    "dropout": model.dropout_rng.bit_generator.state if model.dropout_rng is not None else None},
                    early.memory(), early.best_weights))
            yield result
            if early.stopped:
                return
    finally:  # stopped, diverged, closed or done: the learner's model gets every row back
        step.end_epoch()
        if early.stopped:  # then the best epoch's weights (also where the caller stops asking at this epoch)
            early.restore()


def textbook_train(cfg: TrainConfig, data: Dataset, model: MLP | None = None, should_stop: ShouldStop | None = None,
                   on_batch: OnBatch | None = None, resume: Checkpoint | None = None,
                   on_checkpoint: OnCheckpoint | None = None) -> Iterator[EpochResult]:
    """The `textbook` backend: engine/layers, losses, optim and model, nothing else."""
    splits = make_splits(cfg, data)
    model = model or build_model(cfg, data.n_features, data.n_classes)
    return fit(cfg, model, splits, TextbookStep(cfg, model, splits), should_stop, on_batch, resume, on_checkpoint)


def numpy_train(cfg: TrainConfig, data: Dataset, model: MLP | None = None, should_stop: ShouldStop | None = None,
                on_batch: OnBatch | None = None, resume: Checkpoint | None = None,
                on_checkpoint: OnCheckpoint | None = None, workers: int | None = None, trim_inputs: bool = True,
                sparse: bool | None = None, on_plan=None) -> Iterator[EpochResult]:
    """The `numpy` backend: the textbook maths through engine/fast.

    `workers` (threads per step) and `sparse` (the first layer skips batch-blank columns) fix those
    choices instead of measuring which pays; `trim_inputs`: False computes with every input column;
    `on_plan(text)`: told the variant the step chose, after the epoch it chose it in and after each epoch that
    changed what it says (the step measures again when the machine's speed changes).
    """
    from engine.fast.step import FastStep

    splits = make_splits(cfg, data)
    model = model or build_model(cfg, data.n_features, data.n_classes)
    step = FastStep(cfg, model, splits, workers=workers, trim_inputs=trim_inputs, sparse=sparse)
    epochs = fit(cfg, model, splits, step, should_stop, on_batch, resume, on_checkpoint)
    told = "still measuring"
    try:
        for result in epochs:
            if on_plan is not None and step.plan != told:
                told = step.plan
                on_plan(told)
            yield result
    finally:
        epochs.close()
