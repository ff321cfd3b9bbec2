"""Output activation + loss, taken together so that each pair has an exact, stable gradient.

Every loss takes `z`, the last Linear layer's output (batch, n_classes), and integer labels `t`
(batch,). `forward(z, t) -> float` is the mean over the batch of a sum over the outputs, and leaves
the output activation in `self.output`; `backward() -> dL/dz`, (batch, n_classes).
"""

from __future__ import annotations

import numpy as np

from engine.layers import sigmoid

OUTPUTS = ("sigmoid", "softmax", "linear")
LOSSES = ("mse", "cross_entropy")


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax; subtracting the row max first means exp never overflows."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def apply_output(z: np.ndarray, output: str) -> np.ndarray:
    """The output activation of logits z: the network's predictions."""
    if output == "sigmoid":
        return sigmoid(z)
    if output == "softmax":
        return softmax(z)
    return z.copy()


def one_hot(t: np.ndarray, k: int, dtype=np.float32) -> np.ndarray:
    """(batch,) integer labels -> (batch, k) one-hot rows."""
    T = np.zeros((len(t), k), dtype=dtype)
    T[np.arange(len(t)), t] = 1
    return T


class Loss:
    """Base: `forward(z, t)` sets `self.output`; `backward()` returns dL/dz."""

    output_name = ""

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(output={self.output_name!r})"


class SoftmaxCrossEntropy(Loss):
    """Categorical cross-entropy on softmax outputs, fused: dL/dz = (p - onehot(t)) / N.

    The loss is computed as logsumexp(z) - z[t], so it stays finite even where p[t] underflows to 0.
    """

    output_name = "softmax"

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        shifted = z - z.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(shifted).sum(axis=1))
        self.output, self.t = softmax(z), t
        return float(np.mean(log_sum - shifted[np.arange(len(t)), t]))

    def backward(self) -> np.ndarray:
        T = one_hot(self.t, self.output.shape[1], self.output.dtype)
        return (self.output - T) / len(self.t)


class SigmoidCrossEntropy(Loss):
    """Per-class binary cross-entropy on sigmoid outputs (as the NumPy notebook), fused: dL/dz = (y - T) / N.

    Computed from logits as max(z, 0) - z T + log(1 + exp(-|z|)), which never takes log(0).
    """

    output_name = "sigmoid"

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        self.T = one_hot(t, z.shape[1], z.dtype)
        self.output = sigmoid(z)
        per_unit = np.maximum(z, 0) - z * self.T + np.log1p(np.exp(-np.abs(z)))
        return float(per_unit.sum() / len(t))

    def backward(self) -> np.ndarray:
        return (self.output - self.T) / len(self.T)


class MeanSquaredError(Loss):
    """L = (1/N) sum_n sum_k (y_nk - T_nk)^2 with y the output activation of z; dL/dy = 2 (y - T) / N.

    The NumPy notebook prints mean((y - T)^2) over all N*K entries but back-propagates 2 (y - T) / N,
    ten times the gradient of what it prints. We keep loss and gradient consistent with the sum
    over outputs: the notebook's learning rate 3 then gives its learning dynamics, and the loss
    printed here is 10x the notebook's figure (for K = 10 classes).
    """

    def __init__(self, output: str) -> None:
        self.output_name = output

    def forward(self, z: np.ndarray, t: np.ndarray) -> float:
        self.output = apply_output(z, self.output_name)
        self.diff = self.output - one_hot(t, z.shape[1], z.dtype)
        return float(np.sum(self.diff ** 2) / len(t))

    def backward(self) -> np.ndarray:
        dy = 2 * self.diff / len(self.diff)  # dL/dy
        y = self.output
        if self.output_name == "sigmoid":
            return dy * y * (1 - y)
        if self.output_name == "softmax":  # the softmax Jacobian times dy: y * (dy - sum(dy * y))
            return y * (dy - np.sum(dy * y, axis=1, keepdims=True))
        return dy


def make_loss(loss: str, output: str) -> Loss:
    """The loss object for an (output activation, loss) pair; TrainConfig has already refused impossible pairs."""
    if loss == "mse":
        return MeanSquaredError(output)
    return SoftmaxCrossEntropy() if output == "softmax" else SigmoidCrossEntropy()
