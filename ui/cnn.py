"""Why the CNN beats the MLP: its first layer's filters and a digit's feature maps (for Inside), and the two
Keras tutorials side by side (for Compare). Compute functions return arrays, images and text; the button
handler starts the runs."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from engine import MLP
from engine.config import IMAGE_SIDES, TrainConfig, network_shapes
from engine.conv import Conv2D
from ui import state
from ui.mosaic import mosaic
from ui.resources import start_presets
from ui.runs import TrainingRun

CNN_VS_MLP = ("keras-mlp", "keras-cnn")


def conv_layers(model: MLP) -> list[Conv2D]:
    return [layer for layer in model.layers if isinstance(layer, Conv2D)]


def to_gray(a: np.ndarray) -> np.ndarray:
    """Each image of a (n, h, w) stack scaled on its own to 0..255 (uint8) from its smallest value to its largest."""
    low = a.min(axis=(1, 2), keepdims=True)
    span = a.max(axis=(1, 2), keepdims=True) - low
    return np.rint(255 * (a - low) / np.where(span > 0, span, 1)).astype(np.uint8)


def first_filters(model: MLP) -> np.ndarray:
    """The first convolution's filters as (filters, k, k) gray images (its first input channel: the pixels)."""
    return to_gray(conv_layers(model)[0].params["W"][:, 0])


def filters_image(model: MLP, cell: int = 56) -> Image.Image:
    """The first convolution's filters in one mosaic, 8 a row: dark where the filter weighs ink most."""
    filters = first_filters(model)
    n, k = len(filters), filters.shape[-1]
    return mosaic(filters.reshape(n, k * k), (k, k), [f"filter {i + 1}" for i in range(n)], cols=8, cell=cell)


def feature_maps(model: MLP, pixels: np.ndarray) -> list[np.ndarray]:
    """One image's maps after each convolution (and its activation): a (channels, h, w) array per conv layer.

    pixels: one image's row (h*w,), uint8 or already scaled.
    """
    x = model._as_input(pixels.reshape(1, -1))
    maps, after_conv = [], False
    for layer in model.layers:
        x = layer.forward(x, train=False)
        if after_conv:  # the activation following the convolution
            maps.append(np.array(x[0]))
        after_conv = isinstance(layer, Conv2D)
    return maps


def feature_map_images(model: MLP, pixels: np.ndarray, cell: int = 56) -> list[Image.Image]:
    """feature_maps as one mosaic per conv layer, 8 maps a row, each map scaled on its own (dark: strong)."""
    images = []
    for maps in feature_maps(model, pixels):
        c, h, w = maps.shape
        images.append(mosaic(to_gray(maps).reshape(c, h * w), (h, w), [f"map {i + 1}" for i in range(c)], cols=8,
                             cell=cell))
    return images


def cnn_vs_mlp(mlp: TrainingRun, cnn: TrainingRun) -> tuple[list[dict], str]:
    """The two runs' table rows (parameters, test accuracy, seconds per epoch) and a sentence with their numbers."""
    rows = []
    for run in (mlp, cnn):
        cfg = run.config
        rows.append({"run": run.name, "layers": cfg.layers_text(), "parameters": sum(parameters(cfg).values()),
                     "epochs": run.epochs_text(), "test accuracy": run.last.test_acc if run.last else None,
                     "seconds/epoch": run.seconds_per_epoch})
    if not (mlp.last and cnn.last):
        return rows, "The sentence comparing the two comes once both runs have finished an epoch."
    p_mlp, p_cnn = rows[0]["parameters"], rows[1]["parameters"]
    err_mlp, err_cnn = 1 - mlp.last.test_acc, 1 - cnn.last.test_acc
    conv_params = parameters(cnn.config).get("conv", 0)
    sentence = (
        f"The CNN gets {cnn.last.test_acc:.2%} of the test digits right after {cnn.epochs_done} epoch(s), the MLP "
        f"{mlp.last.test_acc:.2%} after {mlp.epochs_done}: {_ratio(err_mlp, err_cnn)} the errors, with "
        f"{p_cnn:,} parameters against {p_mlp:,}. Its convolutions hold only {conv_params:,} of them: each filter "
        "is one small set of weights slid over every position of the image (weight sharing), so a stroke is "
        "recognised wherever it is; the pooling after each keeps the strongest response of every block, so "
        "a digit moved by a pixel gives nearly the same features. The price is time: "
        f"{_per_epoch(cnn)} per epoch against {_per_epoch(mlp)}.")
    return rows, sentence


def parameters(cfg: TrainConfig) -> dict[str, int]:
    """The network's parameters by kind of layer ('conv', 'dense', ...), for its dataset's images."""
    side = IMAGE_SIDES[cfg.dataset]
    counts: dict[str, int] = {}
    for kind, n in network_shapes(cfg.hidden_sizes, side, side * side):
        counts[kind] = counts.get(kind, 0) + n
    return counts


def _ratio(err_mlp: float, err_cnn: float) -> str:
    if err_cnn <= 0:
        return "no"
    r = err_mlp / err_cnn
    return f"{r:.1f} times fewer" if r >= 1 else f"{1 / r:.1f} times more"


def _per_epoch(run: TrainingRun) -> str:
    return f"{run.seconds_per_epoch:.0f} s" if run.seconds_per_epoch is not None else "not yet measured"


def start_cnn_vs_mlp() -> None:
    """keras-mlp and keras-cnn, with the sidebar's backend and seed, overlaid on Compare as they train."""
    started = start_presets(CNN_VS_MLP)
    st.session_state[state.CNN_VS_MLP_RUNS] = started
