"""Convolutional layers, the textbook way: a convolution is one matrix product over image patches (im2col).

Images are (batch, channels, height, width), as PyTorch lays them out. The layers keep engine/layers.py's
contract: `forward(x, train)` keeps what `backward` needs; `backward(grad_out) -> grad_in` fills `grads`;
`params` and `grads` are dicts with the same keys. Weight layout: a Conv2D's W is (filters, channels, k, k),
as torch.nn.Conv2d's: W[f] is filter f, one k x k image per input channel; b is (filters,).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.config import LayerSpec
from engine.layers import Layer


def same_padding(kernel: int) -> tuple[int, int]:
    """(before, after) rows of zeros keeping the image's size: k - 1 in all, the extra one after (as Keras, PyTorch)."""
    return (kernel - 1) // 2, kernel // 2


def conv_weights(init: str, channels: int, kernel: int, filters: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) in float64, W (filters, channels, k, k), by the named scheme of engine.model.INITS.

    A filter sees fan_in = channels k^2 inputs and sends to fan_out = filters k^2 (as Keras counts for Glorot).
    """
    shape, fan_in, fan_out = (filters, channels, kernel, kernel), channels * kernel ** 2, filters * kernel ** 2
    if init == "notebook":
        return rng.standard_normal(shape), rng.standard_normal(filters)
    if init == "small":
        return 0.01 * rng.standard_normal(shape), np.zeros(filters)
    if init == "xavier":
        limit = np.sqrt(6 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape), np.zeros(filters)
    if init == "he":
        return np.sqrt(2 / fan_in) * rng.standard_normal(shape), np.zeros(filters)
    if init == "pytorch":  # torch.nn.Conv2d's default, as torch.nn.Linear's
        bound = 1 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape), rng.uniform(-bound, bound, filters)
    raise ValueError(f"Unknown initialisation {init!r}")


class Conv2D(Layer):
    """y[n, f] = sum over channels c of x[n, c] cross-correlated with W[f, c], plus b[f]; stride 1.

    'same' pads the image with zeros so y has x's height and width; 'valid' does not pad, so each side
    shrinks by k - 1. Computed as im2col: every k x k patch of the padded input becomes a row of
    `cols` (batch * out_h * out_w, channels * k * k), and y is cols @ W as a (channels * k * k, filters)
    matrix: one product. Backward: dW = cols.T @ dy, db = sum of dy, and dx adds each patch's
    gradient dy @ W.T back where the patch came from (col2im).
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, padding: str = "same") -> None:
        super().__init__()
        if padding not in ("same", "valid"):
            raise ValueError(f"Padding must be 'same' or 'valid' (got {padding!r})")
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}
        self.padding = padding
        self.kernel = W.shape[2]
        self.pad = same_padding(self.kernel) if padding == "same" else (0, 0)

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """x: (batch, channels, h, w) -> y: (batch, filters, out_h, out_w)."""
        W = self.params["W"]
        n, c, h, w = x.shape
        k, (lo, hi) = self.kernel, self.pad
        padded = np.pad(x, ((0, 0), (0, 0), (lo, hi), (lo, hi)))
        windows = sliding_window_view(padded, (k, k), axis=(2, 3))  # (batch, c, out_h, out_w, k, k), no copy
        out_h, out_w = windows.shape[2:4]
        self.cols = windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, c * k * k)  # the copy
        self.x_shape = x.shape
        y = self.cols @ W.reshape(len(W), -1).T + self.params["b"]  # (batch * out_h * out_w, filters)
        return y.reshape(n, out_h, out_w, len(W)).transpose(0, 3, 1, 2)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out: (batch, filters, out_h, out_w) -> dL/dx: (batch, channels, h, w); fills dL/dW and dL/db."""
        W = self.params["W"]
        f, c, k, _ = W.shape
        n, _, h, w = self.x_shape
        out_h, out_w = grad_out.shape[2:]
        g = grad_out.transpose(0, 2, 3, 1).reshape(-1, f)  # (batch * out_h * out_w, filters)
        self.grads["W"][...] = (g.T @ self.cols).reshape(W.shape)
        self.grads["b"][...] = g.sum(axis=0)
        dcols = (g @ W.reshape(f, -1)).reshape(n, out_h, out_w, c, k, k)
        lo, hi = self.pad
        dpadded = np.zeros((n, c, h + lo + hi, w + lo + hi), dtype=grad_out.dtype)
        for i in range(k):  # col2im: kernel offset (i, j) of every patch lands on the input shifted by (i, j)
            for j in range(k):
                dpadded[:, :, i:i + out_h, j:j + out_w] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
        return dpadded[:, :, lo:lo + h, lo:lo + w]

    def __repr__(self) -> str:
        f, c, k, _ = self.params["W"].shape
        return f"Conv2D({c}, {f}, {k}x{k}, {self.padding!r})"


class MaxPool2D(Layer):
    """The largest value of each size x size block (stride = size); rows and columns left over are dropped.

    The gradient of a block goes to the element that was its maximum. In a tie it goes to the first of
    them in row-major order (top row first, then left to right), as PyTorch's max_pool2d does, and a NaN
    counts as the maximum. The dropped rows and columns get zero gradient.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """x: (batch, channels, h, w) -> y: (batch, channels, h // size, w // size)."""
        s = self.size
        n, c, h, w = x.shape
        out_h, out_w = h // s, w // s
        blocks = x[:, :, :out_h * s, :out_w * s].reshape(n, c, out_h, s, out_w, s)
        blocks = blocks.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, out_h, out_w, s * s)
        self.argmax = blocks.argmax(axis=-1)  # the first maximum (or NaN) of each block, in row-major order
        self.x_shape = x.shape
        return np.take_along_axis(blocks, self.argmax[..., None], axis=-1)[..., 0]

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """grad_out: (batch, channels, out_h, out_w) -> dL/dx: (batch, channels, h, w), nonzero at the maxima."""
        s = self.size
        n, c, h, w = self.x_shape
        out_h, out_w = grad_out.shape[2:]
        winner = self.argmax[..., None] == np.arange(s * s)  # (batch, c, out_h, out_w, s*s) one-hot
        blocks = (winner * grad_out[..., None]).reshape(n, c, out_h, out_w, s, s).transpose(0, 1, 2, 4, 3, 5)
        dx = np.zeros(self.x_shape, dtype=grad_out.dtype)
        dx[:, :, :out_h * s, :out_w * s] = blocks.reshape(n, c, out_h * s, out_w * s)
        return dx

    def __repr__(self) -> str:
        return f"MaxPool2D({self.size})"


class ToImages(Layer):
    """The network's input rows as images: (batch, side * side) -> (batch, 1, side, side); back again for grads."""

    def __init__(self, side: int) -> None:
        super().__init__()
        self.side = side

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        return x.reshape(len(x), 1, self.side, self.side)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(len(grad_out), -1)

    def __repr__(self) -> str:
        return f"ToImages({self.side}x{self.side})"


class Flatten(Layer):
    """Images to rows for the dense layers: (batch, channels, h, w) -> (batch, channels * h * w), channel-major."""

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.x_shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return grad_out.reshape(self.x_shape)


IMAGE_LAYERS = (ToImages, Conv2D, MaxPool2D, Flatten)  # the layers of this module, which engine/fast/conv.py twins


def add_image_layer(layers: list[Layer], spec: LayerSpec, image: tuple[int, int], init: str, activation: type[Layer],
                    rng: np.random.Generator, dtype) -> tuple[int, int]:
    """Append the layers of a conv (Conv2D -> activation) or pool LayerSpec to `layers`, with weights drawn from rng.

    `image`: (channels, side) of the images the layer takes; returns those it passes on.
    """
    channels, side = image
    if spec.kind == "pool":
        layers.append(MaxPool2D(spec.size))
        return channels, side // spec.size
    W, b = conv_weights(init, channels, spec.kernel, spec.size, rng)
    layers += [Conv2D(W.astype(dtype), b.astype(dtype), spec.padding), activation()]
    return spec.size, side if spec.padding == "same" else side - spec.kernel + 1

