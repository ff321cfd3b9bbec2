"""The MLP: layers in a list, built from a TrainConfig; initialisations; save and load."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from engine.config import IMAGE_SIDES, TrainConfig
from engine.conv import Conv2D, Flatten, ToImages, add_image_layer
from engine.data import scale_pixels
from engine.layers import ACTIVATIONS, BatchNorm, Dropout, Layer, Linear
from engine.losses import Loss, apply_output, make_loss

EVAL_CHUNK = 8192  # rows per forward pass when evaluating a whole split


def init_weights(init: str, n_in: int, n_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(W, b) in float64, W of shape (n_in, n_out), drawn by the named scheme."""
    return INITS[init](n_in, n_out, rng)


def _notebook(n_in, n_out, rng):  # the notebook's FCLayer draws both from a standard normal
    return rng.standard_normal((n_in, n_out)), rng.standard_normal(n_out)


def _small(n_in, n_out, rng):  # TwoLayerNet: weight_init_std = 0.01
    return 0.01 * rng.standard_normal((n_in, n_out)), np.zeros(n_out)


def _xavier(n_in, n_out, rng):  # Glorot uniform, Keras' default
    limit = np.sqrt(6 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_in, n_out)), np.zeros(n_out)


def _he(n_in, n_out, rng):  # Kaiming normal for ReLU
    return np.sqrt(2 / n_in) * rng.standard_normal((n_in, n_out)), np.zeros(n_out)


def _pytorch(n_in, n_out, rng):  # torch.nn.Linear's default (kaiming_uniform with a = sqrt(5)), bias alike
    bound = 1 / np.sqrt(n_in)
    return rng.uniform(-bound, bound, (n_in, n_out)), rng.uniform(-bound, bound, n_out)


INITS = {"notebook": _notebook, "small": _small, "xavier": _xavier, "he": _he, "pytorch": _pytorch}


class MLP:
    """Linear [-> batch norm] -> activation [-> dropout] ... -> Linear, with convolution and pooling layers first in
    a CNN; the output activation lives in the loss."""

    def __init__(self, layers: list[Layer], loss: Loss, config: TrainConfig | None = None) -> None:
        self.layers, self.loss, self.config = layers, loss, config

    @property
    def linears(self) -> list[Linear]:
        return [layer for layer in self.layers if isinstance(layer, Linear)]

    def parameters(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(param, grad) pairs, in layer order: what an optimizer updates."""
        return [(layer.params[k], layer.grads[k]) for layer in self.layers for k in layer.params]

    def named_parameters(self) -> dict[str, np.ndarray]:
        """'0.W', '0.b', '1.W', ...: the names weights are saved under (i counts the Linear layers)."""
        return {f"{i}.{k}": lin.params[k] for i, lin in enumerate(self.linears) for k in ("W", "b")}

    def named_arrays(self) -> dict[str, np.ndarray]:
        """Every array the trained network is, in layer order (get_weights' order): the Linear layers' '0.W', '0.b',
        ... and each batch norm's 'bn0.gamma', 'bn0.beta' and its running averages 'bn0.running_mean',
        'bn0.running_var' (learnt from the data, not by gradient, so not among `parameters`); each Conv2D's
        'conv0.W', 'conv0.b'."""
        arrays: dict[str, np.ndarray] = {}
        n_bn = 0
        for layer in self.layers:
            if isinstance(layer, BatchNorm):
                arrays.update({f"bn{n_bn}.{k}": a for k, a in {**layer.params, **layer.state}.items()})
                n_bn += 1
            elif isinstance(layer, Conv2D):
                i = sum(k.startswith("conv") and k.endswith(".W") for k in arrays)
                arrays.update({f"conv{i}.{k}": a for k, a in layer.params.items()})
            elif isinstance(layer, Linear):
                i = sum(k[0].isdigit() and k.endswith(".W") for k in arrays)
                arrays.update({f"{i}.{k}": a for k, a in layer.params.items()})
        return arrays

    def parameter_names(self) -> list[str]:
        """The `named_arrays` name of each of `parameters()`, in the same order (what optimizer state is saved
        under)."""
        ids = {id(p) for p, _ in self.parameters()}
        return [name for name, a in self.named_arrays().items() if id(a) in ids]

    @property
    def dropout_rng(self) -> np.random.Generator | None:
        """The generator every Dropout layer draws its masks from (one per model), or None without dropout."""
        return next((layer.rng for layer in self.layers if isinstance(layer, Dropout)), None)

    @property
    def eval_chunk(self) -> int:
        """Rows per forward pass when evaluating: fewer through convolutions, whose images take 32x the memory."""
        return EVAL_CHUNK // 32 if any(isinstance(layer, Conv2D) for layer in self.layers) else EVAL_CHUNK

    @property
    def n_params(self) -> int:
        return sum(p.size for p, _ in self.parameters())

    @property
    def dtype(self) -> np.dtype:
        return self.linears[0].params["W"].dtype

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        """x: (batch, n_in) -> logits: (batch, n_classes), before the output activation."""
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, grad: np.ndarray) -> None:
        """Back-propagate dL/dlogits through every layer, last to first, filling each layer's grads."""
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Outputs after the output activation, (n, n_classes), computed in chunks."""
        out_name = self.loss.output_name
        chunk = self.eval_chunk
        return np.concatenate([apply_output(self.forward(self._as_input(x[i:i + chunk]), False), out_name)
                               for i in range(0, len(x), chunk)])

    def evaluate(self, x: np.ndarray, t: np.ndarray) -> tuple[float, float]:
        """Mean loss and accuracy over a whole split, dropout off."""
        total, correct = 0.0, 0
        chunk = self.eval_chunk
        for i in range(0, len(x), chunk):
            xb, tb = self._as_input(x[i:i + chunk]), t[i:i + chunk]
            z = self.forward(xb, train=False)
            correct += int(np.count_nonzero(z.argmax(axis=1) == tb))
            total += self.loss.forward(z, tb) * len(tb)
        return total / len(x), correct / len(x)

    def _as_input(self, x: np.ndarray) -> np.ndarray:
        """uint8 pixels are scaled as the config says; float input is used as given."""
        if x.dtype == np.uint8:
            cfg = self.config
            return scale_pixels(x, cfg.dataset if cfg else "mnist", cfg.input_scaling if cfg else "unit",
                                self.dtype.type)
        return x.astype(self.dtype, copy=False)

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the parameters (and batch norm's running averages), in layer order: `named_arrays`."""
        return [a.copy() for a in self.named_arrays().values()]

    def set_weights(self, arrays: list[np.ndarray]) -> None:
        for p, a in zip(self.named_arrays().values(), arrays, strict=True):
            if p.shape != a.shape:
                raise ValueError(f"Weight shape mismatch: model has {p.shape}, given {a.shape}")
            p[...] = a

    def save(self, path: str | Path) -> None:
        """Weights to .npz, with the config as JSON beside them inside the same file."""
        config = json.dumps(self.config.to_dict() if self.config else {})
        np.savez(path, config=np.array(config), **self.named_arrays())

    def __repr__(self) -> str:
        return f"MLP({', '.join(map(repr, self.layers))}; {self.loss!r})"


def build_model(cfg: TrainConfig, n_features: int, n_classes: int, dtype=np.float32,
                seed: int | None = None) -> MLP:
    """The network a config describes, with seeded initial weights (drawn in float64, then cast).

    Each dense hidden layer is Linear -> activation [-> batch norm] [-> dropout]; a dropout token (d.25) is a
    Dropout layer; the last Linear's output goes to the loss.
    """
    streams = seed_streams(cfg.seed if seed is None else seed)
    init_rng, dropout_rng = np.random.default_rng(streams["init"]), np.random.default_rng(streams["dropout"])
    layers: list[Layer] = []
    n_in = n_features
    image: tuple[int, int] | None = None  # (channels, side) of the images conv and pool layers pass on
    for spec in cfg.layer_specs:
        if spec.kind in ("conv", "pool"):  # engine/conv.py; the input rows become images at the first of them
            if image is None:
                image = (1, math.isqrt(n_in))
                layers.append(ToImages(image[1]))
            image = add_image_layer(layers, spec, image, cfg.init, ACTIVATIONS[cfg.activation], init_rng, dtype)
            n_in = image[0] * image[1] ** 2
            continue
        if spec.kind == "dropout":  # d.25: a Dropout layer where the token stands
            layers.append(Dropout(spec.dropout, dropout_rng))
            continue
        if image is not None:  # the first dense layer takes the images as rows
            layers.append(Flatten())
            image = None
        W, b = init_weights(cfg.init, n_in, spec.size, init_rng)
        layers += [Linear(W.astype(dtype), b.astype(dtype)), ACTIVATIONS[cfg.activation]()]
        if spec.batch_norm:  # after the activation, the Keras tutorial's order: Dense(relu) -> BatchNormalization
            layers.append(BatchNorm(spec.size, dtype))
        p = cfg.dropout if spec.dropout is None else spec.dropout
        if p > 0:
            layers.append(Dropout(p, dropout_rng))
        n_in = spec.size
    if image is not None:
        layers.append(Flatten())
    W, b = init_weights(cfg.init, n_in, n_classes, init_rng)
    layers.append(Linear(W.astype(dtype), b.astype(dtype)))
    return MLP(layers, make_loss(cfg.loss, cfg.output), cfg)


def seed_streams(seed: int) -> dict[str, np.random.SeedSequence]:
    """Independent random streams for each use of randomness, all from one seed."""
    names = ("init", "split", "shuffle", "dropout")
    return dict(zip(names, np.random.SeedSequence(seed).spawn(len(names))))


def load_model(path: str | Path) -> MLP:
    """Load a model saved by MLP.save, checking every array's shape against its config."""
    with np.load(path, allow_pickle=False) as f:
        try:
            cfg = TrainConfig.from_dict(json.loads(str(f["config"])))
        except (KeyError, json.JSONDecodeError, TypeError) as err:
            raise ValueError(f"{Path(path).name}: no readable configuration in this file ({err})") from err
        arrays = {k: f[k] for k in f.files if k != "config"}
    n_features, n_classes = _io_sizes(arrays, path, cfg)
    model = build_model(cfg, n_features, n_classes)
    expected = model.named_arrays()
    if set(arrays) != set(expected):
        raise ValueError(f"{Path(path).name}: arrays {sorted(arrays)} do not match the configured "
                         f"network, which needs {sorted(expected)}")
    for name, target in expected.items():
        if arrays[name].shape != target.shape:
            raise ValueError(f"{Path(path).name}: {name} has shape {arrays[name].shape}, "
                             f"the configured network needs {target.shape}")
        target[...] = arrays[name]
    return model


def _io_sizes(arrays: dict[str, np.ndarray], path, cfg: TrainConfig) -> tuple[int, int]:
    weights = sorted((k for k in arrays if k[0].isdigit() and k.endswith(".W")), key=lambda k: int(k.split(".")[0]))
    if not weights or any(arrays[k].ndim != 2 for k in weights):
        raise ValueError(f"{Path(path).name}: no weight matrices found")
    n_in = IMAGE_SIDES[cfg.dataset] ** 2 if "conv0.W" in arrays else arrays[weights[0]].shape[0]  # a CNN's images
    return n_in, arrays[weights[-1]].shape[1]
