"""The Draw page's pieces: canvas and upload, the preprocessing shown step by step, the probabilities as bars,
"My digits" (drawings kept as a labelled test set) and, for Results, that set's accuracy and the code export."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image, ImageOps

from engine import MLP
from engine.export import TARGETS, export_script, script_name, unsupported
from engine.preprocess import ImageError, decode_image, preprocess
from ui import state
from ui.mosaic import mosaic
from ui.runs import TrainingRun

CANVAS_SIDE = 280  # pixels: ten screen pixels per MNIST pixel
STEP_SIDE = 140  # each preprocessing step is shown this wide
# The datasets a drawing can be made into an input for, and the recipe each takes (engine.preprocess)
RECIPE = {"mnist": "mnist", "fashion-mnist": "mnist", "digits": "digits"}
SHAPES = {"mnist": (28, 28), "digits": (8, 8)}


def run_model(run: TrainingRun) -> MLP:
    """The weights every view of the run uses: the last whole epoch's (a copy while the worker trains)."""
    return run.epoch_model() if run.in_progress else run.model


def runs_to_ask() -> list[TrainingRun]:
    """Runs of this session on images that have finished an epoch, newest first."""
    return [r for r in state.runs() if r.history and r.config.dataset in RECIPE][::-1]


def canvas_picture(stroke: int) -> np.ndarray | None:
    """The canvas (H, W, 4) RGBA as drawn, or None when nothing is drawn yet."""
    from streamlit_drawable_canvas import st_canvas  # the component registers itself when a page first uses it

    result = st_canvas(stroke_width=stroke, stroke_color="#000000", background_color="#ffffff",
                       height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw", key=state.DRAW_CANVAS,
                       return_image_data=True)
    data = result.image_data
    return None if data is None else np.asarray(data, dtype=np.uint8)


def uploaded_picture() -> np.ndarray | None:
    """The uploaded PNG/JPEG as (H, W, 4) RGBA; a bad file shows its message and gives None."""
    upload = st.file_uploader("Upload a photo or scan of a digit", type=["png", "jpg", "jpeg"], key=state.DRAW_UPLOAD,
                              help="PNG or JPEG, up to 5 MB and 16 million pixels.")
    if upload is None:
        return None
    try:
        return decode_image(upload.getvalue())
    except ImageError as err:
        st.error(str(err), icon=":material/broken_image:")
        return None


def enlarged(pixels: np.ndarray, shape: tuple[int, int], side: int = STEP_SIDE) -> Image.Image:
    """A uint8 digit (ink bright) as a dark-on-white picture `side` pixels wide, each pixel a crisp square."""
    return Image.fromarray(255 - pixels.reshape(shape).astype(np.uint8)).resize((side, side),
                                                                                Image.Resampling.NEAREST)


def ink_picture(ink: np.ndarray, side: int = STEP_SIDE) -> Image.Image:
    """An ink array in [0, 1] as a dark-on-white picture, aspect kept, at most `side` pixels."""
    h, w = ink.shape
    scale = side / max(h, w)
    img = Image.fromarray(np.rint(255 * (1 - ink)).astype(np.uint8))
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)


def framed(img: Image.Image) -> Image.Image:
    """The picture in a thin grey frame, so that its edges (where the crop cut) show on the white page."""
    return ImageOps.expand(img.convert("L"), border=1, fill=170)


def show_steps(picture: np.ndarray, dataset: str):
    """Preprocess for `dataset` and show each step; returns the Preprocessed, or None with the reason shown."""
    try:
        p = preprocess(picture, RECIPE[dataset])
    except ImageError as err:
        st.info(str(err), icon=":material/draw:")
        return None
    h, w = p.image_shape
    cols = st.columns(4)
    cols[0].image(framed(ink_picture(1 - p.gray / 255)), caption="1. your picture, in grey")
    cols[1].image(framed(ink_picture(p.ink)), caption="2. ink (inverted if the paper was light)")
    box = "20 px box, aspect kept" if dataset != "digits" else "32 px bitmap"
    cols[2].image(framed(ink_picture(p.cropped)), caption=f"3. cropped to the ink, then into a {box}")
    centring = "centre of mass at the middle" if dataset != "digits" else "4x4 blocks counted, 0..16"
    cols[3].image(framed(enlarged(p.pixels, (h, w))), caption=f"4. the network's input: {h}x{w}, {centring}")
    return p


def output_chart(outputs: np.ndarray, class_names: tuple[str, ...], title: str) -> alt.Chart:
    """One bar per class, the network's choice highlighted."""
    pred = int(outputs.argmax())
    df = pd.DataFrame({"class": list(class_names), "value": outputs.astype(float),
                       "choice": ["the network's answer" if i == pred else "other" for i in range(len(class_names))]})
    top = max(1.0, float(outputs.max())) if outputs.min() >= 0 else None
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("class:N", sort=list(class_names), title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("value:Q", title=title, scale=alt.Scale(domain=[0, top]) if top else alt.Scale()),
        color=alt.Color("choice:N", scale=alt.Scale(domain=["the network's answer", "other"],
                                                    range=["#1f77b4", "#bbbbbb"]), legend=None),
        tooltip=["class:N", alt.Tooltip("value:Q", title=title, format=".3f")],
    ).properties(height=240)


OUTPUT_TITLES = {"softmax": "probability", "sigmoid": "sigmoid output (not normalised)", "linear": "output"}


def show_prediction(run: TrainingRun, pixels: np.ndarray, class_names: tuple[str, ...]) -> None:
    """The run's outputs for one input row (uint8), as bars and a sentence."""
    outputs = run_model(run).predict_proba(pixels[None])[0]
    pred = int(outputs.argmax())
    kind = run.config.output
    share = f" ({outputs[pred]:.0%})" if kind == "softmax" else ""
    st.markdown(f"The network says **{class_names[pred]}**{share} (the weights after epoch {run.epochs_done}).")
    st.altair_chart(output_chart(outputs, class_names, OUTPUT_TITLES[kind]), width="stretch")


# ---------------------------------------------------------------- My digits


def my_digits() -> list[dict]:
    """The session's kept drawings: {'label', 'mnist': (784,) uint8, 'digits': (64,) uint8}, oldest first."""
    return st.session_state.setdefault(state.MY_DIGITS, [])


def keep_digit(picture: np.ndarray, label: int) -> None:
    """Keep a drawing in both preprocessings, so that runs on either image size can be tested on it."""
    my_digits().append({"label": label, **{recipe: preprocess(picture, recipe).pixels for recipe in SHAPES}})


def my_digits_set(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """The kept digits as a test set for a run on `dataset`: uint8 rows (n, h*w) and labels (n,)."""
    recipe = RECIPE[dataset]
    rows = [d[recipe] for d in my_digits()]
    return (np.array(rows, dtype=np.uint8).reshape(-1, int(np.prod(SHAPES[recipe]))),
            np.array([d["label"] for d in my_digits()], dtype=np.int64))


def my_digits_predictions(run: TrainingRun) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) labels of the kept digits for this run."""
    x, y = my_digits_set(run.config.dataset)
    return run_model(run).predict_proba(x).argmax(axis=1), y


def my_digits_section(run: TrainingRun | None, picture: np.ndarray | None) -> None:
    """Label the current drawing and keep it; the kept ones as a mosaic with this run's answers."""
    st.subheader("My digits")
    st.caption("Label your drawings and keep them: they become a test set of your own handwriting, which the "
               "**Results** page scores beside MNIST's test set.")
    left, right = st.columns([1, 1])
    label = left.selectbox("This drawing is a", list(range(10)), key=state.DRAW_LABEL, index=None,
                           placeholder="choose its digit")
    if right.button("Keep it in My digits", key=state.DRAW_KEEP, disabled=picture is None or label is None,
                    icon=":material/add:"):
        try:
            keep_digit(picture, int(label))
            st.toast(f"Kept as a {label}: {len(my_digits())} digit{'s' * (len(my_digits()) != 1)} in My digits.")
        except ImageError as err:
            st.warning(str(err))
    if not my_digits():
        return
    if run is not None:
        pred, y = my_digits_predictions(run)
        captions = [str(p) if p == t else f"{p} (is {t})" for p, t in zip(pred, y)]
        st.write(f"The network gets **{int((pred == y).sum())} of {len(y)}** right ({np.mean(pred == y):.0%}).")
        x, _ = my_digits_set(run.config.dataset)
        st.image(mosaic(x, SHAPES[RECIPE[run.config.dataset]], captions, wrong=pred != y, cols=10, cell=56))
    if st.button("Forget My digits", key=state.DRAW_FORGET, icon=":material/delete:"):
        st.session_state[state.MY_DIGITS] = []
        st.rerun()


# ---------------------------------------------------------------- for the Results page


def my_digits_score(run: TrainingRun) -> None:
    """The run's accuracy on My digits beside its test accuracy (nothing without kept digits)."""
    if not my_digits() or run.last is None or run.config.dataset not in RECIPE:
        return
    pred, y = my_digits_predictions(run)
    cols = st.columns(2)
    cols[0].metric(f"Test accuracy ({run.config.dataset})", f"{run.last.test_acc:.2%}", border=True)
    cols[1].metric(f"My digits ({len(y)} drawn)", f"{np.mean(pred == y):.2%}", border=True,
                   help="The digits you drew and labelled on the Draw page, preprocessed as MNIST's were.")


def export_buttons(run: TrainingRun) -> None:
    """Download this run's setup as a standalone NumPy or PyTorch script, or say which option cannot be written."""
    st.subheader("Take the code away")
    problems = unsupported(run.config)
    if problems:
        st.info("This run cannot be exported as a script, which cannot write " + "; ".join(problems) + ".",
                icon=":material/info:")
        return
    st.caption("One commented script that loads MNIST from its IDX files, builds this network, and trains it with "
               "the same initial weights and batch order: its epoch lines are this run's.")
    cols = st.columns(len(TARGETS))
    for col, (target, name) in zip(cols, TARGETS.items()):
        col.download_button(f"{name} script", export_script(run.config, target), file_name=script_name(run.config,
                            target), mime="text/x-python", key=f"{state.EXPORT_PREFIX}{target}",
                            icon=":material/download:", width="stretch")
