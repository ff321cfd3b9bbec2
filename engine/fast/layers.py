"""The textbook layers (engine/layers.py) made fast: the same maths, computed without allocating.

Each class here is its textbook layer's subclass and twin (engine.fast.model.fast_twin): it shares the textbook
layer's parameter arrays and computes the same forward and backward, but writes into buffers it keeps
per batch shape, and activations work in place: an output is valid until the next forward with the
same batch size, and an activation's backward overwrites the gradient it is given. A twin's
gradients are `scaled_grads`: dL/dθ times the optimizer's grad_scale (see engine/fast/optim.py),
and the optimizer's scratch space after a step. The textbook layer's `grads` are not touched.
Tests hold every twin equal to its textbook layer (tests/test_fast.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine import layers as textbook
from engine.fast import blas


class Buffers:
    """Scratch arrays kept per (name, shape, dtype), so a training loop allocates nothing per batch."""

    def __init__(self) -> None:
        self._arrays: dict[tuple, np.ndarray] = {}

    def __call__(self, name: str, shape: tuple[int, ...], dtype: np.dtype, fill: float | None = None) -> np.ndarray:
        """The scratch array `name` of this shape; with `fill`, a read-only array of that constant instead."""
        key = (name, shape, dtype)
        buf = self._arrays.get(key)
        if buf is None:
            if fill is None:
                buf = np.empty(shape, dtype=dtype)
            else:  # zeros come from calloc: pages never written all map the kernel's zero page (no memory)
                buf = np.zeros(shape, dtype=dtype) if fill == 0 else np.full(shape, fill, dtype=dtype)
                buf.flags.writeable = False
            self._arrays[key] = buf
        return buf


_ONES: dict[tuple[int, np.dtype], np.ndarray] = {}


def ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n ones, kept per (n, dtype): sums as matrix-vector products."""
    key = (n, np.dtype(dtype))
    v = _ONES.get(key)
    if v is None:
        v = np.ones(n, dtype=dtype)
        v.flags.writeable = False
        _ONES[key] = v
    return v


def column_sums(a: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = a.sum(axis=0) for a 2-D float array, as ones @ a.

    BLAS's matrix-vector product is 2-3x faster than NumPy's axis-0 reduction on a training
    batch (64 x 256: 1.5 against 3.9 us), and a step takes one per Linear layer.
    """
    return np.dot(ones(a.shape[0], a.dtype), a, out=out)


# Columns of a batch outside its nonzero prefix that are not zero (MNIST: the rare pixels near the
# border that one image of the batch lights) are computed apart, up to this many; see column_support.
MAX_SCATTERED = 16


class ColumnSupport(NamedTuple):
    """Where a batch's nonzero input columns are: in [0, prefix) or among `scattered` (ascending, >= prefix)."""

    prefix: int
    scattered: np.ndarray


def nonzero_columns(x: np.ndarray, buffers: Buffers) -> np.ndarray:
    """A new bool vector: which columns of x hold something that is not zero (NaN included)."""
    seen = buffers("nonzero", x.shape, np.dtype(bool))
    np.not_equal(x, 0, out=seen)
    return np.logical_or.reduce(seen, axis=0)


def column_support(nonzero: np.ndarray, max_scattered: int = MAX_SCATTERED) -> ColumnSupport:
    """The shortest prefix of columns after which at most `max_scattered` columns are nonzero, and those."""
    cols = np.flatnonzero(nonzero)
    prefix = int(cols[-max_scattered - 1]) + 1 if len(cols) > max_scattered else 0
    scattered = cols[len(cols) - min(len(cols), max_scattered):]
    run = int(np.searchsorted(scattered - np.arange(prefix, prefix + len(scattered)), 1))
    return ColumnSupport(prefix + run, scattered[run:])  # those right after the prefix join it


def product_on(x: np.ndarray, W: np.ndarray, support: ColumnSupport, out: np.ndarray,
               buffers: Buffers) -> np.ndarray:
    """out = x @ W, where every column of x outside `support` is zero: only the support's rows of W are read."""
    k, s = support
    np.matmul(x[:, :k], W[:k], out=out)  # k = 0 gives zeros
    if len(s):
        part = buffers("scattered", out.shape, out.dtype)
        np.matmul(x[:, s], W[s], out=part)
        out += part
    return out


def weight_grad_on(x: np.ndarray, delta: np.ndarray, support: ColumnSupport, out: np.ndarray,
                   rows: slice) -> None:
    """out[rows] = (x.T @ delta)[rows] where x is zero outside `support`: rows outside it are zeros."""
    start, stop = rows.start, rows.stop
    k, s = support
    k = min(max(k, start), stop)
    if k > start:
        np.matmul(x[:, start:k].T, delta, out=out[start:k])
    if stop > k:
        out[k:stop] = 0
        s = s[np.searchsorted(s, start):np.searchsorted(s, stop)]
        if len(s):
            out[s] = x[:, s].T @ delta


class Buffered:
    """Mixin: a layer's scratch arrays, kept per shape."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._buffer = Buffers()


class FastLinear(Buffered, textbook.Linear):
    """y = x @ W + b, with W of shape (n_in, n_out), into buffers; the bias gradient as a matrix-vector product.

    `needs_input_grad` False (the first layer) skips dL/dx; `defer_weight_grad` leaves the weight
    gradient to engine.fast.parallel, which computes it from `grad_out` itself. With `sgd_beta` set,
    backward applies SGD's update itself, W = sgd_beta W - x.T @ grad_out in one BLAS call
    (engine/fast/blas.py) and b -= sum(grad_out), after dL/dx is computed with the weights it used; the
    step then has no gradient to pass to the optimizer (`grad_out` carries the learning rate). With `sparse_input`,
    a training batch's products leave out the input columns that are zero in every row of it: their
    rows of W add nothing to y, and their rows of the weight gradient are zero. This can pay where
    many columns are zero together and the columns are ordered so that those often lit come first
    (engine.fast.trim orders MNIST's pixels so): the products then read a prefix of the columns and
    a few scattered ones (`column_support`).
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, needs_input_grad: bool = True) -> None:
        super().__init__(W, b)
        del self.grads  # a twin's gradients are scaled_grads (see the module's docstring)
        self.scaled_grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}
        self.needs_input_grad = needs_input_grad  # False for the first layer: nobody wants dL/dx there
        self.defer_weight_grad = False  # True in the parallel engine, which computes grads from grad_out itself
        self.sparse_input = False
        self.sgd_beta: float | None = None  # set: backward applies SGD's update (1 - lr * L2 for W)
        self.nonzero: np.ndarray | None = None  # with sparse_input, the last training batch's nonzero columns
        self.support: ColumnSupport | None = None  # and where they are

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.x = x
        W = self.params["W"]
        out = self._buffer("out", (x.shape[0], W.shape[1]), W.dtype)
        if self.sparse_input and train:
            self.nonzero = nonzero_columns(x, self._buffer)
            self.support = column_support(self.nonzero)
            product_on(x, W, self.support, out, self._buffer)
        else:
            self.nonzero = self.support = None
            np.matmul(x, W, out=out)
        out += self.params["b"]
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        self.grad_out = grad_out
        if self.sgd_beta is not None:
            dx = self._input_grad(grad_out)  # with the weights of the forward pass, before they change
            W, b = self.params["W"], self.params["b"]
            if not blas.weight_update(self.x, grad_out, W, self.sgd_beta):
                dW = np.matmul(self.x.T, grad_out, out=self.scaled_grads["W"])
                if self.sgd_beta != 1:  # L2's decay
                    W *= self.sgd_beta
                W -= dW
            b -= column_sums(grad_out, out=self.scaled_grads["b"])
            return dx
        if not self.defer_weight_grad:
            if self.support is not None:
                dW = self.scaled_grads["W"]
                weight_grad_on(self.x, grad_out, self.support, dW, slice(0, len(dW)))
            else:
                np.matmul(self.x.T, grad_out, out=self.scaled_grads["W"])  # (n_in, n_ex) @ (n_ex, n_out)
            column_sums(grad_out, out=self.scaled_grads["b"])
        return self._input_grad(grad_out)

    def _input_grad(self, grad_out: np.ndarray) -> np.ndarray | None:
        """dL/dx = grad_out @ W.T, (batch, n_out) @ (n_out, n_in); None for the first layer."""
        if not self.needs_input_grad:
            return None
        W = self.params["W"]
        dx = self._buffer("dx", (grad_out.shape[0], W.shape[0]), W.dtype)
        return np.matmul(grad_out, W.T, out=dx)

    def __repr__(self) -> str:
        n_in, n_out = self.params["W"].shape
        return f"Linear({n_in}, {n_out})"


class FastSigmoid(Buffered, textbook.Sigmoid):
    """y = 1 / (1 + exp(-x)), in place; dy/dx = y (1 - y)."""

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.y = sigmoid(x, out=x)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        d = self._buffer("d", self.y.shape, self.y.dtype)
        np.subtract(1, self.y, out=d)
        d *= self.y
        grad_out *= d
        return grad_out


class FastTanh(Buffered, textbook.Tanh):
    """y = tanh(x), in place; dy/dx = 1 - y^2."""

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.y = np.tanh(x, out=x)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        d = self._buffer("d", self.y.shape, self.y.dtype)
        np.square(self.y, out=d)
        np.subtract(1, d, out=d)
        grad_out *= d
        return grad_out


class FastReLU(Buffered, textbook.ReLU):
    """y = max(x, 0), in place; the gradient passes where y > 0.

    The 0 is an array of zeros, not a scalar: NumPy's maximum has a vectorized loop for two arrays
    only, so max(x, zeros) is 3-4x faster than max(x, 0) (64 x 256: 2.1 against 8.8 us).
    """

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.y = np.maximum(x, self._buffer("zeros", x.shape, x.dtype, fill=0), out=x)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        grad_out *= self.y > 0
        return grad_out


class FastLeakyReLU(Buffered, textbook.LeakyReLU):
    """y = x where x > 0, else slope * x; the gradient is multiplied by 1 where y > 0, else by slope.

    For 0 <= slope < 1 that is y = max(x, slope * x), and the gradient's factor is max([y > 0], slope)
    (PyTorch's leaky_relu_backward also tests the output): vectorized passes, with the constants as
    arrays (see ReLU). Boolean indexing had made this layer 15-25x slower, and an epoch twice as long
    as with ReLU.
    """

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        scaled = self._buffer("scaled", x.shape, x.dtype)
        np.multiply(x, self.slope, out=scaled)
        self.y = np.maximum(x, scaled, out=x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        y = self.y
        positive = self._buffer("positive", y.shape, np.dtype(bool))
        np.greater(y, self._buffer("zeros", y.shape, y.dtype, fill=0), out=positive)
        factor = self._buffer("factor", y.shape, y.dtype)
        np.copyto(factor, positive)  # 1 or 0, exactly
        np.maximum(factor, self._buffer("slope", y.shape, y.dtype, fill=self.slope), out=factor)
        grad_out *= factor
        return grad_out


class FastDropout(Buffered, textbook.Dropout):
    """Inverted dropout: in training zero each unit with probability p and scale the rest by 1/(1-p)."""

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        super().__init__(p, rng)
        # True in the parallel engine's workers: the step draws the whole batch's mask into the
        # shared buffer before they run, so each finds its rows of it there (engine.parallel)
        self.predrawn = False

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        if not train or self.p == 0:
            self.mask = None
            return x
        mask = self._buffer("mask", x.shape, x.dtype)
        if not self.predrawn:
            self.draw(mask)
        self.mask = mask
        x *= mask
        return x

    def draw(self, mask: np.ndarray) -> None:
        """Fill `mask` with a fresh draw: 0 for a dropped unit, 1 / (1 - p) for a kept one."""
        self.rng.random(mask.shape, dtype=mask.dtype, out=mask)
        np.greater_equal(mask, self.p, out=mask)  # 1.0 where kept
        mask *= 1 / (1 - self.p)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self.mask is not None:
            grad_out *= self.mask
        return grad_out


class FastBatchNorm(Buffered, textbook.BatchNorm):
    """Batch normalization into buffers; shares gamma, beta and the running averages with its textbook layer."""

    def __init__(self, layer: textbook.BatchNorm) -> None:
        super().__init__(len(layer.params["gamma"]), layer.params["gamma"].dtype, layer.momentum, layer.eps)
        self.params, self.state = layer.params, layer.state
        del self.grads  # a twin's gradients are scaled_grads (see the module's docstring)
        self.scaled_grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        if train:
            mean, var = x.mean(axis=0), x.var(axis=0)
            n, m = len(x), self.momentum
            rm, rv = self.state["running_mean"], self.state["running_var"]
            rm *= 1 - m
            rm += m * mean
            rv *= 1 - m
            rv += (m * n / max(n - 1, 1)) * var
        else:
            mean, var = self.state["running_mean"], self.state["running_var"]
        var = var + self.eps
        self.inv_std = np.sqrt(var, out=var)
        np.reciprocal(self.inv_std, out=self.inv_std)
        x_hat = self._buffer("x_hat", x.shape, x.dtype)
        np.subtract(x, mean, out=x_hat)
        x_hat *= self.inv_std
        self.x_hat = x_hat
        out = self._buffer("out", x.shape, x.dtype)
        np.multiply(x_hat, self.params["gamma"], out=out)
        out += self.params["beta"]
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_hat, n = self.x_hat, len(grad_out)
        prod = self._buffer("prod", grad_out.shape, grad_out.dtype)
        np.multiply(grad_out, x_hat, out=prod)
        column_sums(prod, out=self.scaled_grads["gamma"])
        column_sums(grad_out, out=self.scaled_grads["beta"])
        # dL/dx = inv_std / n * gamma * (n g - sum(g) - x_hat * sum(g * x_hat)), per unit
        dx = self._buffer("dx", grad_out.shape, grad_out.dtype)
        np.multiply(x_hat, self.scaled_grads["gamma"], out=dx)
        dx += self.scaled_grads["beta"]
        np.multiply(grad_out, n, out=prod)
        np.subtract(prod, dx, out=dx)
        dx *= self.params["gamma"] * self.inv_std / n
        return dx


def sigmoid(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-x)).

    For x below about -88 (float32), exp(-x) overflows to inf and the result is 0, the right limit.
    Relative error at most 3e-7 for every float32 x; 0.5 tanh(x / 2) + 0.5 had lost all relative
    precision for small outputs (sigmoid(-20) came out 0) and took 1.6x as long (NumPy's float32
    tanh is twice its exp).
    """
    with np.errstate(over="ignore"):
        out = np.negative(x, out=out)
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)
