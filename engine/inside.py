"""One input through the network, at any snapshot: every layer's activations, the output, which pixels pushed it
to its answer (saliency), its nearest training images, and each output's gradient under MSE and cross-entropy.

Pure functions on an MLP (build one from a snapshot with `model_at`) and arrays; NumPy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.config import TrainConfig
from engine.layers import Dropout, Linear
from engine.losses import apply_output, make_loss
from engine.model import MLP, build_model
from engine.train import ACTIVATION_TYPES

NEAREST_CHUNK = 8192  # training rows converted to float at a time when searching for the nearest images


def model_at(cfg: TrainConfig, weights: list[np.ndarray], n_features: int, n_classes: int,
             dtype=np.float64) -> MLP:
    """A separate network holding `weights` (a snapshot, in get_weights order), in float64 by default."""
    model = build_model(cfg, n_features, n_classes, dtype=dtype)
    model.set_weights(weights)
    return model


def is_dense(model: MLP) -> bool:
    """Only Linear layers, activations and dropout: the networks this module's pictures of layers describe."""
    return all(isinstance(layer, (Linear, Dropout, *ACTIVATION_TYPES)) for layer in model.layers)


@dataclass(frozen=True)
class LayerTrace:
    """One Linear layer on a batch: its output z = x @ W + b and its activation a (the output activation for the
    last layer), both (rows, units)."""

    z: np.ndarray
    a: np.ndarray


def trace(model: MLP, x: np.ndarray) -> list[LayerTrace]:
    """Every Linear layer's output and activation for inputs x (rows, n_in) already scaled, dropout off."""
    out: list[LayerTrace] = []
    h = x.astype(model.dtype, copy=False)
    z = h
    for layer in model.layers:
        h = layer.forward(h, train=False)
        if isinstance(layer, Linear):
            z = h
            out.append(LayerTrace(z, z))
        elif h is not z:  # an activation (dropout at evaluation passes its input through)
            out[-1] = LayerTrace(z, h)
    out[-1] = LayerTrace(z, apply_output(z, model.loss.output_name))
    return out


def class_score_gradient(model: MLP, x: np.ndarray, cls: int) -> np.ndarray:
    """d z_cls / dx for each row of x (rows, n_in): the gradient of class `cls`'s score (its logit) with respect
    to the network's input, by back-propagation through the model's own layers. Its size per pixel is the
    saliency map; x * gradient is 'input times gradient'."""
    z = model.forward(x.astype(model.dtype, copy=False), train=False)
    grad = np.zeros_like(z)
    grad[:, cls] = 1
    for layer in reversed(model.layers):
        grad = layer.backward(grad)
    return grad


@dataclass(frozen=True)
class Journey:
    """One input through the network: each layer's trace, the output, and the explained class's input gradient."""

    layers: list[LayerTrace]  # one per Linear layer, each for the one row
    probs: np.ndarray  # (n_classes,) the output activation
    cls: int  # the class explained: the prediction unless one was chosen
    gradient: np.ndarray  # (n_in,) d z_cls / dx
    input_times_gradient: np.ndarray  # (n_in,) x * d z_cls / dx

    @property
    def prediction(self) -> int:
        return int(self.probs.argmax())


def journey(model: MLP, x: np.ndarray, cls: int | None = None) -> Journey:
    """x: one scaled input (n_in,); cls: the class whose score to explain (None: the predicted one)."""
    row = x.reshape(1, -1).astype(model.dtype, copy=False)
    layers = [LayerTrace(t.z[0], t.a[0]) for t in trace(model, row)]
    probs = layers[-1].a
    cls = int(probs.argmax()) if cls is None else int(cls)
    gradient = class_score_gradient(model, row, cls)[0]
    return Journey(layers, probs, cls, gradient, row[0] * gradient)


def nearest(pixels: np.ndarray, x: np.ndarray, k: int = 8) -> np.ndarray:
    """Indices of the k rows of `pixels` (n, d) nearest to image x (d,) in Euclidean pixel distance, nearest first.

    One pass over the rows in float32 chunks, which hold every product of two pixels exactly; a 28x28 image's
    sums round by a few units in 10^7 (the distances between different images differ by thousands).
    """
    x = x.astype(np.float32)
    dist = np.empty(len(pixels), dtype=np.float32)
    for i in range(0, len(pixels), NEAREST_CHUNK):
        c = pixels[i:i + NEAREST_CHUNK].astype(np.float32)
        dist[i:i + len(c)] = np.einsum("ij,ij->i", c, c) - 2 * (c @ x)  # ||c - x||^2 - ||x||^2
    k = min(k, len(dist))
    top = np.argpartition(dist, k - 1)[:k]
    return top[np.argsort(dist[top], kind="stable")]


def output_gradients(model: MLP, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """Each output's |dL/dz| for one example under mean squared error and under cross-entropy, for inputs x
    (rows, n_in) and labels t (rows,), with the model's own output activation (sigmoid or softmax).

    Returns 'output' y (rows, k), 'target' (rows, k) one-hot, 'mse' and 'cross_entropy' (rows, k): the losses'
    batch gradients times the number of rows, i.e. per example.
    """
    output = model.loss.output_name
    z = model.forward(x.astype(model.dtype, copy=False), train=False)
    grads = {}
    for name in ("mse", "cross_entropy"):
        loss = make_loss(name, output)
        loss.forward(z, t)
        grads[name] = np.abs(loss.backward()) * len(t)
    target = np.zeros_like(z)
    target[np.arange(len(t)), t] = 1
    return dict(output=apply_output(z, output), target=target, **grads)


def unit_inputs(model: MLP, x: np.ndarray, unit: int) -> np.ndarray:
    """The first Linear layer's output z for one unit over inputs x (rows, n_in), in x's dtype: how much each
    input excites it."""
    first = model.linears[0]
    return x @ first.params["W"][:, unit].astype(x.dtype) + x.dtype.type(first.params["b"][unit])


def strongest_contributions(a: np.ndarray, W: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                            per_target: int = 3) -> list[tuple[int, int, float]]:
    """The largest terms a_i W_ij of each target unit j's input, among source units `rows` and targets `cols`:
    (i, j, a_i W_ij) for the `per_target` largest |a_i W_ij| of each j."""
    terms = a[rows, None] * W[np.ix_(rows, cols)]  # (len(rows), len(cols))
    out = []
    for c, j in enumerate(cols):
        for r in np.argsort(-np.abs(terms[:, c]), kind="stable")[:per_target]:
            out.append((int(rows[r]), int(j), float(terms[r, c])))
    return out
