"""The convolutional layers (engine/conv.py) made fast: the same maths, with images kept channel-last in memory.

The textbook layers transpose every image between (batch, channels, h, w) and the patch matrix. Here a
Conv2D writes its output as (batch, h, w, filters) in memory and hands on a (batch, filters, h, w) view
of it, which the ReLU (in place), the pooling and the next convolution read without a copy; patches
are ordered (i, j, channel), so gathering them reads runs of channels; buffers are kept per batch
shape. The first convolution computes no dL/dx. Gradients are `scaled_grads`, as engine/fast/layers.py
says. Tests hold each twin equal to its textbook layer (tests/test_conv.py).
"""

from __future__ import annotations

import copy

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine.conv import Conv2D, MaxPool2D
from engine.fast.layers import Buffered, column_sums


def channels_last(x: np.ndarray) -> np.ndarray:
    """A (batch, channels, h, w) array as (batch, h, w, channels): a view, contiguous when x came from here."""
    return x.transpose(0, 2, 3, 1)


class FastConv2D(Buffered, Conv2D):
    """Conv2D on channel-last buffers, sharing the textbook layer's W and b; one product each way."""

    def __init__(self, layer: Conv2D, needs_input_grad: bool = True) -> None:
        super().__init__(layer.params["W"], layer.params["b"], layer.padding)
        del self.grads  # a twin's gradients are scaled_grads
        self.scaled_grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.needs_input_grad = needs_input_grad

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """x: (batch, channels, h, w), any memory order -> (batch, filters, out_h, out_w), channel-last in memory."""
        W = self.params["W"]
        f, c, k, _ = W.shape
        n, _, h, w = x.shape
        lo, hi = self.pad
        padded = self._buffer("padded", (n, h + lo + hi, w + lo + hi, c), W.dtype)
        for border in (padded[:, :lo], padded[:, lo + h:], padded[:, :, :lo], padded[:, :, lo + w:]):
            border[...] = 0
        padded[:, lo:lo + h, lo:lo + w] = channels_last(x)
        out_h, out_w = h + lo + hi - k + 1, w + lo + hi - k + 1
        cols = self._buffer("cols", (n, out_h, out_w, k, k, c), W.dtype)  # patches, (i, j, channel) in a row
        np.copyto(cols, sliding_window_view(padded, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3))
        self.cols, self.x_shape = cols.reshape(n * out_h * out_w, k * k * c), x.shape
        self.W_rows = W.transpose(0, 2, 3, 1).reshape(f, k * k * c)  # W in the patches' order (a copy)
        y = self._buffer("out", (n * out_h * out_w, f), W.dtype)
        np.matmul(self.cols, self.W_rows.T, out=y)
        y += self.params["b"]
        return y.reshape(n, out_h, out_w, f).transpose(0, 3, 1, 2)

    def backward(self, grad_out: np.ndarray) -> np.ndarray | None:
        f, c, k, _ = self.params["W"].shape
        n, _, h, w = self.x_shape
        out_h, out_w = grad_out.shape[2:]
        g = np.ascontiguousarray(channels_last(grad_out)).reshape(-1, f)  # no copy when it came from here
        dW = self._buffer("dW", (f, k * k * c), g.dtype)
        np.matmul(g.T, self.cols, out=dW)
        self.scaled_grads["W"][...] = dW.reshape(f, k, k, c).transpose(0, 3, 1, 2)
        column_sums(g, out=self.scaled_grads["b"])
        if not self.needs_input_grad:
            return None
        dcols = self._buffer("dcols", (n * out_h * out_w, k * k * c), g.dtype)
        np.matmul(g, self.W_rows, out=dcols)
        dcols = dcols.reshape(n, out_h, out_w, k, k, c)
        lo, hi = self.pad
        dpadded = self._buffer("dpadded", (n, h + lo + hi, w + lo + hi, c), g.dtype)
        dpadded[...] = 0
        for i in range(k):
            for j in range(k):
                dpadded[:, i:i + out_h, j:j + out_w] += dcols[:, :, :, i, j]
        return dpadded[:, lo:lo + h, lo:lo + w].transpose(0, 3, 1, 2)


class FastMaxPool2D(Buffered, MaxPool2D):
    """MaxPool2D on channel-last buffers: the maximum over the size^2 strided slices, kept in order.

    A block's gradient goes to the first of its maxima in row-major order, as in the textbook layer (a
    later element is taken only when strictly larger). A block holding NaN may send it elsewhere than the
    textbook layer does: the loss is then NaN and training stops.
    """

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """x: (batch, channels, h, w) -> (batch, channels, h // size, w // size), channel-last in memory."""
        s = self.size
        n, c, h, w = x.shape
        out_h, out_w = h // s, w // s
        a = channels_last(x)
        y = self._buffer("out", (n, out_h, out_w, c), x.dtype)
        which = self._buffer("which", (n, out_h, out_w, c), np.dtype(np.uint16))  # offset i * s + j of the max
        larger = self._buffer("larger", (n, out_h, out_w, c), np.dtype(bool))
        taken = self._buffer("taken", (n, out_h, out_w, c), np.dtype(np.uint16))
        y[...] = a[:, 0:out_h * s:s, 0:out_w * s:s]
        which[...] = 0
        for offset in range(1, s * s):  # whole-array passes: 6x faster than copyto(..., where=larger)
            i, j = divmod(offset, s)
            candidate = a[:, i:out_h * s:s, j:out_w * s:s]
            np.greater(candidate, y, out=larger)
            np.maximum(y, candidate, out=y)
            np.multiply(larger, np.uint16(offset), out=taken)
            np.maximum(which, taken, out=which)  # offsets grow: a strictly larger element's offset wins
        self.which, self.x_shape = which, x.shape
        return y.transpose(0, 3, 1, 2)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        s = self.size
        n, c, h, w = self.x_shape
        out_h, out_w = grad_out.shape[2:]
        g = channels_last(grad_out)
        dx = self._buffer("dx", (n, h, w, c), grad_out.dtype)
        if h % s or w % s:
            dx[...] = 0  # rows and columns the pooling dropped
        for offset in range(s * s):
            i, j = divmod(offset, s)
            np.multiply(g, self.which == offset, out=dx[:, i:out_h * s:s, j:out_w * s:s])
        return dx.transpose(0, 3, 1, 2)


def image_twin(layer, needs_input_grad: bool = True):
    """The fast twin of an image layer (engine/conv.py); ToImages and Flatten, which only reshape, are copied."""
    if isinstance(layer, Conv2D):
        return FastConv2D(layer, needs_input_grad)
    if isinstance(layer, MaxPool2D):
        return FastMaxPool2D(layer.size)
    return copy.copy(layer)
