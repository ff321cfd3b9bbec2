"""Lessons: each tutorial's experiment as a card. The learner predicts, one button runs the experiment with the app's
own machinery (presets, TrainingRun, start_run), and the card explains the outcome with the runs' own numbers.

A lesson is data: its runs' configurations (shrunk by a scale factor, which tests set small) and a verdict that reads
the finished runs and returns the right choice and the explanation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import altair as alt
import numpy as np
import pandas as pd

from engine import PRESETS, TrainConfig
from engine.config import BUILT_KINDS, FIELDS
from engine.data import Dataset
from engine.gradcheck import TOLERANCE, check_batch, check_gradients, checking_model, measure_cost
from ui.runs import DIVERGED, TrainingRun


class RecordedRun(TrainingRun):
    """A run that keeps every batch's loss of every epoch (a TrainingRun keeps only the epoch in progress)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.all_batch_losses: list[float] = []

    def _end_epoch(self) -> None:
        self.all_batch_losses += self.batch_losses
        super()._end_epoch()


def sized(cfg: TrainConfig, scale: float, epochs: int, images: int) -> TrainConfig:
    """cfg for a lesson: `epochs` epochs on `images` training images, both shrunk by `scale` (tests set it small)."""
    return cfg.replace(epochs=max(1, round(epochs * scale)), train_limit=max(100, int(images * scale)))


def pct(x: float) -> str:
    return f"{x:.2%}"


def final_acc(run: TrainingRun) -> float:
    """The run's last test accuracy; 0 for a run that diverged before an epoch or learned nothing."""
    return run.last.test_acc if run.last is not None and run.status != DIVERGED else 0.0


def outcome(run: TrainingRun) -> str:
    """'98.10% test accuracy after 3 epochs', or what went wrong."""
    if run.status == DIVERGED:
        return f"diverged in epoch {run.epochs_done + 1} (the loss became infinite or NaN)"
    if run.last is None:
        return f"ended without an epoch ({run.status})"
    return f"{pct(run.last.test_acc)} test accuracy after {run.epochs_done} epoch{'s' * (run.epochs_done > 1)}"


@dataclass(frozen=True)
class Lesson:
    """One guided experiment."""

    id: str  # its address: /lessons?lesson=<id>
    title: str
    source: str  # the tutorial it comes from
    reference: str  # the figure the tutorial reported
    question: str
    choices: tuple[str, ...]
    # (scale, the sidebar's config) -> its runs' names and configs; the finished runs -> (right choice, explanation)
    setups: Callable[[float, TrainConfig], list[tuple[str, TrainConfig]]] | None = None
    verdict: Callable[[list[TrainingRun]], tuple[str, str]] | None = None
    measure: Callable[[float, TrainConfig, Dataset], tuple[str, str]] | None = None  # instead: measured at once
    metric: str = "accuracy"  # what the card's chart overlays
    batch_chart: bool = False  # also draw every batch's loss (RecordedRun)


def preset(name: str, current: TrainConfig) -> TrainConfig:
    """A preset with the learner's backend, device and seed (as the notebook experiment does)."""
    return PRESETS[name].config.replace(backend=current.backend, device=current.device, seed=current.seed)


# ---------------------------------------------------------------- MSE vs cross-entropy


def mse_vs_ce_setups(scale: float, current: TrainConfig) -> list[tuple[str, TrainConfig]]:
    return [(name, sized(preset(name, current), scale, 5, 60_000)) for name in ("notebook-mse", "notebook-ce")]


def mse_vs_ce_verdict(runs: list[TrainingRun]) -> tuple[str, str]:
    mse, ce = runs
    gap = final_acc(ce) - final_acc(mse)
    right = "Cross-entropy" if gap > 0.01 else "Mean squared error" if gap < -0.01 else "About the same"
    curve = "; ".join(f"{name}: " + ", ".join(pct(r.test_acc) for r in run.history)
                      for name, run in (("MSE", mse), ("cross-entropy", ce)))
    return right, (
        f"Mean squared error reached {outcome(mse)}; cross-entropy {outcome(ce)} ({100 * gap:+.2f} points for "
        f"cross-entropy). Epoch by epoch, test accuracy went {curve}. With sigmoid outputs, MSE's gradient "
        "carries the factor y(1 - y), which is tiny when an output is confidently wrong, so those outputs learn "
        "slowly; cross-entropy's gradient is y - t, largest exactly when the output is most wrong. But the notebook "
        "gives MSE a six times larger learning rate (3 against 0.5)" + (
            ", and here that more than made up for its smaller gradients." if gap < -0.01 else
            "; even so, cross-entropy's gradients won." if gap > 0.01 else ", which about evens them out."))


# ---------------------------------------------------------------- softmax regression vs an MLP


def softmax_vs_mlp_setups(scale: float, current: TrainConfig) -> list[tuple[str, TrainConfig]]:
    return [(name, sized(preset(name, current), scale, 3, 20_000)) for name in ("softmax-regression", "pytorch-mlp")]


def softmax_vs_mlp_verdict(runs: list[TrainingRun]) -> tuple[str, str]:
    linear, mlp = runs
    gap = 100 * (final_acc(mlp) - final_acc(linear))
    right = SOFTMAX_CHOICES[0 if gap < 1 else 1 if gap <= 4 else 2]
    return right, (
        f"Softmax regression (784 inputs straight to 10 outputs, {linear.n_params:,} parameters) reached "
        f"{outcome(linear)}; the ReLU MLP 784-256-128-64-10 ({mlp.n_params:,} parameters) {outcome(mlp)}: "
        f"{gap:+.2f} points. A linear model draws one straight boundary per digit in pixel space; hidden layers let "
        "the network build strokes and loops first and decide from those. The last points are the hardest: going "
        "from 92% to 98% removes three quarters of the mistakes.")


SOFTMAX_CHOICES = ("About the same (within 1 point)", "A few points better (1 to 4)", "Much better (over 4 points)")


# ---------------------------------------------------------------- SGD vs Adam


def sgd_vs_adam_setups(scale: float, current: TrainConfig) -> list[tuple[str, TrainConfig]]:
    adam = sized(preset("keras-mlp", current), scale, 2, 10_000)
    return [("SGD, learning rate 0.001", adam.replace(optimizer="sgd")), ("Adam, learning rate 0.001", adam)]


def sgd_vs_adam_verdict(runs: list[TrainingRun]) -> tuple[str, str]:
    sgd, adam = runs
    gap = final_acc(adam) - final_acc(sgd)
    right = "Adam" if gap > 0.01 else "SGD" if gap < -0.01 else "About the same"
    return right, (
        f"The same 784-1000-10 ReLU network from the same initial weights: SGD reached {outcome(sgd)}, Adam "
        f"{outcome(adam)}. Plain SGD moves each weight by 0.001 times its gradient, and these gradients are small, "
        "so it crawls; Adam divides each weight's step by the running size of its own gradient, so every weight "
        "moves about 0.001 per step whatever its gradient's scale. That is why the Keras tutorial's 0.001 suits Adam "
        "and plain SGD needs a rate around 0.1.")


# ---------------------------------------------------------------- the learning rate


RATES = (0.001, 0.1, 10.0)


def rates_setups(scale: float, current: TrainConfig) -> list[tuple[str, TrainConfig]]:
    base = sized(preset("twolayernet", current), scale, 3, 10_000)
    return [(f"learning rate {lr:g}", base.replace(learning_rate=lr)) for lr in RATES]


def rates_verdict(runs: list[TrainingRun]) -> tuple[str, str]:
    best = max(range(len(runs)), key=lambda i: final_acc(runs[i]))
    lines = "; ".join(f"learning rate {lr:g}: {outcome(r)}" for lr, r in zip(RATES, runs))
    return RATE_CHOICES[best], (
        f"{lines}. Too low a rate takes steps so small that a few epochs barely move the weights; too high a rate "
        "overshoots the valley of the loss on every step, and the loss grows until the numbers overflow (or the "
        "network stalls at chance). TwoLayerNet's 0.1 sits between: large steps that still go downhill.")


RATE_CHOICES = ("0.001: small, careful steps", "0.1: TwoLayerNet's rate", "10: big steps learn fastest")


# ---------------------------------------------------------------- the batch size


BATCHES = (1, 64, 1024)


def batch_setups(scale: float, current: TrainConfig) -> list[tuple[str, TrainConfig]]:
    base = sized(preset("twolayernet", current), scale, 1, 5_000).replace(learning_rate=0.05)
    return [(f"batch {b}", base.replace(batch_size=b)) for b in BATCHES]


def noise(run: RecordedRun) -> float:
    """The spread of the batch losses over the epoch's second half (the start falls fast for every batch size)."""
    losses = np.asarray(run.all_batch_losses[len(run.all_batch_losses) // 2:])
    return float(losses.std()) if len(losses) > 1 else 0.0


def batch_verdict(runs: list[TrainingRun]) -> tuple[str, str]:
    seconds = [r.history[0].train_seconds if r.history else float("inf") for r in runs]
    slowest = int(np.argmax(seconds))
    lines = "; ".join(f"batch {b}: {s:.2f} s for the epoch, {-(-r.config.train_limit // b):,} steps, loss spread "
                      f"{noise(r):.3f}, {outcome(r)}" for b, s, r in zip(BATCHES, seconds, runs))
    return str(BATCHES[slowest]), (
        f"{lines}. The same images cost more in many small steps: each step pays for its own matrix products, and "
        "a product of 64 rows costs little more than one of a single row. A batch of one also follows one image's "
        "gradient at a time, so its loss jumps from step to step; a batch of 1024 averages that noise away but "
        "takes only a few steps per epoch, so it learns less in one pass.")


# ---------------------------------------------------------------- numerical vs backprop gradient


GRAD_CHOICES = ("About 2 times: two passes each way", "About 100 times", "Tens of thousands of times")


def gradient_measure(scale: float, current: TrainConfig, data: Dataset) -> tuple[str, str]:
    cfg = preset("twolayernet", current)
    cost = measure_cost(cfg, data, budget=max(0.02, 0.3 * scale))
    checks = check_gradients(checking_model(cfg, data), *check_batch(cfg, data), max_entries=20)
    worst = max(c.relative_error for c in checks)
    right = GRAD_CHOICES[0 if cost.ratio < 10 else 1 if cost.ratio < 3000 else 2]
    return right, (
        f"TwoLayerNet has {cost.n_params:,} parameters. One backprop gradient of a batch of {cost.batch_size} took "
        f"{1000 * cost.backprop_seconds:.2f} ms here; one forward pass {1000 * cost.forward_seconds:.2f} ms, and the "
        f"numerical gradient needs two per parameter: {cost.numerical_seconds:.1f} s, {cost.ratio:,.0f} times "
        f"longer. An epoch would take {cost.epoch_backprop_seconds:.1f} s with backprop against "
        f"{cost.epoch_numerical_seconds / 3600:,.1f} hours numerically. So the numerical gradient is only a check: "
        f"on 20 entries per tensor the two agree to a relative error of {worst:.1e} at worst (below "
        f"{TOLERANCE:g} means backprop is right).")


# ---------------------------------------------------------------- over-fitting


OVERFIT = TrainConfig(hidden_sizes=(512, 512), activation="relu", output="softmax", loss="cross_entropy",
                      optimizer="adam", learning_rate=1e-3, batch_size=32, epochs=20, init="he", val_split=0.05,
                      train_limit=1000)
REMEDIES = [("dropout 0.5", {"dropout": 0.5}), ("L2 0.001", {"l2": 1e-3})]
if "batch_norm" in BUILT_KINDS:  # batch normalization (issue 17), once the engine builds it
    REMEDIES.append(("batch norm", {"hidden_sizes": ("512bn", "512bn")}))
if "patience" in FIELDS:  # early stopping (issue 17)
    REMEDIES.append(("early stopping (patience 3)", {"patience": 3}))
OVERFIT_CHOICES = ("It keeps falling with the training loss", "It falls, then turns up while the training loss falls",
                   "It stays flat: 1,000 images are too few to learn from")


def overfit_setups(scale: float, current: TrainConfig) -> list[tuple[str, TrainConfig]]:
    base = sized(OVERFIT.replace(backend=current.backend, device=current.device, seed=current.seed), scale, 20,
                 1000)
    return [("no remedy", base), *((name, base.replace(**changes)) for name, changes in REMEDIES)]


def val_line(name: str, run: TrainingRun) -> str:
    if not run.history:
        return f"{name}: {outcome(run)}"
    vals = [r.val_loss for r in run.history]
    best = int(np.argmin(vals))
    kept = getattr(run.history[-1], "kept_epoch", None)
    return (f"{name}: validation loss lowest at epoch {best + 1} ({vals[best]:.3f}), {vals[-1]:.3f} at the end, "
            f"{outcome(run)}" + (f", stopped early and kept epoch {kept}" if kept else ""))


def overfit_verdict(runs: list[TrainingRun]) -> tuple[str, str]:
    base = runs[0]
    vals = [r.val_loss for r in base.history]
    if final_acc(base) < 0.3:
        right = OVERFIT_CHOICES[2]
    elif vals and vals[-1] > 1.1 * min(vals):
        right = OVERFIT_CHOICES[1]
    else:
        right = OVERFIT_CHOICES[0]
    first, last = base.history[0], base.history[-1]
    lines = "; ".join(val_line(name, r) for (name, _), r in zip([("no remedy", None), *REMEDIES], runs))
    return right, (
        f"Without a remedy the training loss went from {first.train_loss:.3f} to {last.train_loss:.3f} (training "
        f"accuracy {pct(last.train_acc)}): the network memorises its 1,000 images. The validation images, held out, "
        f"say how it does on images it has not seen. {lines}. Dropout trains a different thinned network on every "
        "batch, L2 keeps the weights small, and early stopping keeps the weights of the epoch where the validation "
        "loss was lowest: each trades a little training fit for images the network has not seen.")


# ---------------------------------------------------------------- the lessons


def reported(name: str) -> str:
    return f"{PRESETS[name].source}: {PRESETS[name].reported} test accuracy"


LESSON_LIST = [
    Lesson("mse-vs-ce", "Mean squared error vs cross-entropy", "The NumPy notebook (sigmoid MLP 784-64-16-10)",
           f"{reported('notebook-mse')}; {reported('notebook-ce')} (after 30 epochs)",
           "Same network, two losses. Which reaches higher test accuracy in the first 5 epochs?",
           ("Mean squared error", "Cross-entropy", "About the same"), mse_vs_ce_setups, mse_vs_ce_verdict),
    Lesson("softmax-vs-mlp", "Softmax regression vs a multilayer perceptron", "The PyTorch tutorial",
           f"{reported('softmax-regression')}; {reported('pytorch-mlp')}",
           "After 3 epochs, how much better is a 3-hidden-layer ReLU network than softmax regression (no hidden "
           "layer)?", SOFTMAX_CHOICES, softmax_vs_mlp_setups, softmax_vs_mlp_verdict),
    Lesson("sgd-vs-adam", "SGD vs Adam on the same network", "The Keras tutorial (784-1000-10, Adam 0.001)",
           reported("keras-mlp"),
           "Same network, same initial weights, same learning rate 0.001. Which is ahead after 2 epochs?",
           ("SGD", "Adam", "About the same"), sgd_vs_adam_setups, sgd_vs_adam_verdict),
    Lesson("learning-rate", "Too low, right, too high: the learning rate", "TwoLayerNet (784-50-10, SGD 0.1)",
           reported("twolayernet"),
           "Three runs of TwoLayerNet with learning rates 0.001, 0.1 and 10. Which ends with the best test accuracy?",
           RATE_CHOICES, rates_setups, rates_verdict),
    Lesson("batch-size", "Batch size 1 vs 64 vs 1024", "TwoLayerNet (784-50-10), one epoch on 5,000 images",
           reported("twolayernet"),
           "One pass over the same 5,000 images. Which batch size takes the longest?",
           tuple(map(str, BATCHES)), batch_setups, batch_verdict, batch_chart=True),
    Lesson("gradient-check", "Numerical vs backprop gradient", "TwoLayerNet's gradient check",
           reported("twolayernet"),
           "TwoLayerNet has 39,760 parameters. How many times longer than backprop does one numerical gradient take?",
           GRAD_CHOICES, measure=gradient_measure),
    Lesson("overfitting", "Over-fitting a small subset, and the remedies",
           "A wide network (784-512-512-10, Adam) on 1,000 MNIST images, 5% held out for validation",
           PRESETS["overfit-mnist"].reported if "overfit-mnist" in PRESETS else "the runs below are the reference",
           "Over 20 epochs, what does the validation loss do?", OVERFIT_CHOICES, overfit_setups, overfit_verdict,
           metric="loss"),
]
LESSONS: dict[str, Lesson] = {lesson.id: lesson for lesson in LESSON_LIST}


def new_runs(lesson: Lesson, scale: float, current: TrainConfig) -> list[TrainingRun]:
    """The lesson's runs, named after it, not yet started."""
    make = RecordedRun if lesson.batch_chart else TrainingRun
    runs = []
    for name, cfg in lesson.setups(scale, current):
        run = make(cfg)
        run.name = f"{run.short_id} {lesson.id}: {name}"
        runs.append(run)
    return runs


def finished(runs: list[TrainingRun]) -> bool:
    return bool(runs) and not any(r.in_progress for r in runs)


def batch_loss_frame(runs: list[RecordedRun]) -> pd.DataFrame:
    """Each run's batch losses against the share of the epoch done (at most 400 points a run)."""
    frames = []
    for run in runs:
        losses = np.asarray(run.all_batch_losses)
        if not len(losses):
            continue
        idx = np.unique(np.linspace(0, len(losses) - 1, min(400, len(losses))).astype(int))
        frames.append(pd.DataFrame({"epoch done": (idx + 1) / len(losses), "loss": losses[idx], "run": run.name}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["epoch done", "loss", "run"])


def batch_loss_chart(runs: list[RecordedRun]) -> alt.Chart:
    return alt.Chart(batch_loss_frame(runs)).mark_line(opacity=0.8).encode(
        x=alt.X("epoch done:Q", axis=alt.Axis(format="%")), y=alt.Y("loss:Q", title="batch loss"),
        color=alt.Color("run:N", legend=alt.Legend(orient="bottom", title=None)),
    ).properties(height=260)
