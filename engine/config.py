"""TrainConfig: one object from sidebar to engine to saved run, and the tutorial presets.

Each field carries its own description (dataclass field metadata): a label and help text, its
choices or range, its CLI flag. The CLI parser, the sidebar's widgets and the URL decoder are
built from it, and validation lives here alone, so a bad value gives the same sentence everywhere.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

DATASET_CHOICES = {"mnist": "MNIST digits (28x28)", "fashion-mnist": "Fashion-MNIST (28x28)",
                   "digits": "scikit-learn digits (8x8)"}
ACTIVATION_CHOICES = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU", "leaky_relu": "Leaky ReLU (0.01)"}
OUTPUT_CHOICES = {"sigmoid": "Sigmoid", "softmax": "Softmax", "linear": "Linear (identity)"}
LOSS_CHOICES = {"mse": "Mean squared error", "cross_entropy": "Cross-entropy"}
OPTIMIZER_CHOICES = {"sgd": "SGD", "momentum": "SGD with momentum", "adam": "Adam"}
INIT_CHOICES = {
    "notebook": "Notebook: W, b ~ N(0, 1)",
    "small": "Small: W ~ N(0, 0.01²), b = 0",
    "xavier": "Xavier/Glorot uniform",
    "he": "He (Kaiming) normal",
    "pytorch": "PyTorch default: W, b ~ U(±1/√fan_in)",
}
INPUT_SCALING_CHOICES = {"unit": "Pixels / 255, in [0, 1]", "standardize": "Standardized: (x/255 - mean) / std"}
BACKEND_CHOICES = {"numpy": "NumPy engine (textbook + speed-ups)", "textbook": "NumPy engine, textbook code only",
                   "torch": "PyTorch"}
DEVICE_CHOICES = {"auto": "auto", "cpu": "cpu", "cuda": "cuda", "mps": "mps"}

# The registries' names as tuples, for code that lists them (each engine registry is tested to match)
DATASET_NAMES, INITS = tuple(DATASET_CHOICES), tuple(INIT_CHOICES)
BACKENDS, DEVICES = tuple(BACKEND_CHOICES), tuple(DEVICE_CHOICES)
INIT_LABELS = INIT_CHOICES

MAX_HIDDEN_LAYERS = 10
MAX_UNITS = 8192  # per hidden layer
MAX_PARAMS = 50_000_000  # 200 MB of float32 weights; with gradients and Adam's two moments, 800 MB


class ConfigError(ValueError):
    """A configuration value a learner must change; `field` names the TrainConfig field it is about."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def option(default: Any, label: str, help: str, *, choices: dict[str, str] | None = None,
           low: float | None = None, high: float | None = None, high_open: bool = False, low_open: bool = False,
           flag: str | None = None, user: bool = False) -> Any:
    """A TrainConfig field with what the CLI, the sidebar and validation need to know about it.

    `low`/`high`: the allowed range (closed unless `*_open`); `choices`: value -> label; `user`: a
    preset leaves the field as the learner set it (backend, device, seed).
    """
    meta = dict(label=label, help=help, choices=choices, low=low, high=high, low_open=low_open,
                high_open=high_open, flag=flag, user=user)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; validated on construction."""

    dataset: str = option("mnist", "Dataset", "The images to learn from.", choices=DATASET_CHOICES)
    hidden_sizes: tuple[int, ...] = option(
        (64, 16), "Hidden layer sizes", "Widths of the hidden layers, comma-separated, e.g. 64,16. "
        "Empty: no hidden layer (softmax regression).", flag="--hidden")
    activation: str = option("sigmoid", "Hidden activation", "The non-linearity after each hidden layer.",
                             choices=ACTIVATION_CHOICES)
    output: str = option("sigmoid", "Output activation", "What turns the last layer's outputs into predictions.",
                         choices=OUTPUT_CHOICES)
    loss: str = option("mse", "Loss", "What training minimises.", choices=LOSS_CHOICES)
    optimizer: str = option("sgd", "Optimizer", "The rule that turns gradients into weight updates.",
                            choices=OPTIMIZER_CHOICES)
    learning_rate: float = option(3.0, "Learning rate", "Any positive number, e.g. 3, 0.5 or 1e-3.",
                                  low=0, low_open=True, flag="--lr")
    momentum: float = option(0.9, "Momentum", "How much of the last update the momentum optimizer keeps.",
                             low=0, high=1, high_open=True)
    betas: tuple[float, float] = option((0.9, 0.999), "Adam's betas",
                                        "Decay rates of Adam's two moment estimates, e.g. 0.9,0.999.",
                                        low=0, high=1, high_open=True)
    batch_size: int = option(128, "Batch size", "Examples per gradient step.", low=1, high=60000)
    epochs: int = option(30, "Epochs", "Passes over the training set.", low=1, high=1000)
    init: str = option("notebook", "Initialisation", "How the weights are drawn before training.",
                       choices=INIT_CHOICES)
    input_scaling: str = option("unit", "Input scaling", "How pixels become the network's inputs.",
                                choices=INPUT_SCALING_CHOICES)
    l2: float = option(0.0, "L2 weight decay", "Penalty on the squared weights (not biases); 0 = off.", low=0)
    dropout: float = option(0.0, "Dropout", "Probability of dropping a hidden unit during training.",
                            low=0, high=1, high_open=True)
    val_split: float = option(0.0, "Validation split",
                              "Fraction of the training set held out to watch over-fitting.",
                              low=0, high=1, high_open=True)
    train_limit: int | None = option(None, "Training subset",
                                     "Train on a random subset of this many examples (empty or 0: all).", low=1)
    seed: int = option(0, "Seed", "One number behind every random choice: same seed, same run.", low=0,
                       user=True)
    backend: str = option("numpy", "Backend", "Which engine trains: the NumPy engine (with or without its "
                          "speed-ups) or PyTorch.", choices=BACKEND_CHOICES, user=True)
    device: str = option("auto", "Device (PyTorch)", "auto picks a CUDA GPU when there is one, then Apple's MPS, "
                         "then the CPU.", choices=DEVICE_CHOICES, user=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.train_limit == 0:  # 0 means "all", as in the sidebar
            object.__setattr__(self, "train_limit", None)
        for f in dataclasses.fields(self):
            check_value(f.name, getattr(self, f.name))
        check_network_size(self.hidden_sizes)
        if self.loss == "cross_entropy" and self.output == "linear":
            raise ConfigError("loss", "Cross-entropy needs probabilities: pick a softmax or sigmoid output "
                                      "(a linear output can only be trained with mean squared error).")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        unknown = set(d) - set(FIELDS)
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


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}


def describe(name: str) -> dict[str, Any]:
    """A field's metadata: label, help, choices, low/high (and whether open), flag, user."""
    return dict(FIELDS[name].metadata)


def cli_flag(name: str) -> str:
    """The field's command-line flag: its own, or --the-field-name."""
    return FIELDS[name].metadata["flag"] or "--" + name.replace("_", "-")


def range_text(name: str) -> str:
    """What a numeric field accepts, in words: 'a positive number', 'in [0, 1)', 'between 1 and 1000'."""
    m = FIELDS[name].metadata
    low, high = m["low"], m["high"]
    if high is None:
        if m["low_open"] and low == 0:
            return "a positive number"
        return f"{low:g} or more"
    if m["high_open"] or m["low_open"]:
        return f"in {'(' if m['low_open'] else '['}{low:g}, {high:g}{')' if m['high_open'] else ']'}"
    return f"between {low:g} and {high:g}"


def _in_range(value: float, m: dict) -> bool:
    low, high = m["low"], m["high"]
    if not math.isfinite(value):
        return False
    if low is not None and (value <= low if m["low_open"] else value < low):
        return False
    return high is None or (value < high if m["high_open"] else value <= high)


def check_value(name: str, value: Any) -> None:
    """A ConfigError with a sentence a learner understands when `value` is not allowed for field `name`."""
    m = FIELDS[name].metadata
    if m["choices"] is not None:
        if value not in m["choices"]:
            raise ConfigError(name, f"Unknown {m['label'].lower()} {value!r}; choose one of: "
                                    f"{', '.join(m['choices'])}.")
        return
    if m["low"] is None or value is None:
        return
    values = value if isinstance(value, tuple) else (value,)
    if name == "betas" and len(values) != 2:
        raise ConfigError(name, f"{m['label']} must be two numbers, e.g. 0.9,0.999 (got {len(values)}).")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not _in_range(v, m):
            got = ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in values)
            raise ConfigError(name, f"{m['label']} must be {range_text(name)} (got {got}).")
        if FIELDS[name].type in ("int", "int | None") and int(v) != v:
            raise ConfigError(name, f"{m['label']} must be a whole number (got {v:g}).")


def n_parameters(hidden_sizes: tuple[int, ...], n_in: int = 784, n_out: int = 10) -> int:
    sizes = (n_in, *hidden_sizes, n_out)
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def check_network_size(hidden_sizes: tuple[int, ...]) -> None:
    """A ConfigError saying what is wrong when the hidden layers are empty, too wide, too many or too big.

    Counted for 28x28 inputs, the largest any dataset has, so a network's validity does not change with the dataset.
    The cap keeps a run (weights, gradients, Adam's moments) well inside memory beside other learners' runs.
    """
    def error(message: str) -> ConfigError:
        return ConfigError("hidden_sizes", "Hidden sizes: " + message)

    if any(h < 1 for h in hidden_sizes):
        raise error(f"every hidden layer needs at least one unit (got {list(hidden_sizes)}).")
    if len(hidden_sizes) > MAX_HIDDEN_LAYERS:
        raise error(f"at most {MAX_HIDDEN_LAYERS} hidden layers.")
    if any(h > MAX_UNITS for h in hidden_sizes):
        raise error(f"hidden layers are limited to {MAX_UNITS} units each, to keep training interactive.")
    n = n_parameters(hidden_sizes)
    if n > MAX_PARAMS:
        raise error(f"this network would have {n:,} parameters; the limit is {MAX_PARAMS:,} "
                    "(a run's weights, gradients and optimizer state must fit in memory beside other runs). "
                    "Use fewer or narrower layers.")


def parse_hidden_sizes(text: str) -> tuple[int, ...]:
    """'64,16' or '64 16' -> (64, 16); '' -> (); anything else is a ConfigError that says what is wrong."""
    text = text.strip().rstrip(",")
    if not text:
        return ()
    sizes = []
    for part in re.split(r"\s*,\s*|\s+", text):
        if part == "":
            raise ConfigError("hidden_sizes", "Hidden sizes: an empty entry between commas; write sizes like 64,16.")
        if not part.isdigit():
            raise ConfigError("hidden_sizes", f"Hidden sizes: {part!r} is not a whole number; write sizes like 64,16.")
        sizes.append(int(part))
    sizes = tuple(sizes)
    check_network_size(sizes)
    return sizes


def parse_value(name: str, text: str) -> Any:
    """A field's value from text (a CLI flag, a URL parameter), checked: a ConfigError says what is wrong."""
    m, kind = FIELDS[name].metadata, FIELDS[name].type
    text = str(text).strip()
    if name == "hidden_sizes":
        return parse_hidden_sizes(text)
    if m["choices"] is not None:
        value = text
    elif name == "betas":
        try:
            value = tuple(float(part) for part in text.split(","))
        except ValueError:
            raise ConfigError(name, f"{m['label']} must be two numbers, e.g. 0.9,0.999 (got {text!r}).") from None
    else:
        whole = kind in ("int", "int | None")
        if kind == "int | None" and text.lower() in ("", "0", "none", "all"):
            return None
        try:
            number = float(text)
            value = int(number) if whole and number.is_integer() else number
        except (ValueError, OverflowError):
            raise ConfigError(name, f"{m['label']}: {text!r} is not {'a whole number' if whole else 'a number'}; "
                                    f"it must be {range_text(name)}.") from None
    check_value(name, value)
    return value


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
