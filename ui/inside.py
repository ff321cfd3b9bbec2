"""Inside the network: a run's weights at any kept epoch, drawn (Pillow images, Altair charts), and the pieces
Results (the confusion matrix at any epoch) and Compare (MSE vs cross-entropy) use.

Data in, chart or image out, except the few widget functions at the end (named *_widget or *_button).
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from engine.config import LOSS_CHOICES
from engine.data import Dataset, scale_pixels
from engine.inside import (
    Journey,
    is_dense,
    model_at,
    nearest,
    output_gradients,
    strongest_contributions,
)
from engine.model import MLP
from engine.train import PROBE_ROWS, SATURATION_MARGIN
from ui import state
from ui.charts import confusion_frame
from ui.memory import snapshots_of
from ui.mosaic import LINE_H, caption_lines

# Diverging colour map centred on 0 (ColorBrewer RdBu): blue negative, white zero, red positive
DIVERGING_STOPS = (-1.0, -0.5, 0.0, 0.5, 1.0)
DIVERGING_RGB = ((33, 102, 172), (146, 197, 222), (247, 247, 247), (244, 165, 130), (178, 24, 43))
DIVERGING_SCALE = alt.Scale(domain=[-1, 0, 1], range=["#2166ac", "#f7f7f7", "#b2182b"])
MODEL_CACHE = 6  # networks rebuilt from snapshots kept per process (a keras-mlp one in float64 is 6 MB)
MSE_CE_EXAMPLES = 100  # probe examples drawn in the MSE vs cross-entropy scatter (10 outputs each)
SINGLE_OUTPUT = ("sigmoid", "softmax")  # outputs cross-entropy works with

# ---------------------------------------------------------------- a run's epochs and the network at each


def kept_epochs(run) -> list[int]:
    """The epochs whose weights can be shown: the run's snapshots, and its last epoch where they lack it."""
    epochs = run.snapshot_epochs()  # (released snapshots are read back only when their weights are wanted)
    if run.history and run.epochs_done not in epochs and (run.model is not None):
        epochs = [*epochs, run.epochs_done]
    return epochs


def weights_at(run, epoch: int) -> list[np.ndarray]:
    """The run's parameters after `epoch` (one of kept_epochs): a snapshot, else the last epoch's weights."""
    snapshot = snapshots_of(run).get(epoch)
    if snapshot is not None:
        return snapshot
    return run.epoch_model().get_weights() if run.in_progress else run.model.get_weights()


@st.cache_resource(max_entries=MODEL_CACHE, show_spinner=False)
def _model(run_id: str, epoch: int, n_features: int, n_classes: int, _run) -> MLP:
    return model_at(_run.config, weights_at(_run, epoch), n_features, n_classes)


def model_at_epoch(run, epoch: int, data: Dataset) -> MLP:
    """A float64 network holding the run's weights after `epoch`, built once per (run, epoch)."""
    return _model(run.id, epoch, data.n_features, data.n_classes, run)


@st.cache_resource(max_entries=4, show_spinner=False)
def scaled_test(dataset: str, scaling: str, _data: Dataset) -> np.ndarray:
    """The test images as the network takes them (float32), once per dataset and scaling."""
    return scale_pixels(_data.x_test, dataset, scaling)


@st.cache_data(max_entries=256, show_spinner=False)
def nearest_training(dataset: str, pixels: bytes, k: int, _data: Dataset) -> np.ndarray:
    """Indices of the k training images nearest in pixel space to an image (its uint8 pixels as bytes)."""
    return nearest(_data.x_train, np.frombuffer(pixels, dtype=np.uint8), k)


def layer_names(n_layers: int) -> list[str]:
    """'hidden 1', 'hidden 2', ..., 'output' for a run's Linear layers."""
    return [f"hidden {i + 1}" for i in range(n_layers - 1)] + ["output"]


# ---------------------------------------------------------------- images


def diverging_rgb(values: np.ndarray, scale: float) -> np.ndarray:
    """values (...,) -> uint8 RGB (..., 3) on the diverging map, +-scale at the ends, 0 white."""
    t = np.clip(values / max(scale, 1e-12), -1, 1)
    stops = np.array(DIVERGING_RGB, dtype=float)
    return np.stack([np.interp(t, DIVERGING_STOPS, stops[:, c]) for c in range(3)], axis=-1).astype(np.uint8)


def weight_tile(w: np.ndarray, image_shape: tuple[int, int], cell: int) -> Image.Image:
    """One unit's incoming weights (h*w,) as an image on the diverging map, scaled to its own largest |w|."""
    rgb = diverging_rgb(w.reshape(image_shape), float(np.abs(w).max()))
    return Image.fromarray(rgb, mode="RGB").resize((cell, cell), Image.Resampling.NEAREST)


def weight_mosaic(W: np.ndarray, image_shape: tuple[int, int], units: list[int], captions: list[str],
                  cols: int = 8, cell: int = 64, selected: int | None = None) -> Image.Image:
    """First-layer units' weights W[:, u] (W is (n_in, units)) as tiles in a grid, a caption under each and a
    black frame around the `selected` unit."""
    font = ImageFont.load_default(size=12)
    pad = 5
    rows = max(1, -(-len(units) // cols))
    caption_h = LINE_H + 3
    sheet = Image.new("RGB", (cols * (cell + pad) + pad, rows * (cell + caption_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (u, text) in enumerate(zip(units, captions)):
        r, c = divmod(i, cols)
        x0, y0 = pad + c * (cell + pad), pad + r * (cell + caption_h + pad)
        sheet.paste(weight_tile(W[:, u], image_shape, cell), (x0, y0))
        if u == selected:
            draw.rectangle([x0 - 3, y0 - 3, x0 + cell + 2, y0 + cell + 2], outline="black", width=3)
        draw.text((x0 + 1, y0 + cell + 2), caption_lines(text, font, cell + pad)[0], fill=(60, 60, 60), font=font)
    return sheet


def digit_image(pixels: np.ndarray, image_shape: tuple[int, int], cell: int = 168) -> Image.Image:
    """A digit (h*w uint8), ink dark on paper, scaled with nearest neighbour."""
    return Image.fromarray(255 - pixels.reshape(image_shape), mode="L").resize((cell, cell),
                                                                               Image.Resampling.NEAREST)


def saliency_image(pixels: np.ndarray, values: np.ndarray, image_shape: tuple[int, int],
                   cell: int = 168) -> Image.Image:
    """values (h*w,) on the diverging map (red: raises the class score, blue: lowers it) over the faint digit."""
    strength = np.abs(values) / max(float(np.abs(values).max()), 1e-12)
    colour = diverging_rgb(values, float(np.abs(values).max())).astype(float)
    paper = 255 - 0.35 * pixels.astype(float)  # the digit, faint, under the colours
    alpha = np.clip(strength * 1.5, 0, 1)[:, None]
    rgb = (alpha * colour + (1 - alpha) * paper[:, None]).astype(np.uint8)
    h, w = image_shape
    return Image.fromarray(rgb.reshape(h, w, 3), mode="RGB").resize((cell, cell), Image.Resampling.NEAREST)


def units_by(W: np.ndarray, order: str) -> np.ndarray:
    """First-layer unit indices by largest incoming weight norm first ('norm') or in their own order."""
    if order == "norm":
        return np.argsort(-np.linalg.norm(W, axis=0), kind="stable")
    return np.arange(W.shape[1])


# ---------------------------------------------------------------- the network as a diagram


def shown_units(a: np.ndarray, limit: int) -> np.ndarray:
    """The `limit` units of a layer with the largest |activation|, in unit order."""
    if len(a) <= limit:
        return np.arange(len(a))
    return np.sort(np.argsort(-np.abs(a), kind="stable")[:limit])


def diagram_frames(model: MLP, x: np.ndarray, j: Journey, class_names: tuple[str, ...], output: str,
                   image_width: int, limit: int = 10,
                   per_target: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(nodes, edges, column labels) of the network drawn for one input: each column a layer's most active units
    (colour: activation over the layer's largest |activation|), edges the largest terms a_i W_ij into each shown
    unit. The input column shows the pixels contributing most to the first layer's shown units."""
    weights = [lin.params["W"] for lin in model.linears]
    acts = [x] + [t.a for t in j.layers]
    shown = [shown_units(a, limit) for a in acts[1:]]
    shown[-1] = np.arange(len(acts[-1]))  # every class
    first = np.abs(x[:, None] * weights[0][:, shown[0]]).sum(axis=1)
    shown.insert(0, np.sort(np.argsort(-first, kind="stable")[:limit]))
    names = ["input"] + [f"hidden {i + 1}" for i in range(len(weights) - 1)] + [f"output ({output})"]
    nodes, labels = [], []
    pos = []
    for col, (units, a) in enumerate(zip(shown, acts)):
        top = float(np.abs(a).max()) or 1.0
        y = {int(u): (len(units) - 1) / 2 - r for r, u in enumerate(units)}
        pos.append(y)
        for u in units:
            is_output = col == len(acts) - 1
            label = (f"{class_names[u]}: {a[u]:.0%}" if is_output else
                     f"pixel ({u // image_width}, {u % image_width})" if col == 0 else f"unit {u}")
            nodes.append(dict(layer=names[col], col=col, y=y[int(u)], unit=int(u), activation=float(a[u]),
                              colour=float(a[u]) / top, label=label, output=is_output))
        hidden = len(a) - len(units)
        labels.append(dict(col=col, y=(len(units) + 1) / 2, text=names[col], sub=f"{len(a):,} units" + (
            f", {hidden:,} not shown" if hidden else "")))
    edges = []
    for col, W in enumerate(weights):
        terms = strongest_contributions(acts[col], W, shown[col], shown[col + 1], per_target)
        for i, k, term in terms:
            edges.append(dict(x=col, y=pos[col][i], x2=col + 1, y2=pos[col + 1][k], term=term, size=abs(term),
                              sign="raises" if term > 0 else "lowers", source=i, target=k))
    edges = pd.DataFrame(edges)
    if len(edges):  # widths relative to the largest term between the same two layers
        edges["width"] = 0.5 + 3.5 * edges["size"] / edges.groupby("x")["size"].transform("max").clip(lower=1e-12)
    return pd.DataFrame(nodes), edges, pd.DataFrame(labels)


def network_chart(nodes: pd.DataFrame, edges: pd.DataFrame, labels: pd.DataFrame) -> alt.LayerChart:
    """The network diagram: columns of units coloured by activation, edges by contribution (red +, blue -)."""
    x = alt.X("x:Q", axis=None, scale=alt.Scale(domain=[-0.4, labels.col.max() + 0.9]))
    y = alt.Y("y:Q", axis=None)
    lines = alt.Chart(edges).mark_rule(opacity=0.55).encode(
        x=x, y=y, x2="x2:Q", y2="y2:Q", strokeWidth=alt.StrokeWidth("width:Q", legend=None, scale=None),
        color=alt.Color("sign:N", scale=alt.Scale(domain=["raises", "lowers"], range=["#d6604d", "#4393c3"]),
                        legend=alt.Legend(title="contribution a·w", orient="bottom")),
        tooltip=[alt.Tooltip("source:Q", title="from unit"), alt.Tooltip("target:Q", title="to unit"),
                 alt.Tooltip("term:Q", format=".3f", title="a·w")])
    dots = alt.Chart(nodes).mark_circle(size=260, stroke="#555", strokeWidth=0.8, opacity=1).encode(
        x=alt.X("col:Q", axis=None), y=y,
        color=alt.Color("colour:Q", scale=DIVERGING_SCALE, legend=alt.Legend(title="activation (of layer max)",
                                                                             orient="bottom")),
        tooltip=["layer:N", "label:N", alt.Tooltip("activation:Q", format=".3f")])
    text = alt.Chart(nodes[nodes.output]).mark_text(align="left", dx=12, fontSize=12).encode(
        x="col:Q", y=y, text="label:N")
    titles = alt.Chart(labels).mark_text(fontWeight="bold", dy=-8).encode(x="col:Q", y="y:Q", text="text:N")
    subs = alt.Chart(labels).mark_text(color="#666", dy=6, fontSize=10).encode(x="col:Q", y="y:Q", text="sub:N")
    return alt.layer(lines, dots, text, titles, subs).properties(height=420)


def probability_bars(probs: np.ndarray, class_names: tuple[str, ...], explained: int,
                     true: int | None) -> alt.Chart:
    """The output for one input, a bar per class: the explained class dark, the true one green."""
    role = ["explained" if i == explained else "true" if i == true else "other" for i in range(len(class_names))]
    df = pd.DataFrame({"class": list(class_names), "output": probs.astype(float), "role": role})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("class:N", sort=list(class_names), title=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("output:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("role:N", scale=alt.Scale(domain=["explained", "true", "other"],
                                                  range=["#d62728", "#2ca02c", "#bbbbbb"]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["class:N", alt.Tooltip("output:Q", format=".3f")]).properties(height=240)


# ---------------------------------------------------------------- learning from inside, over epochs

STAT_VIEWS = (  # (statistics, title, log scale, the line of explanation)
    (("act_mean", "act_std"), "Activations on the probe batch: mean and spread", False,
     "What each layer's units output for 512 test images. A spread that collapses towards 0 means the units "
     "answer alike whatever the input: the layer has stopped telling images apart."),
    (("pre_mean", "pre_std"), "Pre-activations z = x·W + b: mean and spread", False,
     "The inputs to each activation. For sigmoid or tanh a spread of many units pushes z into the flat tails, "
     "where the slope (and so the gradient) is nearly 0."),
    (("saturated_frac",), "Saturated share (sigmoid / tanh)", False,
     f"Share of activations within {SATURATION_MARGIN} of the bounds. There the sigmoid's slope y(1-y) is under "
     "0.02, so almost no gradient passes back: saturated sigmoids stall learning, and a saturated output under "
     "MSE is why the notebook's MSE run starts slowly."),
    (("dead_frac",), "Dead ReLUs", False,
     "Share of units that output 0 for every probe image. A dead ReLU passes no gradient to its weights and "
     "rarely comes back; a few % is common, a large or growing share means too high a learning rate."),
    (("grad_norm",), "Gradient norm ||dL/dW|| (the epoch's last batch)", True,
     "How hard the loss pulls on each layer's weights. Norms shrinking layer by layer towards the input are "
     "vanishing gradients; all of them falling over epochs is the loss flattening out as the network learns."),
    (("update_ratio",), "Update / weight ratio ||ΔW|| / ||W|| per epoch", True,
     "How much of each layer's weights one epoch changed, measured from the weights before and after it (the "
     "same on every backend, whatever the optimizer). The rule of thumb is about 1e-3 per step; an epoch is "
     "hundreds of steps that partly cancel, so about 1e-2 to 1e-1 early on, falling as learning settles. Near "
     "1 the weights are being thrown around; far below 1e-4 the layer has stopped learning."),
)


def stats_frame(history: list) -> pd.DataFrame:
    """Long format: one row per (epoch, layer, statistic) that the history's epochs recorded."""
    rows = []
    for r in history:
        names = layer_names(len(r.layer_stats))
        for name, stats in zip(names, r.layer_stats):
            for key, value in stats.items():
                rows.append({"epoch": r.epoch, "layer": name, "stat": key, "value": float(value)})
    return pd.DataFrame(rows, columns=["epoch", "layer", "stat", "value"])


STAT_LABELS = {"act_mean": "mean", "act_std": "std", "pre_mean": "mean", "pre_std": "std"}


def epoch_rule(epoch: int) -> alt.Chart:
    """A grey vertical line at the scrubbed epoch."""
    return alt.Chart(pd.DataFrame({"epoch": [epoch]})).mark_rule(color="#888", strokeDash=[4, 3]).encode(
        x="epoch:Q")


def stat_chart(frame: pd.DataFrame, keys: tuple[str, ...], log: bool, epoch: int) -> alt.LayerChart | None:
    """Lines over epochs, a colour per layer (dashed: the second statistic), with a rule at `epoch`."""
    df = frame[frame.stat.isin(keys)].assign(what=lambda d: d.stat.map(STAT_LABELS).fillna(d.stat))
    if df.empty:
        return None
    if log:
        df = df[df.value > 0]
    encode = dict(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(type="log") if log else alt.Scale(zero=False)),
        color=alt.Color("layer:N", scale=alt.Scale(scheme="category10"), legend=alt.Legend(orient="bottom",
                                                                                             title=None)),
        tooltip=["epoch:Q", "layer:N", "what:N", alt.Tooltip("value:Q", format=".4g")])
    if len(keys) > 1:
        encode["strokeDash"] = alt.StrokeDash("what:N", legend=alt.Legend(orient="bottom", title=None))
    return alt.layer(alt.Chart(df).mark_line(point=True).encode(**encode), epoch_rule(epoch)).properties(height=230)


def class_accuracy_frame(history: list, class_names: tuple[str, ...]) -> pd.DataFrame:
    """Per epoch and class: the test accuracy of that class (from each epoch's confusion matrix)."""
    rows = [{"epoch": r.epoch, "class": class_names[c], "accuracy": acc}
            for r in history for c, acc in enumerate(r.class_accuracy)]
    return pd.DataFrame(rows, columns=["epoch", "class", "accuracy"])


def class_accuracy_chart(history: list, class_names: tuple[str, ...], epoch: int) -> alt.LayerChart | None:
    df = class_accuracy_frame(history, class_names)
    if df.empty:
        return None
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("accuracy:Q", scale=alt.Scale(zero=False), axis=alt.Axis(format="%")),
        color=alt.Color("class:N", sort=list(class_names), scale=alt.Scale(scheme="category10"),
                        legend=alt.Legend(title=None, orient="right")),
        tooltip=["epoch:Q", "class:N", alt.Tooltip("accuracy:Q", format=".2%")])
    return alt.layer(lines, epoch_rule(epoch)).properties(height=300)


def learned_first(history: list, class_names: tuple[str, ...], level: float = 0.9) -> str:
    """A sentence naming the classes in the order they first reached `level` test accuracy."""
    reached = {}
    for r in history:
        for c, acc in enumerate(r.class_accuracy):
            if acc >= level and class_names[c] not in reached:
                reached[class_names[c]] = r.epoch
    if not reached:
        return f"No class has reached {level:.0%} test accuracy yet."
    order = sorted(reached, key=lambda name: (reached[name], class_names.index(name)))
    slow = [n for n in class_names if n not in reached]
    return (f"First to reach {level:.0%}: " + ", ".join(f"{n} (epoch {reached[n]})" for n in order[:4]) +
            (f"; not yet: {', '.join(slow)}." if slow else "; every class has."))


# ---------------------------------------------------------------- why cross-entropy learns faster than MSE


def mse_ce_frame(model: MLP, data: Dataset, cfg) -> pd.DataFrame:
    """Each output's |dL/dz| against its value y under MSE and under cross-entropy, for the probe batch."""
    x = scale_pixels(data.x_test[:PROBE_ROWS][:MSE_CE_EXAMPLES], cfg.dataset, cfg.input_scaling)
    g = output_gradients(model, x, data.y_test[:MSE_CE_EXAMPLES])
    role = np.where(g["target"] == 1, "the true class's output", "another class's output").ravel()
    frames = [pd.DataFrame({"output": g["output"].ravel(), "gradient": g[key].ravel(), "role": role, "loss": name})
              for key, name in (("mse", "mean squared error"), ("cross_entropy", "cross-entropy"))]
    return pd.concat(frames, ignore_index=True)


def mse_ce_chart(frame: pd.DataFrame, title: str | None = None) -> alt.FacetChart:
    """Two panels, MSE and cross-entropy: |dL/dz| against the output value, the true class's outputs in red."""
    return alt.Chart(frame).mark_circle(size=22, opacity=0.6).encode(
        x=alt.X("output:Q", title="output y", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("gradient:Q", title="|dL/dz| for one example"),
        color=alt.Color("role:N", scale=alt.Scale(domain=["the true class's output", "another class's output"],
                                                  range=["#d62728", "#9ab8d8"]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=[alt.Tooltip("output:Q", format=".3f"), alt.Tooltip("gradient:Q", format=".3f"), "role:N"],
    ).properties(width=260, height=220).facet(
        column=alt.Column("loss:N", title=title, sort=["mean squared error", "cross-entropy"]))


MSE_CE_TEXT = ("Each dot is one output of one test image at this epoch. Under mean squared error the gradient "
               "that reaches z is 2(y - t)·y(1 - y): where the true class's output is near 0 (confidently wrong) "
               "y(1 - y) is near 0 too, so the output that most needs to move gets almost no push. Under "
               "cross-entropy the y(1 - y) cancels and the gradient is y - t: largest exactly where the answer "
               "is most wrong. That is why the notebook's cross-entropy run learns faster.")


def loss_words(cfg) -> str:
    """'mean squared error' or 'cross-entropy': the loss a run trains with, in words."""
    return LOSS_CHOICES[cfg.loss].lower()


def mse_ce_applies(cfg) -> bool:
    return cfg.output in SINGLE_OUTPUT


def mse_vs_ce_view(runs: list, get_dataset) -> None:
    """For Compare: the MSE vs cross-entropy gradients of each run (sigmoid or softmax output) side by side,
    at its last kept epoch. `get_dataset(name)` loads a dataset (ui.resources.get_dataset)."""
    shown = [r for r in runs if mse_ce_applies(r.config) and kept_epochs(r) and is_dense(r.model)]
    if not shown:
        return
    st.subheader("Why cross-entropy learns faster than MSE")
    st.caption(MSE_CE_TEXT)
    for column, run in zip(st.columns(len(shown[:3])), shown[:3]):
        epoch = kept_epochs(run)[-1]
        data = get_dataset(run.config.dataset)
        frame = mse_ce_frame(model_at_epoch(run, epoch, data), data, run.config)
        with column:
            st.caption(f"{run.name}: trained with {loss_words(run.config)}, epoch {epoch}")
            st.altair_chart(mse_ce_chart(frame), width="content")


# ---------------------------------------------------------------- the confusion matrix at any epoch (Results)


def confusion_at_epoch(run, epoch: int) -> np.ndarray | None:
    """The (k, k) test confusion counts after `epoch` (row: true class), or None where it was not recorded."""
    if not 1 <= epoch <= len(run.history) or not run.history[epoch - 1].test_confusion:
        return None
    return np.array(run.history[epoch - 1].test_confusion)


def confusion_frame_at_epoch(run, epoch: int, class_names: tuple[str, ...]) -> pd.DataFrame | None:
    """confusion_frame's table (ui.charts) for the matrix after `epoch`, or None where it was not recorded."""
    counts = confusion_at_epoch(run, epoch)
    if counts is None:
        return None
    k = len(class_names)
    cells = np.arange(k * k)
    return confusion_frame(np.repeat(cells // k, counts.ravel()), np.repeat(cells % k, counts.ravel()), class_names)


def predictions_at_epoch(run, data: Dataset, epoch: int) -> np.ndarray | None:
    """Test-set class probabilities from the weights after `epoch`, where they were kept (else None)."""
    if epoch not in kept_epochs(run):
        return None
    model = model_at_epoch(run, epoch, data)
    return model.predict_proba(scaled_test(data.name, run.config.input_scaling, data))


def confusion_epoch_widget(run, key: str = state.CM_EPOCH) -> int:
    """For Results: a slider over the epochs whose confusion matrix was recorded; returns the chosen epoch
    (the last one where there is only one)."""
    epochs = [r.epoch for r in run.history if r.test_confusion]
    if len(epochs) < 2:
        return run.epochs_done
    if st.session_state.get(key) not in epochs:
        st.session_state[key] = epochs[-1]
    return st.select_slider("Confusion matrix after epoch", epochs, key=key)


def open_in_inside_button(index: int, key: str) -> None:
    """For Results: a button that opens test image `index` in the Inside page's digit journey."""
    if st.button("Follow this image through the network", key=key, icon=":material/route:"):
        st.session_state[state.INSIDE_DIGIT] = int(index)
        st.session_state[state.INSIDE_SOURCE] = SOURCE_RESULTS
        st.switch_page("pages/inside.py")


SOURCE_RANDOM, SOURCE_INDEX, SOURCE_RESULTS, SOURCE_DRAWN = "random", "by index", "from Results", "your drawing"


def open_drawing_button(pixels: np.ndarray, dataset: str, key: str) -> None:
    """For Draw: a button that opens a drawing (uint8 pixels as the dataset's rows) in the Inside page's journey."""
    if st.button("Follow it through the network", key=key, icon=":material/route:"):
        st.session_state[state.INSIDE_DRAWN] = (dataset, np.array(pixels, dtype=np.uint8))
        st.session_state[state.INSIDE_SOURCE] = SOURCE_DRAWN
        st.switch_page("pages/inside.py")
