"""The NumPy engine on several cores: one training step shared by worker threads.

NumPy releases the GIL inside BLAS calls and ufunc loops, so plain threads run in parallel. A step
has two phases, separated by a barrier:

A. Each worker takes a contiguous share of the batch's rows through the whole network, forward and
   back, down to every layer's output gradient (the deltas). No weight gradient yet: the rows of a
   delta are independent, so nothing is shared but the weights being read.
B. Each worker takes a share of every weight matrix's rows (input units): it computes those rows
   of the weight gradient from the whole batch, dW[r] = X[:, r].T @ delta, and at once applies
   the optimizer to the same rows, while they are still in its cache. A small layer goes whole to
   one worker, as does each layer's bias. A first layer that skips zero input columns
   (FastLinear.sparse_input) has the rows of the columns zero in the whole batch written as zeros, not
   computed, and the shares are cut to even out the work.

Dropout masks are drawn before phase A, for the whole batch, by the step itself: the serial step's
draws. The result is the serial step's, up to float rounding: the same sums, cut differently. BLAS runs
single-threaded meanwhile: OpenBLAS's own worker threads otherwise spin after every matmul and
take the core a worker needs. Whether sharing a step pays, engine.fast.step measures.

`CpuShare` is the process-wide bookkeeping: how many cores each NumPy training may use while
several run at once (as in the app), and BLAS's thread count to match.
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from engine.fast.layers import (
    Buffers,
    ColumnSupport,
    FastDropout,
    FastLinear,
    column_sums,
    column_support,
    weight_grad_on,
)
from engine.fast.model import FastMLP
from engine.fast.optim import FastOptimizer

# Each step holds the GIL for a little Python per thread and waits for the slowest thread twice, so
# many threads would mostly wait: a machine with more cores uses up to 4.
PARALLEL_MAX_WORKERS = 4
MIN_ROWS_PER_WORKER = 8
# A layer with fewer weights is updated whole by one worker: cut in parts, it costs each worker the
# same dozen NumPy calls on smaller arrays, and small calls hold the GIL the other worker needs.
SHARED_LAYER_MIN_SIZE = 65536
# With a first layer skipping zero input columns (FastLinear.sparse_input), a weight-gradient row in
# the batch's nonzero prefix costs a product and Adam's update, one after it writing zeros and the
# update: this many times as much, by keras-mlp's epochs (.scratch A/B of 300 steps, 4-6 runs
# each: 1.3, 1.6 and 1.9 tried; 1.6 gave the even phase B and the shortest epochs).
PREFIX_ROW_WORK = 1.6


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class CpuShare:
    """How many cores each NumPy training may use, and how many threads BLAS gets meanwhile.

    Cores are those BLAS was allowed when the share was made (so a user's OPENBLAS_NUM_THREADS=1
    is respected) and this process may run on. A training registers while it computes (an epoch's
    batches and evaluation, not while paused between epochs); one in a multi-threaded batch loop, or
    in a serial one kept to one core, makes BLAS single-threaded until it leaves the loop.
    """

    def __init__(self, cores: int | None = None) -> None:
        self._controller = _blas_controller()
        blas_threads = max((lib["num_threads"] for lib in self._controller.info()), default=1) \
            if self._controller else 1
        self.cores = cores or max(1, min(available_cores(), blas_threads))
        self.trainings = 0
        self.looping = 0
        self._lock = threading.Lock()

    def workers(self) -> int:
        """Cores for one training now: all of them shared evenly by the trainings running."""
        return max(1, self.cores // max(self.trainings, 1))

    def blas_threads(self) -> int:
        return 1 if self.looping else self.workers()

    def training(self):
        """Context: one more NumPy training computing (an epoch's batches and evaluation)."""
        return self._counted("trainings")

    def parallel_loop(self):
        """Context: one more training in a multi-threaded batch loop, or in a serial one kept to one core; BLAS is
        single-threaded meanwhile."""
        return self._counted("looping")

    @contextmanager
    def _counted(self, counter: str):
        with self._lock:
            setattr(self, counter, getattr(self, counter) + 1)
            self._apply()
        try:
            yield self
        finally:
            with self._lock:
                setattr(self, counter, getattr(self, counter) - 1)
                self._apply()

    def _apply(self) -> None:
        if self._controller is not None:
            self._controller.limit(limits=self.blas_threads())


def _blas_controller():
    """threadpoolctl's handle on NumPy's BLAS, or None where threadpoolctl is not installed."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController().select(user_api="blas")


_SHARE: CpuShare | None = None
_SHARE_LOCK = threading.Lock()


def cpu_share() -> CpuShare:
    """The process's CpuShare, made on first use."""
    global _SHARE
    with _SHARE_LOCK:
        if _SHARE is None:
            _SHARE = CpuShare()
        return _SHARE


_IDLE = ("idle", "no work this round")


class _RowBuffers(Buffers):
    """A worker's view of scratch arrays shared by all workers: its rows of one full-batch array each."""

    def __init__(self, shared: Buffers) -> None:
        super().__init__()
        self.shared, self.rows, self.n_rows = shared, slice(0, 0), 0

    def __call__(self, name: str, shape: tuple[int, ...], dtype: np.dtype, fill: float | None = None) -> np.ndarray:
        return self.shared(name, (self.n_rows, *shape[1:]), dtype, fill)[self.rows]


class ParallelStep:
    """`step(x, t) -> loss`: forward, backward and optimizer update of one batch, on `workers` threads.

    Use as a context manager: the helper threads start on entry and are joined on exit.
    """

    def __init__(self, model: FastMLP, optimizer: FastOptimizer, workers: int) -> None:
        self.optimizer, self.workers = optimizer, workers
        index = {id(p): i for i, (p, _) in enumerate(optimizer.params_and_grads)}
        self.linears = [(lin, index[id(lin.params["W"])], index[id(lin.params["b"])]) for lin in model.linears]
        shared = [Buffers() for _ in model.layers], Buffers()
        self.row_buffers: list[list[_RowBuffers]] = []
        self.nets: list[FastMLP] = []
        # Dropout masks are drawn by the step, for the whole batch, from the model's own layers: the
        # serial step's draws, in the same order (one per layer and batch), so training is the same
        self.dropouts: list[tuple[FastDropout, Buffers, int]] = []
        units = 0
        for layer, buffers in zip(model.layers, shared[0]):
            if isinstance(layer, FastLinear):
                units = layer.params["W"].shape[1]
            elif isinstance(layer, FastDropout) and layer.p > 0:
                self.dropouts.append((layer, buffers, units))
        self.dtype = model.dtype
        for _ in range(workers):
            layers = [copy.copy(layer) for layer in model.layers]
            loss = copy.copy(model.loss)
            buffers = [_RowBuffers(b) for b in shared[0]] + [_RowBuffers(shared[1])]
            for layer, b in zip(layers, buffers):
                layer._buffer = b
                if isinstance(layer, FastLinear):
                    layer.defer_weight_grad = True
                elif isinstance(layer, FastDropout):
                    layer.predrawn = True
            loss._buffers = buffers[-1]
            self.nets.append(FastMLP(layers, loss, model.config))
            self.row_buffers.append(buffers)
        self.replicas = [net.linears for net in self.nets]  # each worker's Linear layers, in order
        self.barrier = threading.Barrier(workers)
        self.losses = [0.0] * workers
        self.errors: list[BaseException] = []
        self.job: tuple[np.ndarray, np.ndarray] | None = None
        self.threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ threads
    def __enter__(self) -> ParallelStep:
        for w in range(1, self.workers):
            thread = threading.Thread(target=self._helper, args=(w,), daemon=True, name=f"mlp-lab-worker-{w}")
            thread.start()
            self.threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self.job = None
        try:
            self.barrier.wait()  # helpers finish the last step's phase B, find no job and return
        except threading.BrokenBarrierError:
            pass
        for thread in self.threads:
            thread.join()

    def _helper(self, w: int) -> None:
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # as the main thread: blow-ups end in TrainingDiverged
                self._serve(w)
        except threading.BrokenBarrierError:
            return
        except BaseException as exc:  # the main thread sees the broken barrier and raises it
            self.errors.append(exc)
            self.barrier.abort()

    def _serve(self, w: int) -> None:
        while True:
            self.barrier.wait()
            # Read once, between two barriers the main thread waits at too: it sets the next job only
            # after the second, so every helper sees the same one.
            job = self.job
            if job is None:
                return
            if job is _IDLE:
                self.barrier.wait()  # tells the main thread every helper has read the job
                continue
            self._phase_a(w, job)
            self.barrier.wait()
            self._phase_b(w, job)

    def _wait(self) -> None:
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            if self.errors:
                raise self.errors[0] from None
            raise

    def step(self, x: np.ndarray, t: np.ndarray) -> float:
        """One batch: returns its mean loss. The update is skipped when the loss is not finite.

        A batch too short to share (an epoch's last, at most) goes through `run_serial` instead.
        """
        if len(t) < MIN_ROWS_PER_WORKER * self.workers:
            raise ValueError(f"A batch of {len(t)} rows is too short to share between {self.workers} threads; "
                             "run it with run_serial.")
        job = self.job = (x, t)
        try:
            for layer, buffers, units in self.dropouts:  # nobody reads masks after phase A: safe to overwrite
                layer.draw(buffers("mask", (len(t), units), self.dtype))
            self._wait()  # every helper has left the previous step's phase B
            self.optimizer.begin_step()  # nobody updates during phase A
            self._phase_a(0, job)
            self._wait()
            self._phase_b(0, job)
        except BaseException:
            self.barrier.abort()
            raise
        return sum(self.losses)

    def run_serial(self, fn: Callable[..., float], *args) -> float:
        """`fn(*args)` (a serial step) on this thread, once the helpers are done with the previous step."""
        self.job = _IDLE
        self._wait()  # helpers finish the previous step's phase B before this thread changes weights
        self._wait()  # and have read the job, so it may change
        return fn(*args)

    # ------------------------------------------------------------------ the two phases
    def _rows(self, n: int, w: int, multiple: int = 1) -> slice:
        """Worker w's share of n rows; with `multiple`, the cuts fall on multiples of it (nearest)."""
        def cut(k: int) -> int:
            return n if k == self.workers else (k * n // self.workers + multiple // 2) // multiple * multiple
        return slice(cut(w), cut(w + 1))

    def _weighted_rows(self, n: int, prefix: int, w: int, multiple: int = 8) -> slice:
        """Worker w's share of a weight gradient's n rows when only the first `prefix` need a product.

        The others are zeros (a few scattered ones aside) but still get the optimizer's update, so a
        row in the prefix counts PREFIX_ROW_WORK times one after it, and the shares are cut to even
        out the work. Cuts fall on multiples of `multiple`.
        """
        total = PREFIX_ROW_WORK * prefix + (n - prefix)

        def cut(j: int) -> int:
            if j == self.workers:
                return n
            work, in_prefix = total * j / self.workers, PREFIX_ROW_WORK * prefix
            row = work / PREFIX_ROW_WORK if work <= in_prefix else prefix + work - in_prefix
            return min(n, int(round(row / multiple)) * multiple)
        return slice(cut(w), cut(w + 1))

    def _support(self, k: int) -> ColumnSupport | None:
        """For a Linear layer skipping zero input columns (sparse_input), where the whole batch's are."""
        if self.replicas[0][k].nonzero is None:
            return None
        return column_support(np.logical_or.reduce([r[k].nonzero for r in self.replicas]))

    def _phase_a(self, w: int, job: tuple[np.ndarray, np.ndarray]) -> None:
        x, t = job
        n = len(t)
        # Batch rows are cut at multiples of 8: OpenBLAS's one-thread product is slower for a row
        # count that is not a multiple of 4 (keras-mlp's 717 x 1000 layer: 50 rows 76-77 GFLOP/s,
        # 48 or 52 rows 79-84), so a batch of 100 goes 48 + 52, not 50 + 50.
        rows = self._rows(n, w, multiple=8)
        for b in self.row_buffers[w]:
            b.rows, b.n_rows = rows, n
        net, part = self.nets[w], rows.stop - rows.start
        loss = net.loss.forward(net.forward(x[rows], train=True), t[rows])
        # The loss is a mean over the whole batch, not over this worker's rows; the optimizer's factor rides along
        net.backward(net.loss.backward(self.optimizer.grad_scale * part / n))
        self.losses[w] = loss * part / n

    def _phase_b(self, w: int, job: tuple[np.ndarray, np.ndarray]) -> None:
        if not math.isfinite(sum(self.losses)):
            return  # the caller reports the divergence; the weights stay as they were
        x, t = job
        n = len(t)
        for k, (lin, i_w, i_b) in enumerate(self.linears):
            inputs = x if k == 0 else _whole([r[k].x for r in self.replicas], n)
            delta = _whole([r[k].grad_out for r in self.replicas], n)
            mine = k % self.workers == w  # this layer's bias, and the whole of a small layer
            small = lin.params["W"].size < SHARED_LAYER_MIN_SIZE
            if small and not mine:
                continue
            n_in = lin.params["W"].shape[0]
            support = self._support(k)
            if small:
                rows = slice(0, n_in)
            elif support is None:
                rows = self._rows(n_in, w, multiple=8)  # aligned columns of inputs: 1-2% faster
            else:
                rows = self._weighted_rows(n_in, support.prefix, w)
            if support is None:
                np.matmul(inputs[:, rows].T, delta, out=lin.scaled_grads["W"][rows])
            else:
                weight_grad_on(inputs, delta, support, lin.scaled_grads["W"], rows)
            self.optimizer.update_rows(i_w, rows, self.optimizer.grad_scale)
            if mine:
                column_sums(delta, out=lin.scaled_grads["b"])
                self.optimizer.update_rows(i_b, slice(None), self.optimizer.grad_scale)


def _whole(views: list[np.ndarray], n: int) -> np.ndarray:
    """The full-batch array the workers' row views were cut from (each worker's rows in order)."""
    whole = views[0].base
    if whole is None or whole.shape[0] != n or whole.shape[1:] != views[0].shape[1:] or \
            any(v.base is not whole for v in views):
        raise RuntimeError("parallel step: a layer's rows are not views of one shared array")
    return whole
