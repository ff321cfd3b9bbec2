"""The fast twin of a textbook MLP: the same parameter arrays, fast layers and loss around them."""

from __future__ import annotations

import math

import numpy as np

from engine import layers as textbook
from engine.conv import IMAGE_LAYERS
from engine.fast.conv import image_twin
from engine.fast.layers import (
    FastBatchNorm,
    FastDropout,
    FastLeakyReLU,
    FastLinear,
    FastReLU,
    FastSigmoid,
    FastTanh,
)
from engine.fast.losses import fast_loss
from engine.model import MLP


def fast_twin(layer: textbook.Layer, needs_input_grad: bool = True) -> textbook.Layer:
    """The fast layer computing what `layer` computes, sharing its parameter arrays (and dropout's generator)."""
    if isinstance(layer, textbook.Linear):
        return FastLinear(layer.params["W"], layer.params["b"], needs_input_grad)
    if isinstance(layer, textbook.LeakyReLU):
        return FastLeakyReLU(layer.slope)
    if isinstance(layer, textbook.Dropout):
        return FastDropout(layer.p, layer.rng)
    if isinstance(layer, textbook.BatchNorm):
        return FastBatchNorm(layer)
    if isinstance(layer, IMAGE_LAYERS):
        return image_twin(layer, needs_input_grad)
    return TWINS[type(layer)]()


TWINS = {textbook.Sigmoid: FastSigmoid, textbook.Tanh: FastTanh, textbook.ReLU: FastReLU}


class FastMLP(MLP):
    """An MLP of fast layers; its (param, gradient) pairs are the layers' `scaled_grads`."""

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(layer.params[k], layer.scaled_grads[k]) for layer in self.layers for k in layer.params]

    def backward(self, grad: np.ndarray) -> None:
        """As MLP.backward, stopping at the first layer, which computes no dL/dx."""
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
            if grad is None:
                break

    def train_step_loss(self, x: np.ndarray, t: np.ndarray, grad_scale: float = 1.0) -> float:
        """Forward, loss and backward for one batch; returns the batch loss. The gradients are grad_scale times
        dL/dθ (see engine/fast/optim.py)."""
        value = self.loss.forward(self.forward(x, train=True), t)
        if math.isfinite(value):  # a diverged batch computes no gradients (layers may update in backward)
            self.backward(self.loss.backward(grad_scale))
        return value


def twin(model: MLP) -> FastMLP:
    """The fast network computing what `model` computes, sharing its parameter arrays."""
    first = next(layer for layer in model.layers if layer.params)  # computes no dL/dx
    layers = [fast_twin(layer, needs_input_grad=layer is not first) for layer in model.layers]
    return FastMLP(layers, fast_loss(model.loss), model.config)
