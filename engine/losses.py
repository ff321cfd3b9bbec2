"""Output activation + loss, taken together so that each pair has an exact, stable gradient.

Every loss here takes `z`, the last Linear layer's output (n_ex, n_classes), and integer labels
`t` (n_ex,). `forward(z, t) -> float` also leaves the output activation in `self.output`;
`backward() -> dL/dz`. Losses are means over the batch of a sum over the outputs.
"""

from __future__ import annotations

import numpy as np

from engine.layers import Buffers, ones, sigmoid

OUTPUTS = ("sigmoid", "softmax", "linear")
LOSSES = ("mse", "cross_entropy")
OUTPUT_LABELS = {"sigmoid": "Sigmoid", "softmax": "Softmax", "linear": "Linear (identity)"}
LOSS_LABELS = {"mse": "Mean squared error", "cross_entropy": "Cross-entropy"}


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax; subtracts the row max first so exp never overflows."""
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= row_sums(out)[:, None]
    return out


def row_sums(a: np.ndarray) -> np.ndarray:
    """a.sum(axis=1) for a 2-D float array, as a @ ones: a reduction along rows of 10 outputs is
    NumPy's slowest case (64 x 10: 2.7 us, against 1.3 us for BLAS's matrix-vector product)."""
    return np.dot(a, ones(a.shape[1], a.dtype))


def apply_output(z: np.ndarray, output: str) -> np.ndarray:
    """The output activation as a fresh array (for predictions)."""
    if output == "sigmoid":
        return sigmoid(z)
    if output == "softmax":
        return softmax(z)
    return z.copy()


class Loss:
    """Base: subclasses set `self.output` in forward and return dL/dz from backward."""

    output_name = ""

    def __init__(self) -> None:
        self._buffers = Buffers()

    def _buffer(self, name: str, like: np.ndarray) -> np.ndarray:
        return self._buffers(name, like.shape, like.dtype)

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self, scale: float = 1.0) -> np.ndarray:
        """dL/dz times `scale` (a training loop may fold an optimizer's factor in: Optimizer.grad_scale)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(output={self.output_name!r})"


class SoftmaxCrossEntropy(Loss):
    """Categorical cross-entropy on softmax outputs, fused: dL/dz = (p - onehot(t)) / N.

    The loss is computed as logsumexp(z) - z[t], so it is finite even when p[t] underflows.
    """

    output_name = "softmax"

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        rows = np.arange(len(t))
        p = self._buffer("p", z)
        np.subtract(z, z.max(axis=1, keepdims=True), out=p)
        z_true = p[rows, t]  # shifted logit of the true class
        np.exp(p, out=p)
        s = row_sums(p)
        p /= s[:, None]
        self.output, self.t, self.rows = p, t, rows
        np.log(s, out=s)
        s -= z_true
        return float(np.add.reduce(s)) / len(t)

    def backward(self, scale: float = 1.0) -> np.ndarray:
        k = scale / len(self.t)
        g = self._buffer("g", self.output)
        np.multiply(self.output, k, out=g)
        g[self.rows, self.t] -= k
        return g


class SigmoidCrossEntropy(Loss):
    """Per-class binary cross-entropy on sigmoid outputs (as the NumPy notebook), fused: dL/dz = (y - T) / N.

    Computed from logits as max(z, 0) - z T + log(1 + exp(-|z|)), which never takes log(0).
    """

    output_name = "sigmoid"

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        T = one_hot(t, z.shape[1], z.dtype)
        self.output = sigmoid(z, out=self._buffer("y", z))
        self.T = T
        per_unit = np.maximum(z, 0) - z * T + np.log1p(np.exp(-np.abs(z)))
        return float(per_unit.sum() / len(t))

    def backward(self, scale: float = 1.0) -> np.ndarray:
        g = self._buffer("g", self.output)
        np.subtract(self.output, self.T, out=g)
        g *= scale / len(self.T)
        return g


class MeanSquaredError(Loss):
    """L = (1/N) sum_n sum_k (y_nk - T_nk)^2 with y the output activation of z; dL/dy = 2 (y - T) / N.

    The NumPy notebook prints mean((y - T)^2) over all N*K entries but back-propagates 2 (y - T) / N,
    ten times the gradient of what it prints. We keep loss and gradient consistent with the sum
    over outputs: the notebook's learning rate 3 then gives its learning dynamics, and the loss
    printed here is 10x the notebook's figure (for K = 10 classes).
    """

    def __init__(self, output: str) -> None:
        super().__init__()
        self.output_name = output

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        y = self._buffer("y", z)
        if self.output_name == "sigmoid":
            sigmoid(z, out=y)
        elif self.output_name == "softmax":
            softmax(z, out=y)
        else:
            np.copyto(y, z)
        self.output = y
        diff = self._buffer("g", z)
        np.subtract(y, one_hot(t, z.shape[1], z.dtype), out=diff)
        self.diff = diff
        return float(np.vdot(diff, diff) / len(t))

    def backward(self, scale: float = 1.0) -> np.ndarray:
        g = self.diff  # becomes dL/dz in place
        g *= 2 * scale / len(g)
        y = self.output
        if self.output_name == "sigmoid":
            g *= y * (1 - y)
        elif self.output_name == "softmax":  # Jacobian-vector product of softmax
            g -= np.sum(g * y, axis=1, keepdims=True)
            g *= y
        return g


def one_hot(t: np.ndarray, k: int, dtype=np.float32) -> np.ndarray:
    """(n,) integer labels -> (n, k) one-hot rows."""
    T = np.zeros((len(t), k), dtype=dtype)
    T[np.arange(len(t)), t] = 1
    return T


def make_loss(loss: str, output: str) -> Loss:
    """The loss object for an (output activation, loss) pair; impossible pairs are a ValueError."""
    if output not in OUTPUTS:
        raise ValueError(f"Unknown output activation {output!r}; choose one of {', '.join(OUTPUTS)}")
    if loss == "mse":
        return MeanSquaredError(output)
    if loss == "cross_entropy":
        if output == "softmax":
            return SoftmaxCrossEntropy()
        if output == "sigmoid":
            return SigmoidCrossEntropy()
        raise ValueError("Cross-entropy needs probabilities: pick a softmax or sigmoid output "
                         "(a linear output can only be trained with mean squared error).")
    raise ValueError(f"Unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
