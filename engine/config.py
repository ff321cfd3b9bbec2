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
                   "digits": "scikit-learn digits (8x8)",
                   # tables (engine/tabular.py; an uploaded CSV joins them as csv-<hash> while the app runs)
                   "wine": "Wine (scikit-learn: 178 wines x 13 measurements, 3 cultivars)",
                   "breast-cancer": "Breast cancer (scikit-learn: 569 tumours x 30 measurements, 2 classes)",
                   "iris": "Iris (scikit-learn: 150 flowers x 4 measurements, 3 species)",
                   "wine-quality": "Red wine quality (winequality-red.csv, once uploaded on the Data page)"}
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
INPUT_SCALING_CHOICES = {"unit": "Pixels / 255, in [0, 1]", "standardize": "Standardized: (x/255 - mean) / std",
                         "minmax": "Min-max: each feature's training range to [0, 1] (tables)"}
BACKEND_CHOICES = {"numpy": "NumPy engine (textbook + speed-ups)", "textbook": "NumPy engine, textbook code only",
                   "torch": "PyTorch"}
DEVICE_CHOICES = {"auto": "auto", "cpu": "cpu", "cuda": "cuda", "mps": "mps"}

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
    hidden_sizes: tuple[int | str, ...] = option(
        (64, 16), "Hidden layer sizes", "The hidden layers, comma-separated: 64,16 is two dense layers of 64 and 16 "
        "units; empty: none (softmax regression). A dense layer may add batch normalization and its own dropout "
        "(144bn.3: 144 units, batch norm, dropout 0.3, in the Keras tutorial's order: dense, activation, batch norm, "
        "dropout); convolutions come first: c32k5 (32 filters 5x5, 'same' "
        "padding; c32k5v: 'valid'), p2 (2x2 max pooling), d.25 (dropout 0.25), e.g. c32k5,p2,c64k2,p2,d.25,1000.",
        flag="--hidden")
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
    patience: int = option(0, "Early stopping patience", "Stop after this many epochs without the validation loss "
                           "(the training loss without a validation split) improving by min_delta, and keep the "
                           "best epoch's weights; 0 = off.", low=0, high=1000)
    min_delta: float = option(0.0, "Early stopping min delta", "How much lower the watched loss must be than the "
                              "best so far to count as an improvement.", low=0)

    def __post_init__(self) -> None:
        if self.dataset not in DATASET_CHOICES and str(self.dataset).startswith("csv-"):
            from engine.tabular import restore_upload

            restore_upload(self.dataset)  # a run trained on an upload, reloaded after a restart
        object.__setattr__(self, "hidden_sizes", tuple(normalize_token(h) for h in self.hidden_sizes))
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.train_limit == 0:  # 0 means "all", as in the sidebar
            object.__setattr__(self, "train_limit", None)
        for f in dataclasses.fields(self):
            check_value(f.name, getattr(self, f.name))
        check_network_size(self.hidden_sizes, IMAGE_SIDES.get(self.dataset))
        if self.input_scaling == ("minmax" if self.dataset in IMAGE_SIDES else "unit"):
            raise ConfigError("input_scaling", "Input scaling: min-max is for tables (wine, an uploaded CSV), pixels "
                                               "/ 255 for images; standardized suits both."
                              if self.dataset in IMAGE_SIDES else
                              "Input scaling: this dataset is a table; scale it min-max (each feature's training "
                              "range to [0, 1]) or standardized, not as pixels / 255.")
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
    def layer_specs(self) -> tuple[LayerSpec, ...]:
        """The hidden layers, parsed (see `hidden_sizes`)."""
        return tuple(map(layer_spec, self.hidden_sizes))

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


# The image side of each built-in dataset (all square, one channel): where convolutions can apply.
IMAGE_SIDES = {"mnist": 28, "fashion-mnist": 28, "digits": 8}
MAX_KERNEL = 15
# What engine.model.build_model and every backend can make so far: "dense"; then "batch_norm" (144bn),
# "dropout" (a layer's own dropout, 144.3, and d.25), "conv" and "pool".
BUILT_KINDS = {"dense", "batch_norm", "dropout", "conv", "pool"}


@dataclass(frozen=True)
class LayerSpec:
    """One hidden layer as `hidden_sizes` writes it: dense (units), conv (filters, kernel), pool (size) or dropout."""

    kind: str  # "dense", "conv", "pool" or "dropout"
    size: int = 0  # units, filters or pooling size
    kernel: int = 0  # conv: kernel side
    padding: str = "same"  # conv: "same" or "valid"
    batch_norm: bool = False  # dense or conv: batch normalization after the activation
    dropout: float | None = None  # dense: its own dropout (None: the config's); dropout: its rate


_TOKENS = {
    "dense": re.compile(r"(?P<size>\d+)(?P<bn>bn)?(?P<drop>\.\d+)?"),
    "conv": re.compile(r"c(?P<size>\d+)k(?P<kernel>\d+)(?P<valid>v)?(?P<bn>bn)?"),
    "pool": re.compile(r"p(?P<size>\d+)"),
    "dropout": re.compile(r"d(?P<drop>0?\.\d+)"),
}


def layer_spec(token: int | str) -> LayerSpec:
    """'144bn.3' -> LayerSpec('dense', 144, batch_norm=True, dropout=0.3); a ConfigError for anything else."""
    text = str(token).strip().lower()
    for kind, pattern in _TOKENS.items():
        m = pattern.fullmatch(text)
        if m:
            g = m.groupdict()
            return LayerSpec(kind, int(g.get("size") or 0), int(g.get("kernel") or 0),
                             "valid" if g.get("valid") else "same", bool(g.get("bn")),
                             float(g["drop"]) if g.get("drop") else None)
    raise ConfigError("hidden_sizes", f"Hidden sizes: {str(token)!r} is not a whole number or a layer like 144bn.3, "
                                      "c32k5, p2 or d.25; write sizes like 64,16.")


def normalize_token(token: int | str) -> int | str:
    """A plain dense width as an int (64), any other layer as its lower-case text ('144bn.3')."""
    text = str(token).strip().lower()
    return int(text) if text.isdigit() else text


def network_shapes(hidden_sizes: tuple, side: int | None, n_in: int = 784, n_out: int = 10) -> list[tuple[str, int]]:
    """(layer kind, parameter count) per parameterised layer, checking that the layers fit the input.

    `side`: the input image's side, for convolutions (None: the input is a vector of n_in features).
    """
    def error(message: str) -> ConfigError:
        return ConfigError("hidden_sizes", "Hidden sizes: " + message)

    specs = [layer_spec(t) for t in hidden_sizes]
    shapes, channels, features, seen_dense = [], 1, n_in, False
    for spec in specs:
        if spec.kind in ("conv", "pool"):
            if seen_dense:
                raise error(f"{spec.kind} layers come before the dense ones (the image is flattened at the first "
                            "dense layer).")
            if side is None:
                raise error("convolution and pooling need images; this dataset's rows are not images.")
        if spec.kind == "dropout" and spec.dropout >= 1:
            raise error(f"dropout must be in [0, 1) (got {spec.dropout:g}).")
        if spec.kind == "dense" and spec.dropout is not None and spec.dropout >= 1:
            raise error(f"dropout must be in [0, 1) (got {spec.dropout:g}).")
        if spec.kind in ("dense", "conv") and spec.size < 1:
            raise error(f"every hidden layer needs at least one unit (got {spec.size}).")
        if spec.kind in ("dense", "conv") and spec.size > MAX_UNITS:
            raise error(f"layers are limited to {MAX_UNITS} units (or filters) each, to keep training interactive.")
        if spec.kind == "conv":
            if spec.batch_norm:
                raise error(f"batch normalization after a convolution is not available yet; write "
                            f"c{spec.size}k{spec.kernel} without bn (dense layers can have it: 144bn).")
            if not 1 <= spec.kernel <= MAX_KERNEL:
                raise error(f"kernels are 1x1 to {MAX_KERNEL}x{MAX_KERNEL} (got {spec.kernel}).")
            if spec.kernel > side:
                raise error(f"a {spec.kernel}x{spec.kernel} kernel is larger than the {side}x{side} image it meets.")
            shapes.append(("conv", (channels * spec.kernel ** 2 + 1) * spec.size))
            side = side if spec.padding == "same" else side - spec.kernel + 1
            channels = spec.size
            features = channels * side * side
        elif spec.kind == "pool":
            if spec.size < 1 or side // spec.size < 1:
                raise error(f"pooling {spec.size}x{spec.size} would take the {side}x{side} image below 1x1.")
            side //= spec.size
            features = channels * side * side
        elif spec.kind == "dense":
            shapes.append(("dense", (features + 1) * spec.size))
            features, seen_dense = spec.size, True
        if spec.batch_norm:
            shapes.append(("batch_norm", 2 * (spec.size if spec.kind == "dense" else channels)))
    shapes.append(("dense", (features + 1) * n_out))
    return shapes


def n_parameters(hidden_sizes: tuple, n_in: int = 784, n_out: int = 10, side: int | None = 28) -> int:
    """Learnable parameters of the network (counted for 28x28 images unless told otherwise)."""
    return sum(n for _, n in network_shapes(hidden_sizes, side, n_in, n_out))


def check_network_size(hidden_sizes: tuple, side: int | None = 28) -> None:
    """A ConfigError saying what is wrong when the layers are malformed, too many, do not fit or are too big.

    Counted for 28x28 inputs, the largest any dataset has, so a network's size limit does not change with the
    dataset. The cap keeps a run (weights, gradients, Adam's moments) well inside memory beside other runs.
    """
    if len(hidden_sizes) > MAX_HIDDEN_LAYERS:
        raise ConfigError("hidden_sizes", f"Hidden sizes: at most {MAX_HIDDEN_LAYERS} hidden layers.")
    for spec in map(layer_spec, hidden_sizes):
        missing = [k for k, used in ((spec.kind, True), ("batch_norm", spec.batch_norm),
                                     ("dropout", spec.dropout is not None)) if used and k not in BUILT_KINDS]
        if missing:
            raise ConfigError("hidden_sizes", f"Hidden sizes: {missing[0].replace('_', ' ')} layers are not "
                                              "available yet; use dense layers like 64,16.")
    network_shapes(hidden_sizes, side, side * side if side else 784)  # does each layer fit this dataset's input?
    n = n_parameters(hidden_sizes, side=28 if side else None)
    if n > MAX_PARAMS:
        raise ConfigError("hidden_sizes", f"Hidden sizes: this network would have {n:,} parameters; the limit is "
                          f"{MAX_PARAMS:,} (a run's weights, gradients and optimizer state must fit in memory beside "
                          "other runs). Use fewer or narrower layers.")


def parse_hidden_sizes(text: str, side: int | None = 28) -> tuple[int | str, ...]:
    """'64,16' or '64 16' -> (64, 16); '' -> (); 'c32k5,p2,1000' -> ('c32k5', 'p2', 1000); else a ConfigError."""
    text = text.strip().rstrip(",")
    if not text:
        return ()
    tokens = []
    for part in re.split(r"\s*,\s*|\s+", text):
        if part == "":
            raise ConfigError("hidden_sizes", "Hidden sizes: an empty entry between commas; write sizes like 64,16.")
        layer_spec(part)
        tokens.append(normalize_token(part))
    tokens = tuple(tokens)
    check_network_size(tokens, side)
    return tokens


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


# A wide network on a 1,000-image subset memorises it within a few epochs while the validation loss turns up; the
# variants fight that (bench/overfit.py runs them and writes the README's table).
OVERFIT_MNIST = TrainConfig(hidden_sizes=(512, 512), activation="relu", output="softmax", loss="cross_entropy",
                            optimizer="adam", learning_rate=1e-3, batch_size=32, epochs=40, init="he", val_split=0.05,
                            train_limit=1000)
OVERFIT_VARIANTS = [  # preset name, what it adds, the changes
    ("overfit-mnist", "", {}),
    ("overfit-mnist-dropout", ", dropout 0.5", {"dropout": 0.5}),
    ("overfit-mnist-l2", ", L2 1e-3", {"l2": 1e-3}),
    ("overfit-mnist-bn", ", batch norm", {"hidden_sizes": ("512bn", "512bn")}),
    ("overfit-mnist-early", ", early stopping (patience 5)", {"patience": 5}),
]

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
    Preset("keras-cnn", "Keras: a small CNN (two conv + pool, dropout, one wide layer), Adam", "99.04%",
           TrainConfig(hidden_sizes=("c32k5", "p2", "c64k2", "p2", "d.25", 1000), activation="relu",
                       output="softmax", loss="cross_entropy", optimizer="adam", learning_rate=1e-3,
                       batch_size=32, epochs=5, init="xavier")),
    Preset("wine-quality", "Kaggle Intro to Deep Learning: red wine quality (upload winequality-red.csv on the Data "
           "page), batch norm and dropout", "69% train, 62% validation, 60% test",
           TrainConfig(dataset="wine-quality", hidden_sizes=("144bn.3", "144bn.3", "16bn"), activation="relu",
                       output="softmax", loss="cross_entropy", optimizer="adam", learning_rate=0.000056194,
                       batch_size=128, epochs=1000, init="xavier", input_scaling="minmax", val_split=0.1)),
    *(Preset(name, f"Overfitting: 784-512-512-10 on 1,000 MNIST images{what}", "see the README's overfitting table",
             OVERFIT_MNIST.replace(**changes)) for name, what, changes in OVERFIT_VARIANTS),
]}
