"""Layers, the textbook way: `forward` keeps what `backward` needs; `backward` fills `grads` and returns dL/dx.

Shapes: a batch is (batch, n_in); a layer's output is (batch, n_out). `params` and `grads` are dicts
with the same keys ({"W", "b"} for Linear, {} for activations), and after `backward` each
`grads[k]` holds dL/d`params[k]` for the batch. The speed-ups for the same maths live in engine/fast/.
"""

from __future__ import annotations

import numpy as np


class Layer:
    """Base: `params` and `grads` are dicts with the same keys."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Linear(Layer):
    """y = x @ W + b, with W of shape (n_in, n_out) and b of shape (n_out,)."""

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        super().__init__()
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """x: (batch, n_in) -> y: (batch, n_out)."""
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out = dL/dy: (batch, n_out) -> dL/dx: (batch, n_in); fills dL/dW (n_in, n_out) and dL/db (n_out,)."""
        self.grads["W"][...] = self.x.T @ grad_out
        self.grads["b"][...] = grad_out.sum(axis=0)
        return grad_out @ self.params["W"].T

    def __repr__(self) -> str:
        n_in, n_out = self.params["W"].shape
        return f"Linear({n_in}, {n_out})"


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)); for x below about -88 (float32) exp overflows to inf and the result is 0, the limit."""
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y)."""

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.y = sigmoid(x)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * self.y * (1 - self.y)


class Tanh(Layer):
    """y = tanh(x); dy/dx = 1 - y^2."""

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * (1 - self.y ** 2)


class ReLU(Layer):
    """y = max(x, 0); the gradient passes where x > 0, which is where y > 0 (the backward tests y, kept)."""

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.y = np.maximum(x, 0)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * (self.y > 0)


class LeakyReLU(Layer):
    """y = x where x > 0, else slope * x; the gradient is multiplied by 1 where x > 0, else by slope.

    For a positive slope, y > 0 exactly where x > 0, so the backward tests y, which it keeps.
    """

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = slope

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.y = np.where(x > 0, x, self.slope * x)
        return self.y

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out * np.where(self.y > 0, 1, self.slope).astype(grad_out.dtype)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.slope})"


class Dropout(Layer):
    """Inverted dropout: in training, zero each unit with probability p and scale the others by 1 / (1 - p)."""

    def __init__(self, p: float, rng: np.random.Generator) -> None:
        super().__init__()
        self.p, self.rng = p, rng
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        if not train or self.p == 0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.p
        self.mask = keep.astype(x.dtype) / (1 - self.p)
        return x * self.mask

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out if self.mask is None else grad_out * self.mask

    def __repr__(self) -> str:
        return f"Dropout({self.p})"


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "leaky_relu": LeakyReLU}


class BatchNorm(Layer):
    """Batch normalization of each unit: y = gamma * (x - mean) / sqrt(var + eps) + beta.

    Training normalizes with the batch's own mean and (biased) variance and moves the running averages
    towards them, PyTorch's convention: running = (1 - momentum) * running + momentum * batch, momentum 0.1,
    the running variance unbiased (n / (n - 1)), eps 1e-5. Keras writes the same rule with its momentum
    0.99 = 1 - 0.01 for the old value (so it averages over ~100 batches, PyTorch over ~10) and eps 1e-3.
    Evaluation (train=False) normalizes with the running averages. `params` {"gamma", "beta"} are learnt;
    `state` {"running_mean", "running_var"} is not, but is saved with the model.
    """

    def __init__(self, n: int, dtype=np.float32, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.params = {"gamma": np.ones(n, dtype=dtype), "beta": np.zeros(n, dtype=dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.state = {"running_mean": np.zeros(n, dtype=dtype), "running_var": np.ones(n, dtype=dtype)}
        self.momentum, self.eps = momentum, eps

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """x: (batch, n) -> y: (batch, n)."""
        if train:
            mean, var = x.mean(axis=0), x.var(axis=0)
            n, m = len(x), self.momentum
            self.state["running_mean"][...] = (1 - m) * self.state["running_mean"] + m * mean
            self.state["running_var"][...] = (1 - m) * self.state["running_var"] + m * var * n / max(n - 1, 1)
        else:
            mean, var = self.state["running_mean"], self.state["running_var"]
        self.inv_std = 1 / np.sqrt(var + self.eps)
        self.x_hat = (x - mean) * self.inv_std
        return self.params["gamma"] * self.x_hat + self.params["beta"]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """dL/dy (batch, n) -> dL/dx, through the batch's mean and variance; fills dL/dgamma and dL/dbeta (n,)."""
        self.grads["gamma"][...] = (grad_out * self.x_hat).sum(axis=0)
        self.grads["beta"][...] = grad_out.sum(axis=0)
        d_hat = grad_out * self.params["gamma"]
        n = len(grad_out)
        return self.inv_std / n * (n * d_hat - d_hat.sum(axis=0) - self.x_hat * (d_hat * self.x_hat).sum(axis=0))

    def __repr__(self) -> str:
        return f"BatchNorm({len(self.params['gamma'])})"
