"""TrainConfig (one object from sidebar to engine to saved run) and the tutorial presets."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from engine.data import INPUT_SCALINGS
from engine.layers import ACTIVATIONS
from engine.losses import LOSSES, OUTPUTS, make_loss
from engine.optim import OPTIMIZERS

INITS = ("notebook", "small", "xavier", "he", "pytorch")
INIT_LABELS = {
    "notebook": "Notebook: W, b ~ N(0, 1)",
    "small": "Small: W ~ N(0, 0.01²), b = 0",
    "xavier": "Xavier/Glorot uniform",
    "he": "He (Kaiming) normal",
    "pytorch": "PyTorch default: W, b ~ U(±1/√fan_in)",
}
BACKENDS = ("numpy", "torch")
DEVICES = ("auto", "cpu", "cuda", "mps")
DATASET_NAMES = ("mnist", "fashion-mnist", "digits")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; validated on construction."""

    dataset: str = "mnist"  # a name in engine.data.DATASETS
    hidden_sizes: tuple[int, ...] = (64, 16)  # widths of the hidden layers; () = softmax regression
    activation: str = "sigmoid"  # hidden activation: sigmoid, tanh, relu, leaky_relu
    output: str = "sigmoid"  # output activation: sigmoid, softmax, linear
    loss: str = "mse"  # mse or cross_entropy
    optimizer: str = "sgd"  # sgd, momentum, adam
    learning_rate: float = 3.0
    momentum: float = 0.9  # used by the momentum optimizer
    betas: tuple[float, float] = (0.9, 0.999)  # used by adam
    batch_size: int = 128
    epochs: int = 30
    init: str = "notebook"  # weight initialisation: notebook, small, xavier, he, pytorch
    input_scaling: str = "unit"  # unit: pixels / 255; standardize: then minus mean, over std
    l2: float = 0.0  # L2 weight decay on weights (not biases)
    dropout: float = 0.0  # probability of dropping a hidden unit during training
    val_split: float = 0.0  # fraction of the training set held out for validation
    train_limit: int | None = None  # train on a random subset of this many examples
    seed: int = 0
    backend: str = "numpy"  # numpy or torch
    device: str = "auto"  # torch backend only: auto, cpu, cuda, mps

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        _choice("dataset", self.dataset, DATASET_NAMES)
        _choice("activation", self.activation, tuple(ACTIVATIONS))
        _choice("output", self.output, OUTPUTS)
        _choice("loss", self.loss, LOSSES)
        _choice("optimizer", self.optimizer, tuple(OPTIMIZERS))
        _choice("init", self.init, INITS)
        _choice("input scaling", self.input_scaling, INPUT_SCALINGS)
        _choice("backend", self.backend, BACKENDS)
        _choice("device", self.device, DEVICES)
        check_network_size(self.hidden_sizes)
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"The learning rate must be a positive number (got {self.learning_rate}).")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"Momentum must be in [0, 1) (got {self.momentum}).")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"Adam's betas must be two numbers in [0, 1) (got {self.betas}).")
        if not 1 <= self.batch_size <= 60000:
            raise ValueError(f"The batch size must be between 1 and 60000 (got {self.batch_size}).")
        if not 1 <= self.epochs <= 1000:
            raise ValueError(f"Epochs must be between 1 and 1000 (got {self.epochs}).")
        if not (self.l2 >= 0 and math.isfinite(self.l2)):
            raise ValueError(f"L2 weight decay must be 0 or more (got {self.l2}).")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"Dropout must be in [0, 1) (got {self.dropout}).")
        if not 0 <= self.val_split < 1:
            raise ValueError(f"The validation split must be a fraction in [0, 1) (got {self.val_split}).")
        if self.train_limit is not None and self.train_limit < 1:
            raise ValueError(f"The training subset needs at least one example (got {self.train_limit}).")
        if self.seed < 0:
            raise ValueError(f"The seed must be 0 or more (got {self.seed}).")
        make_loss(self.loss, self.output)  # raises for an impossible pair

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"Unknown configuration field(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    @property
    def architecture(self) -> str:
        """Hidden widths as text, e.g. '64-16'."""
        return "-".join(str(s) for s in self.hidden_sizes) or "no hidden layer"

    def layers_text(self, n_in: int | str = 784, n_out: int | str = 10) -> str:
        """Every layer's width as text, e.g. '784-64-16-10'."""
        return "-".join(str(n) for n in (n_in, *self.hidden_sizes, n_out))


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Unknown {name} {value!r}; choose one of: {', '.join(allowed)}.")


MAX_UNITS = 8192  # per hidden layer
MAX_PARAMS = 50_000_000  # 200 MB of float32 weights; with gradients and Adam's two moments, 800 MB


def n_parameters(hidden_sizes: tuple[int, ...], n_in: int = 784, n_out: int = 10) -> int:
    sizes = (n_in, *hidden_sizes, n_out)
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def check_network_size(hidden_sizes: tuple[int, ...]) -> None:
    """A ValueError saying what is wrong when the hidden layers are empty, too wide or too many parameters.

    Counted for 28x28 inputs, the largest any dataset has, so a network's validity does not change with the dataset.
    The cap keeps a run (weights, gradients, Adam's moments) well inside memory beside other learners' runs.
    """
    if any(h < 1 for h in hidden_sizes):
        raise ValueError(f"Every hidden layer needs at least one unit (got {list(hidden_sizes)}).")
    if any(h > MAX_UNITS for h in hidden_sizes):
        raise ValueError(f"Hidden layers are limited to {MAX_UNITS} units each, to keep training interactive.")
    n = n_parameters(hidden_sizes)
    if n > MAX_PARAMS:
        raise ValueError(f"Hidden sizes: this network would have {n:,} parameters; the limit is {MAX_PARAMS:,} "
                         "(a run's weights, gradients and optimizer state must fit in memory beside other runs). "
                         "Use fewer or narrower layers.")


def parse_hidden_sizes(text: str) -> tuple[int, ...]:
    """'64,16' or '64 16' -> (64, 16); '' -> (); anything else is a ValueError that says what is wrong."""
    text = text.strip().rstrip(",")
    if not text:
        return ()
    sizes = []
    for part in re.split(r"\s*,\s*|\s+", text):
        if part == "":
            raise ValueError("Hidden sizes: an empty entry between commas; write sizes like 64,16.")
        if not part.isdigit():
            raise ValueError(f"Hidden sizes: {part!r} is not a whole number; write sizes like 64,16.")
        if int(part) == 0:
            raise ValueError("Hidden sizes: a layer of 0 units; every hidden layer needs at least one unit.")
        sizes.append(int(part))
    if len(sizes) > 10:
        raise ValueError("Hidden sizes: at most 10 hidden layers.")
    check_network_size(tuple(sizes))
    return tuple(sizes)


@dataclass(frozen=True)
class Preset:
    """A tutorial reproduced: its configuration and the test accuracy it reported."""

    name: str
    source: str
    reported: str
    config: TrainConfig = field(repr=False)


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("notebook-mse", "NumPy notebook: sigmoid MLP, mean squared error", "94.68%",
           TrainConfig(hidden_sizes=(64, 16), activation="sigmoid", output="sigmoid", loss="mse",
                       optimizer="sgd", learning_rate=3.0, batch_size=128, epochs=30, init="notebook")),
    Preset("notebook-ce", "NumPy notebook: sigmoid MLP, cross-entropy", "94.44%",
           TrainConfig(hidden_sizes=(64, 16), activation="sigmoid", output="sigmoid",
                       loss="cross_entropy", optimizer="sgd", learning_rate=0.5, batch_size=128,
                       epochs=30, init="notebook")),
    Preset("softmax-regression", "Softmax regression (no hidden layer)", "92.11%",
           TrainConfig(hidden_sizes=(), output="softmax", loss="cross_entropy", optimizer="sgd",
                       learning_rate=0.03, batch_size=64, epochs=2, init="pytorch", input_scaling="standardize")),
    Preset("pytorch-mlp", "PyTorch tutorial: ReLU MLP", "~98%",
           TrainConfig(hidden_sizes=(256, 128, 64), activation="relu", output="softmax",
                       loss="cross_entropy", optimizer="sgd", learning_rate=0.03, batch_size=64,
                       epochs=10, init="he", input_scaling="standardize")),
    Preset("keras-mlp", "Keras: one wide ReLU layer, Adam", "98.11%",
           TrainConfig(hidden_sizes=(1000,), activation="relu", output="softmax",
                       loss="cross_entropy", optimizer="adam", learning_rate=1e-3, batch_size=100,
                       epochs=10, init="xavier")),
    Preset("twolayernet", "TwoLayerNet (with numerical gradient check)", "not reported (~97%)",
           TrainConfig(hidden_sizes=(50,), activation="relu", output="softmax", loss="cross_entropy",
                       optimizer="sgd", learning_rate=0.1, batch_size=100, epochs=17, init="small")),
]}
