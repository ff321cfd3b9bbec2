"""PyTorch for any network the engine builds: each engine layer mapped to torch ops, trained with autograd.

torch_backend.py's TorchMLP is written by hand for dense MLPs (its own backward pass, fused kernels, CUDA
graphs). Networks it does not compute (convolutions, pooling, dropout layers of their own) train here:
the engine model's layers are walked in order and each becomes a function `forward(x, train) -> y` of
torch ops, with a torch parameter per engine parameter starting from the same values; torch.optim
(SGD, momentum or Adam, L2 on weights only, as engine/optim.py) steps them in the engine's batch order,
and after every epoch the weights and the last batch's gradients are copied back into the engine model,
so every view of the run sees them. Dropout draws from a torch.Generator seeded as TorchMLP's.

TO ADD A LAYER: write a builder `(layer, net) -> forward` and register it in TORCH_LAYERS under the engine
layer's class (an exact-class lookup). Inside a builder, `net.param(layer, "W")` gives the torch
parameter of `layer.params["W"]` (trained, copied back with its gradient), `net.state(layer, "name")`
a tensor for an array the layer keeps outside `params` (updated in place by your forward, copied back,
e.g. batch norm's `layer.state["running_mean"]`), and `net.gen` the dropout generator. For example:

    def _batch_norm(layer, net):
        gamma, beta = net.param(layer, "gamma"), net.param(layer, "beta")
        mean, var = net.state(layer, "running_mean"), net.state(layer, "running_var")
        return lambda x, train: F.batch_norm(x, mean, var, gamma, beta, train, layer.momentum, layer.eps)

    TORCH_LAYERS[BatchNorm] = _batch_norm
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from engine.backends.torch_backend import TorchMLP, evaluate, torch_fit
from engine.config import TrainConfig
from engine.conv import Conv2D, Flatten, MaxPool2D, ToImages
from engine.data import Dataset
from engine.layers import ACTIVATIONS, BatchNorm, Dropout, Layer, LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from engine.model import MLP, seed_streams
from engine.train import Checkpoint, EpochResult, OnBatch, OnCheckpoint, ShouldStop, make_splits

Forward = Callable[[torch.Tensor, bool], torch.Tensor]
EVAL_ROWS = 1024  # rows per forward pass when evaluating: a convolution's images take much memory


class TorchNet:
    """The engine model's layers as torch functions, with a torch tensor for each engine array they use."""

    def __init__(self, cfg: TrainConfig, model: MLP, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.params: list[tuple[np.ndarray, np.ndarray | None, torch.Tensor]] = []  # (array, its grad, tensor)
        self.states: list[tuple[np.ndarray, torch.Tensor]] = []
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(int(seed_streams(cfg.seed)["dropout"].generate_state(1)[0]))
        unknown = [type(layer).__name__ for layer in model.layers if type(layer) not in TORCH_LAYERS]
        if unknown:
            raise ValueError(f"The torch backend cannot compute {', '.join(sorted(set(unknown)))} layers yet.")
        self.layers = [TORCH_LAYERS[type(layer)](layer, self) for layer in model.layers]
        self.n_classes = model.linears[-1].params["W"].shape[1]

    def param(self, layer: Layer, key: str) -> torch.Tensor:
        """A trainable copy of layer.params[key] on the device; copied back, with its gradient, by copy_to."""
        tensor = torch.tensor(layer.params[key], device=self.device, requires_grad=True)
        self.params.append((layer.params[key], layer.grads.get(key) if hasattr(layer, "grads") else None, tensor))
        return tensor

    def state(self, layer: Layer, key: str) -> torch.Tensor:
        """A copy of layer.state[key] on the device, for a forward to update in place; copied back by copy_to."""
        tensor = torch.tensor(layer.state[key], device=self.device)
        self.states.append((layer.state[key], tensor))
        return tensor

    def forward(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        """x: (batch, n_features) -> logits (batch, n_classes)."""
        for layer in self.layers:
            x = layer(x, train)
        return x

    loss = TorchMLP.loss  # the engine's losses as TorchMLP computes them (it reads self.cfg only)

    def optimizer(self) -> torch.optim.Optimizer:
        """torch.optim's rule for the config, with L2 on the weights only (tensors of 2 or more dimensions)."""
        cfg = self.cfg
        tensors = [t for _, _, t in self.params]
        groups = [{"params": [t for t in tensors if t.ndim >= 2], "weight_decay": cfg.l2},
                  {"params": [t for t in tensors if t.ndim < 2], "weight_decay": 0.0}]
        if cfg.optimizer == "adam":
            return torch.optim.Adam(groups, lr=cfg.learning_rate, betas=cfg.betas, eps=1e-8)
        momentum = cfg.momentum if cfg.optimizer == "momentum" else 0.0
        return torch.optim.SGD(groups, lr=cfg.learning_rate, momentum=momentum)

    @torch.no_grad()
    def copy_to(self, model: MLP) -> None:
        """Parameters, their last gradients and the layers' state back into the engine model's arrays."""
        for array, grad, tensor in self.params:
            array[...] = tensor.detach().cpu().numpy()
            if grad is not None and tensor.grad is not None:
                grad[...] = tensor.grad.cpu().numpy()
        for array, tensor in self.states:
            array[...] = tensor.cpu().numpy()

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float, np.ndarray]:
        """Mean loss, accuracy and the (n_classes, n_classes) confusion counts, row = true class."""
        return evaluate(self, x, y, self.n_classes, EVAL_ROWS)


# ---------------------------------------------------------------- the registry: engine layer class -> builder


def _linear(layer: Linear, net: TorchNet) -> Forward:
    W, b = net.param(layer, "W"), net.param(layer, "b")  # W (n_in, n_out), as the engine's
    return lambda x, train: torch.addmm(b, x, W)


def _dropout(layer: Dropout, net: TorchNet) -> Forward:
    p = layer.p

    def forward(x: torch.Tensor, train: bool) -> torch.Tensor:
        if not train or p == 0:
            return x
        keep = torch.rand(x.shape, generator=net.gen, device=x.device) >= p
        return x * keep / (1 - p)
    return forward


def _conv2d(layer: Conv2D, net: TorchNet) -> Forward:
    W, b = net.param(layer, "W"), net.param(layer, "b")  # W (filters, channels, k, k), as torch's
    lo, hi = layer.pad  # 'same': k - 1 rows and columns of zeros, the extra one after (engine.conv.same_padding)
    if lo == hi:
        return lambda x, train: F.conv2d(x, W, b, padding=lo)
    return lambda x, train: F.conv2d(F.pad(x, (lo, hi, lo, hi)), W, b)


def _max_pool(layer: MaxPool2D, net: TorchNet) -> Forward:
    return lambda x, train: F.max_pool2d(x, layer.size)


def _to_images(layer: ToImages, net: TorchNet) -> Forward:
    return lambda x, train: x.reshape(len(x), 1, layer.side, layer.side)


def _flatten(layer: Flatten, net: TorchNet) -> Forward:
    return lambda x, train: x.flatten(1)


def _leaky_relu(layer: LeakyReLU, net: TorchNet) -> Forward:
    return lambda x, train: F.leaky_relu(x, layer.slope)


TORCH_LAYERS: dict[type, Callable[[Layer, TorchNet], Forward]] = {
    Linear: _linear,
    Sigmoid: lambda layer, net: lambda x, train: torch.sigmoid(x),
    Tanh: lambda layer, net: lambda x, train: torch.tanh(x),
    ReLU: lambda layer, net: lambda x, train: F.relu(x),
    LeakyReLU: _leaky_relu,
    Dropout: _dropout,
    Conv2D: _conv2d,
    MaxPool2D: _max_pool,
    ToImages: _to_images,
    Flatten: _flatten,
}


def _batch_norm(layer: BatchNorm, net: TorchNet) -> Forward:
    """F.batch_norm with the running averages kept as engine.layers.BatchNorm keeps them (momentum 0.1, PyTorch's)."""
    gamma, beta = net.param(layer, "gamma"), net.param(layer, "beta")
    mean, var = net.state(layer, "running_mean"), net.state(layer, "running_var")
    return lambda x, train: F.batch_norm(x, mean, var, gamma, beta, train, layer.momentum, layer.eps)


TORCH_LAYERS[BatchNorm] = _batch_norm


def dense_path_fits(model: MLP) -> bool:
    """Whether torch_backend's hand-written MLP computes this model: Linear layers, activations, and the config's
    dropout after each activation; anything else trains here."""
    dropout = model.config.dropout if model.config else 0.0
    return all(isinstance(layer, (Linear, *ACTIVATIONS.values())) or isinstance(layer, Dropout) and layer.p == dropout
               for layer in model.layers)


def generic_train(cfg: TrainConfig, data: Dataset, model: MLP, device: torch.device,
                  should_stop: ShouldStop | None = None, on_batch: OnBatch | None = None,
                  resume: Checkpoint | None = None, on_checkpoint: OnCheckpoint | None = None) -> Iterator[EpochResult]:
    """torch_backend.torch_train's contract for any model: autograd and torch.optim, the engine's batch order."""
    splits = make_splits(cfg, data)
    net = TorchNet(cfg, model, device)
    optimizer = net.optimizer()

    def put(a):
        return torch.tensor(a, device=device)  # a copy: dataset arrays are read-only

    X, Y = put(splits.x_train), put(splits.y_train)
    evals = {"train": (X, Y), "test": (put(splits.x_test), put(splits.y_test))}
    if splits.x_val is not None:
        evals["val"] = (put(splits.x_val), put(splits.y_val))

    def step(sel: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        net.loss(net.forward(X[sel], train=True), Y[sel]).backward()
        optimizer.step()

    by_array = {id(array): tensor for array, _, tensor in net.params}
    params = [by_array[id(a)] for a, _ in model.parameters()]  # in the model's parameter order
    yield from torch_fit(cfg, model, splits, net, step, evals, (params, [optimizer.state[p] for p in params]),
                         should_stop, on_batch, resume, on_checkpoint)
