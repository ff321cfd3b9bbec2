"""The `numpy` backend's training step: the textbook step's maths, through engine.fast, in the variant measured
fastest on this machine.

A step is `step(x, t, last) -> loss`, the same contract as the textbook step
(engine.backends.numpy_backend.TextbookStep): forward, loss, backward and the optimizer's update of
one batch. What the fast step adds, each piece tested equal to the textbook path (tests/test_fast.py):

- fast twins of the layers, loss and optimizer (buffers, in-place activations, the optimizer's
  factor folded into the loss gradient, Adam's fused passes): engine/fast/layers|losses|optim.py;
- trimmed inputs: columns blank in every training row left out, constant ones folded: engine/fast/trim.py;
- variants whose worth depends on the CPU and its load, chosen by measurement (like cuDNN's benchmark
  mode or FFTW's planner): the step shared by worker threads (engine/fast/parallel.py), or serial with
  BLAS on every core, or serial on one core; the first layer skipping the input columns zero in a
  whole batch or not; SGD's update inside the weight-gradient products where it can be (not chosen).
  In the first epoch each candidate trains a few batches in turn, a round, and the rounds are spread
  over the epoch with the best so far training between them; the fastest, by its median time
  relative to the first candidate's in the same round, is kept (`plan`). A moment when the machine
  is busy elsewhere then spoils a round, not the plan. The chosen variant's batches stay timed (a
  clock read each): when their median over two windows in a row moves by a quarter from what it was
  after the plan, or another training starts or ends in the process, the machine has changed and the
  candidates are measured again; a choice of one core is measured again every so often besides, as
  its speed does not show the other core's return.
"""

from __future__ import annotations

import math
import statistics
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace

import numpy as np

from engine.config import TrainConfig
from engine.conv import Conv2D
from engine.fast import blas
from engine.fast.model import twin
from engine.fast.optim import FAST_OPTIMIZERS, FastSGD
from engine.fast.parallel import MIN_ROWS_PER_WORKER, PARALLEL_MAX_WORKERS, ParallelStep, cpu_share
from engine.fast.trim import TrimmedInputs, live_inputs
from engine.layers import BatchNorm, Linear
from engine.model import MLP
from engine.optim import make_optimizer
from engine.train import Splits

# Planning: rounds of candidates, each candidate training this many batches per round; the first
# round warms caches and threads up and is not counted.
PLAN_ROUNDS = 6
PLAN_BATCHES = 4
# Another candidate is kept over the first only if it is this much faster: noise does not decide between equals.
PLAN_MARGIN = 0.05
# Watching the choice: medians of this many batches of it; measured again (over RECHECK_ROUNDS rounds spread over
# RECHECK_SPAN batches) when two in a row move from the first after the plan by more than RECHECK_CHANGE times or
# less than 1 / RECHECK_CHANGE.
RECHECK_WINDOW = 32
RECHECK_CHANGE = 1.25
RECHECK_ROUNDS = 3
RECHECK_SPAN = 96
# A choice on one core is measured again after this many windows whatever its speed: it keeps its speed when the
# other core comes back, so the watch alone would not see that every core pays again.
RECHECK_ONE_CORE = 32
# Below this many parameters, sharing a step between threads was never measured to pay (small
# NumPy calls hold the GIL the other thread needs): not worth trying.
PARALLEL_MIN_PARAMS = 100_000


@dataclass(frozen=True)
class Variant:
    """One way to run the step: how many threads, whether the first layer skips batch-blank columns, and whether
    BLAS keeps to one core (`one_core`; by default a serial step's products use the cores CpuShare gives this
    training: all of them while it trains alone). `fused`: SGD's update is made inside the weight-gradient products
    (FastLinear.sgd_beta), not chosen but taken where it can be."""

    workers: int = 1
    sparse: bool = False
    one_core: bool = False
    fused: bool = False

    def __str__(self) -> str:
        return (f"{self.workers} thread{'s' * (self.workers > 1)}{' on one core' if self.one_core else ''}"
                f"{', skipping blank columns' if self.sparse else ''}"
                f"{', SGD inside the products' if self.fused else ''}")


class FastStep:
    """`step(x, t, last) -> loss` for the numpy backend; `x_train` are the training rows as it takes them."""

    def __init__(self, cfg: TrainConfig, model: MLP, splits: Splits, workers: int | None = None,
                 trim_inputs: bool = True, sparse: bool | None = None) -> None:
        self.model, self.share = model, cpu_share()
        full = twin(model)
        trim = live_inputs(cfg, splits.x_train) if trim_inputs else None
        self.trimmed = TrimmedInputs(full, trim) if trim is not None else None
        self.net = self.trimmed.net if self.trimmed is not None else full  # the network the batches train
        self.x_train = trim.apply(splits.x_train) if trim is not None else splits.x_train
        self.optimizer = make_optimizer(cfg, self.net.parameters(), FAST_OPTIMIZERS)
        self.scale = self.optimizer.grad_scale  # folded into the loss gradient: SGD's step is then one pass
        n_batches = -(-len(self.x_train) // cfg.batch_size)  # an epoch's
        self.candidates = self._candidates(cfg, trim is not None and trim.sparse, workers, sparse, n_batches)
        self.variant = self.candidates[0] if len(self.candidates) == 1 else None  # None: still planning
        self.replans = 0  # times the candidates were measured again, the machine's speed or load having changed
        self._planning = self.variant is None
        # the planning schedule: per batch, (round, candidate), or None for a batch of the best so far
        self._schedule = iter(self._plan_batches(n_batches))
        self.rounds: list[dict[Variant, list[float]]] = []  # per round, each candidate's batch seconds
        self._timing: Variant | None = None  # the candidate the running batch times
        self._leader: tuple[int, Variant] = (0, self.candidates[0])  # (rounds seen, best so far)
        self._recent: list[float] = []  # the choice's batch seconds since the last window
        self._usual: float | None = None  # its median over the first window after the plan
        self._windows = 0  # windows watched since the plan
        self._changed = 0  # windows in a row that found the machine changed
        self._trainings = 0  # trainings in this process during the first window after the plan
        self._plan = "still measuring"  # the last plan, in words
        self._stack: ExitStack | None = None
        self._parallel: ParallelStep | None = None
        self._running: Variant | None = None

    def _candidates(self, cfg: TrainConfig, sparse_ok: bool, workers: int | None, sparse: bool | None,
                    n_batches: int) -> list[Variant]:
        """The variants worth measuring; `workers` or `sparse` given fix that choice instead.

        A serial step on one core is slower while the machine is quiet but, on a virtual machine whose second core
        is at times taken by its host, BLAS's two threads then wait on each other and take twice as long or more:
        one core is then the faster (the watch notices the change, see `_watch`).

        Never threads for a network with batch normalization: each worker would normalize its share of the
        batch by that share's mean and variance, not the whole batch's, and train a different network; nor
        with convolutions, whose weights the threaded step does not update (it shares out Linear layers only).
        """
        measure_cores = workers is None and self.share.workers() > 1
        if any(isinstance(layer, (BatchNorm, Conv2D)) for layer in self.model.layers):
            workers = 1
        threads = [workers] if workers is not None else [1]
        if workers is None and self.net.n_params >= PARALLEL_MIN_PARAMS:
            n = min(self.share.workers(), PARALLEL_MAX_WORKERS, cfg.batch_size // MIN_ROWS_PER_WORKER)
            if n > 1:
                threads.append(n)
        skips = [s for s in ((False, True) if sparse is None else (sparse,)) if sparse_ok or not s] or [False]
        cores = [False, True] if measure_cores else [False]
        # SGD inside the products: every parameter a Linear layer's (engine/fast/blas.py), batches not skipping, and
        # more than the last batch in an epoch (it computes the gradients, which are recorded)
        fuse = isinstance(self.optimizer, FastSGD) and blas.available() and n_batches > 1 \
            and all(layer.params == {} or isinstance(layer, Linear) for layer in self.net.layers)
        return ([Variant(1, s, one, fuse and not s) for one in cores for s in skips] if threads[0] == 1 else []) \
            + [Variant(w, s) for w in threads if w > 1 for s in skips]

    @property
    def plan(self) -> str:
        """The variant chosen (and the candidates' median batch times when it was last chosen), in words."""
        if self.variant is None:
            return "still measuring"
        if len(self.candidates) == 1:
            return str(self.variant)
        return self._plan

    def _describe(self) -> str:
        times = ", ".join(f"{v}: {1e3 * statistics.median(t):.2f} ms"
                          for v in self.candidates if (t := [s for r in self.rounds[1:] for s in r.get(v, ())]))
        times_again = {1: "once", 2: "twice"}.get(self.replans, f"{self.replans} times")
        again = f"; measured again {times_again} as this machine's speed or load changed" if self.replans else ""
        return f"{self.variant} (measured per batch: {times or 'nothing, no batch ran as a candidate'}{again})"

    # ------------------------------------------------------------------ the loop's calls
    def epoch(self) -> ExitStack:
        """Context for one epoch's batches: this training counts in the process's CPU share."""
        stack = ExitStack()
        stack.enter_context(self.share.training())
        stack.callback(self._leave)
        return stack

    def __call__(self, x: np.ndarray, t: np.ndarray, last: bool) -> float:
        variant = self._next_trial() if self._planning else self.variant
        if variant.workers > 1 and (self.share.workers() < 2 or len(t) < MIN_ROWS_PER_WORKER * variant.workers):
            variant = replace(variant, workers=1)  # other trainings took the cores meanwhile, or too few rows
        if last:  # serially, computing the gradients: they are recorded
            variant = replace(variant, workers=1, fused=False)
        self._enter(variant)
        started = time.perf_counter()
        if self._parallel is not None:
            loss = self._parallel.step(x, t)
        else:
            loss = self.net.train_step_loss(x, t, self.scale)
            if math.isfinite(loss):
                if last:
                    self._record_grads()
                if variant.fused:
                    self.optimizer.begin_step()  # counted: the layers' backward made the update
                else:
                    self.optimizer.step(self.scale)
        if not last:  # the last batch is not timed: often short, and it records the gradients
            if self._timing is not None and variant == self._timing:  # a candidate that ran as itself
                self.rounds[-1].setdefault(variant, []).append(time.perf_counter() - started)
            elif not self._planning and variant == self.variant and len(self.candidates) > 1:
                self._watch(time.perf_counter() - started)
        return loss

    def end_epoch(self) -> None:
        """The learner's model gets the first layer's trained rows back."""
        self._leave()
        if self.trimmed is not None:
            self.trimmed.sync()

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """The optimizer's memory as the textbook optimizer of the learner's model keeps it (a Checkpoint's)."""
        names = self.model.parameter_names()
        arrays = self.optimizer.state_dict(names)
        if self.trimmed is not None:  # the first layer's memory, in its full rows
            for k in self.optimizer.STATE:
                W, b = f"{names[0]}.{k}", f"{names[1]}.{k}"
                full = np.empty_like(self.model.linears[0].params["W"])
                self.trimmed.full_grad(arrays[W], arrays[b], full)
                arrays[W] = full
        return arrays

    def load_optimizer_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Take `optimizer_state()`'s memory back (a Checkpoint's)."""
        names = self.model.parameter_names()
        arrays = dict(arrays)
        if self.trimmed is not None:
            for k in self.optimizer.STATE:
                W, b = f"{names[0]}.{k}", f"{names[1]}.{k}"
                if W in arrays and b in arrays:
                    arrays[W] = self.trimmed.rows_of(arrays[W], arrays[b])
        self.optimizer.load_state_dict(arrays, names)

    # ------------------------------------------------------------------ planning
    def _plan_batches(self, n_batches: int, max_rounds: int = PLAN_ROUNDS) -> list[tuple[int, Variant] | None]:
        """Per batch while planning: (round, candidate), or None where the best so far trains. The rounds are spread
        evenly over the first epoch's `n_batches` but its last, which then trains with the choice; an epoch too short
        for PLAN_ROUNDS gets fewer (at least two)."""
        per_round = [v for v in self.candidates for _ in range(PLAN_BATCHES)]
        rounds = max(2, min(max_rounds, (n_batches - 1) // len(per_round)))
        gap = max(0, n_batches - 1 - rounds * len(per_round)) // rounds
        schedule: list[tuple[int, Variant] | None] = []
        for r in range(rounds):
            order = per_round if r % 2 == 0 else per_round[::-1]  # neither candidate always goes first
            schedule += [(r, v) for v in order] + [None] * (gap if r < rounds - 1 else 0)
        return schedule

    def _next_trial(self) -> Variant:
        self._timing = None
        planned = next(self._schedule, False)
        if planned is False:
            self.variant, self._planning = self.choose(self.rounds[1:], self.candidates), False
            self._recent, self._usual, self._windows, self._changed = [], None, 0, 0
            self._plan = self._describe()
            return self.variant
        if planned is None:  # between rounds: the best so far (once a round counts), chosen again once per round
            if self._leader[0] != len(self.rounds) and len(self.rounds) > 1:
                self._leader = (len(self.rounds), self.choose(self.rounds[1:], self.candidates))
            return self._leader[1]
        r, variant = planned
        if r == len(self.rounds):
            self.rounds.append({})
        self._timing = variant
        return variant

    def _watch(self, seconds: float) -> None:
        """One batch time of the choice; plan again once two windows in a row found the machine changed: their median
        moved from the first window's, or another training started or ended in this process (or, on one core, after
        RECHECK_ONE_CORE windows)."""
        self._recent.append(seconds)
        if len(self._recent) < RECHECK_WINDOW:
            return
        median, self._recent = statistics.median(self._recent), []
        self._windows += 1
        if self._usual is None:
            self._usual, self._trainings = median, self.share.trainings
            return
        changed = not 1 / RECHECK_CHANGE < median / self._usual < RECHECK_CHANGE \
            or self.share.trainings != self._trainings
        self._changed = self._changed + 1 if changed else 0
        if self._changed >= 2 or (self.variant.one_core and self._windows >= RECHECK_ONE_CORE):
            self.replans += 1
            self.rounds, self._planning, self._leader = [], True, (0, self.variant)
            self._schedule = iter(self._plan_batches(RECHECK_SPAN, RECHECK_ROUNDS))

    @staticmethod
    def choose(rounds: list[dict[Variant, list[float]]], candidates: list[Variant]) -> Variant:
        """The fastest candidate over `rounds`: in each round, each candidate's median batch time over the first
        candidate's (both ran under that round's conditions); the lowest median of these ratios wins, if it is below
        1 - PLAN_MARGIN. A candidate without timings (threads while other trainings held the cores) is not chosen."""
        base = candidates[0]
        ratios: dict[Variant, list[float]] = {v: [] for v in candidates}
        for timings in rounds:
            if timings.get(base):
                for v, seconds in timings.items():
                    ratios[v].append(statistics.median(seconds) / statistics.median(timings[base]))
        scored = [v for v in candidates if ratios[v]]
        best = min(scored, key=lambda v: statistics.median(ratios[v])) if scored else base
        return best if best == base or statistics.median(ratios[best]) < 1 - PLAN_MARGIN else base

    def _enter(self, variant: Variant) -> None:
        """Set the network up for `variant`: the first layer's skipping, and the worker threads."""
        if variant == self._running:
            return
        self._leave()
        self.net.linears[0].sparse_input = variant.sparse
        beta = 1 - self.scale * self.optimizer.weight_decay  # SGD's scale is its learning rate
        for layer in self.net.linears:
            layer.sgd_beta = beta if variant.fused else None
        if variant.workers > 1 or variant.one_core:
            self._stack = ExitStack()
            self._stack.enter_context(self.share.parallel_loop())  # BLAS single-threaded
            if variant.workers > 1:
                self._parallel = self._stack.enter_context(ParallelStep(self.net, self.optimizer, variant.workers))
        self._running = variant

    def _leave(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack = self._parallel = self._running = None

    def _record_grads(self) -> None:
        """dL/dθ of this batch into the learner's layers' `grads` (Linear and BatchNorm), before the optimizer uses
        these as scratch."""
        for k, (lin, fast) in enumerate(zip(self.model.linears, self.net.linears)):
            W, b = fast.scaled_grads["W"], fast.scaled_grads["b"]
            lin.grads["b"][...] = b / self.scale
            if k == 0 and self.trimmed is not None:
                self.trimmed.full_grad(W / self.scale, lin.grads["b"], lin.grads["W"])
            else:
                lin.grads["W"][...] = W / self.scale
        fast_norms = (layer for layer in self.net.layers if isinstance(layer, BatchNorm))
        for norm, fast in zip((layer for layer in self.model.layers if isinstance(layer, BatchNorm)), fast_norms):
            for k, g in fast.scaled_grads.items():
                norm.grads[k][...] = g / self.scale
