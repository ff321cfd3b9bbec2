"""Input columns a training can leave out, fold or reorder, where that changes nothing but float rounding.

See `live_inputs`. `TrimmedInputs` is the fast network that trains with those columns only; it
writes the first layer's rows back into the learner's model (`sync`) at the end of every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.config import TrainConfig
from engine.fast.layers import FastLinear
from engine.fast.model import FastMLP

# Below this share of dead input columns, leaving them out is not worth copying the training rows.
TRIM_MIN_SHARE = 0.01
# Skipping the input columns zero throughout a batch (FastLinear.sparse_input) is a candidate for
# the step planner (engine.fast.step) when a batch is expected to have at least this share of them
# and the first layer has at least this many units. Whether it pays depends on the CPU: on an AMD
# EPYC (OpenBLAS Haswell kernel) 1000 units took 0.89-0.94 of the time, 256 units 1.01 and 128
# units 1.09; on an Intel Xeon (SkylakeX kernel) 1000 units took 1.07. So the planner measures it;
# under 256 units it never paid, and is not tried.
SPARSE_MIN_SHARE = 0.1
SPARSE_MIN_UNITS = 256
# Rows sampled to count how often each column is nonzero (that only orders the columns).
SPARSE_SAMPLE_ROWS = 8192


@dataclass(frozen=True)
class InputTrim:
    """The input columns a NumPy training computes with (see `live_inputs`)."""

    live: np.ndarray  # columns used as they are
    folded: np.ndarray  # columns constant and not zero in every training row, computed as one
    values: np.ndarray  # their constants (float64)
    sparse: bool = False  # live is ordered for skipping columns zero in a whole batch: a planner candidate

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
    MNIST images some 200 of the 717 live pixels are blank. A wide first layer may skip them
    (`FastLinear.sparse_input`, see `sparse_pays`; the step planner measures whether it pays); the
    live columns are then ordered from the most often lit to the least, so that a batch's nonzero
    columns are mostly a prefix.

    Only a dense first layer takes columns: convolutions see every pixel in place, and a dropout first would
    draw its masks over all of them.
    """
    if cfg.layer_specs and cfg.layer_specs[0].kind != "dense":
        return None
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
    """How often each live column is nonzero (a sample's share), where skipping zero columns may pay; else None.

    It may pay for a first layer of at least SPARSE_MIN_UNITS units, when a batch drawn at random is
    expected to have at least SPARSE_MIN_SHARE of the live columns zero throughout.
    """
    first = cfg.layer_specs[0] if cfg.hidden_sizes else None
    units = first.size if first is not None and first.kind == "dense" else 0
    if units < SPARSE_MIN_UNITS:
        return None
    sample = x_train[::max(1, len(x_train) // SPARSE_SAMPLE_ROWS), live]
    lit = np.count_nonzero(sample, axis=0) / len(sample)
    zero_share = float(np.mean((1 - lit) ** min(cfg.batch_size, len(x_train))))
    return lit if zero_share >= SPARSE_MIN_SHARE else None


class TrimmedInputs:
    """The fast network, its first Linear trained on the trimmed columns only (see `live_inputs`).

    `net` is `full` (the fast twin of the learner's model) with another first Linear: its weights
    are the live rows, copied, and one row for the folded columns; its bias is the same array.
    `sync()` writes the rows back into the learner's first-layer weights (the folded ones as
    W0[j] + c_j U); the training loop calls it at the end of every epoch and when it stops.
    """

    def __init__(self, full: FastMLP, trim: InputTrim) -> None:
        first = full.linears[0]
        self.trim, self.W = trim, first.params["W"]  # the learner's array: the twin shares it
        rows = self.W.take(trim.live, axis=0)
        if len(trim.folded):
            self.W0 = self.W[trim.folded].astype(np.float64)
            rows = np.vstack([rows, (trim.values @ self.W0 / trim.norm).astype(self.W.dtype)])
            self.w0 = rows[-1].astype(np.float64)  # as trained from: U is exactly 0 until it moves
        trimmed = FastLinear(rows, first.params["b"], needs_input_grad=False)
        self.net = FastMLP([trimmed if layer is first else layer for layer in full.layers], full.loss, full.config)

    def full_grad(self, rows_grad: np.ndarray, bias_grad: np.ndarray, out: np.ndarray) -> None:
        """The full first layer's weight gradient from the trimmed one: zero for a blank column, c_j times
        the bias's gradient for a folded one."""
        out[...] = 0
        out[self.trim.live] = rows_grad[:len(self.trim.live)]
        if len(self.trim.folded):
            out[self.trim.folded] = self.trim.values[:, None] * bias_grad

    def rows_of(self, full: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """The inverse of `full_grad`: the trimmed rows of a full first-layer array that is zero in the blank rows
        and c_j times `bias` in the folded ones (a gradient, or an optimizer's memory of gradients)."""
        rows = full.take(self.trim.live, axis=0)
        return np.vstack([rows, self.trim.norm * bias[None]]).astype(full.dtype) if len(self.trim.folded) else rows

    def sync(self) -> None:
        """Write the training's current first-layer rows into the learner's first-layer weights."""
        rows = self.net.linears[0].params["W"]
        self.W[self.trim.live] = rows[:len(self.trim.live)]
        if len(self.trim.folded):
            U = (rows[-1] - self.w0) / self.trim.norm
            self.W[self.trim.folded] = self.W0 + self.trim.values[:, None] * U
