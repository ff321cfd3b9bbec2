"""Inside: what the first layer looks for, one digit's journey, learning seen from inside; all at a scrubbed epoch."""

import time

import numpy as np
import streamlit as st

from engine.data import scale_pixels
from engine.inside import is_dense, journey, unit_inputs
from ui import cnn, inside, state
from ui.live import follow
from ui.mosaic import mosaic
from ui.resources import get_dataset
from ui.tabular import show_first_layer, show_input
from ui.text import images_word

FRAME_SECONDS = 0.8  # per epoch while playing
WATCH_SECONDS = 1.0  # how often a training run is checked for a new epoch
SHOWN_UNITS = 48  # first-layer units in the mosaic
EXCITING, NEAREST = 12, 8


def page() -> None:
    st.title("Inside the network")
    runs = [r for r in state.runs() if inside.kept_epochs(r)]
    if not runs:
        st.info("Nothing to look inside yet: train a network on the **Train** page (or upload a run on **Compare**).")
        follow(lambda: rerun_when(lambda: bool([r for r in state.runs() if inside.kept_epochs(r)])), WATCH_SECONDS)
        return
    run = state.pick_run(runs, state.INSIDE_RUN)
    data = get_dataset(run.config.dataset)
    epochs = inside.kept_epochs(run)
    epoch = scrubber(run, epochs)
    draw = sections(run, data, epoch)
    if st.session_state.get(state.INSIDE_PLAYING):
        play(epochs, draw)
    else:
        draw(epoch)
        follow(lambda: rerun_when(lambda: inside.kept_epochs(run) != epochs), WATCH_SECONDS)


def rerun_when(changed) -> None:
    if changed():
        st.rerun()


def scrubber(run, epochs: list[int]) -> int:
    """The epoch slider shared by the whole page, with play/pause; on a training run it follows new epochs."""
    key = state.INSIDE_EPOCH
    pending = st.session_state.pop(state.INSIDE_PENDING_EPOCH, None)
    if pending in epochs:
        st.session_state[key] = pending
    elif st.session_state.get(key) not in epochs or st.session_state.get(key) == st.session_state.get(
            state.INSIDE_AT_LATEST):  # unmoved since it showed the latest epoch: it follows new ones
        st.session_state[key] = epochs[-1]
    playing = st.session_state.get(state.INSIDE_PLAYING, False)
    left, right = st.columns([6, 1], vertical_alignment="bottom")
    with left:
        if len(epochs) > 1:
            epoch = st.select_slider("Epoch (0 is before training)", epochs, key=key, disabled=playing)
        else:
            epoch = epochs[0]
            st.caption("Only the weights before training are available so far." if epoch == 0 else
                       f"Only the weights after epoch {epoch} are available.")
    with right:
        if playing:
            st.button("Pause", key="inside_pause", icon=":material/pause:", on_click=pause, width="stretch")
        else:
            st.button("Play", key="inside_play", icon=":material/play_arrow:", on_click=start_playing,
                      args=(epochs, epoch), disabled=len(epochs) < 2, width="stretch",
                      help="Animate the page through the kept epochs.")
    st.session_state[state.INSIDE_AT_LATEST] = epoch if epoch == epochs[-1] else None
    note = " Still training: new epochs join the slider as they finish." if run.in_progress else ""
    st.caption(f"{run.summary()}. {run.snapshots.kept_text()}{note}")
    return epoch


def start_playing(epochs: list[int], epoch: int) -> None:
    st.session_state[state.INSIDE_PLAYING] = True
    st.session_state[state.INSIDE_PLAY_AT] = epochs[0] if epoch == epochs[-1] else epoch


def pause() -> None:
    st.session_state[state.INSIDE_PLAYING] = False
    st.session_state[state.INSIDE_PENDING_EPOCH] = st.session_state.get(state.INSIDE_PLAY_AT)


def play(epochs: list[int], draw) -> None:
    """Draw each kept epoch from the play position on, then leave the slider on the last one."""
    start = st.session_state.get(state.INSIDE_PLAY_AT)
    for e in epochs[epochs.index(start) if start in epochs else 0:]:
        st.session_state[state.INSIDE_PLAY_AT] = e
        draw(e, f"Playing: epoch {e} of {epochs[-1]}")
        time.sleep(FRAME_SECONDS)
    st.session_state[state.INSIDE_PLAYING] = False
    st.session_state[state.INSIDE_PENDING_EPOCH] = epochs[-1]
    st.rerun()


def sections(run, data, epoch: int):
    """Every widget of the page, made once; returns draw(epoch, note), which fills the placeholders for an epoch."""
    cfg, names = run.config, data.class_names
    note_box = st.empty()
    draw_dense = None
    if data.is_tabular:
        draw_dense = tabular_sections(run, data)
    elif is_dense(inside.model_at_epoch(run, epoch, data)):
        draw_dense = dense_sections(run, data, epoch)
    elif cnn.conv_layers(inside.model_at_epoch(run, epoch, data)):
        draw_dense = conv_sections(data)
    else:
        st.info("The first layer's images, one image's journey and the MSE vs cross-entropy view are drawn for "
                "networks of dense layers; this one has other kinds too. Its dense layers' statistics are below.")

    st.subheader("Learning from inside")
    st.caption("Each layer measured after every epoch on the same 512 test images (the probe batch); the dashed "
               "line marks the epoch on the slider.")
    frame = inside.stats_frame(run.history)
    stats_box = st.empty()
    mse_box = st.empty()

    def draw(e: int, note: str = "") -> None:
        if note:
            note_box.caption(note)
        model = inside.model_at_epoch(run, e, data)
        if draw_dense is not None:
            draw_dense(model)
        with stats_box.container():
            draw_stats(run, frame, names, e)
        if draw_dense is not None and inside.mse_ce_applies(cfg):
            with mse_box.container():
                st.subheader("Why cross-entropy learns faster than MSE")
                st.caption(inside.MSE_CE_TEXT + f" This run trains with {inside.loss_words(cfg)}.")
                st.altair_chart(inside.mse_ce_chart(inside.mse_ce_frame(model, data, cfg)), width="content")

    return draw


def conv_sections(data):
    """For a CNN: the first convolution's filters, and one image's feature maps at each convolution."""
    names = data.class_names
    st.subheader("What the first convolution looks for")
    st.caption("Each tile is one filter of the first convolution: a small set of weights slid over every position "
               "of the image (dark: a large weight). The same filter finds its stroke wherever it is: weight sharing.")
    filters_box = st.empty()
    st.subheader(f"One {images_word(names)[:-1]}'s feature maps")
    pixels, true, where = pick_digit(data)
    maps_box = st.empty()

    def draw(model) -> None:
        filters_box.image(cnn.filters_image(model))
        with maps_box.container():
            probs = model.predict_proba(pixels[None])[0]
            pred = int(probs.argmax())
            verdict = "" if true is None else ", right" if pred == true else f", wrong: it is {names[true]}"
            st.markdown(f"{where}: the network says **{names[pred]}** ({probs[pred]:.0%}){verdict}.")
            st.image(inside.digit_image(pixels, data.image_shape), caption="the input")
            for i, im in enumerate(cnn.feature_map_images(model, pixels)):
                st.image(im, caption=f"convolution {i + 1}: each map is one filter's response at every position "
                                     "(dark: strong), before pooling halves it")

    return draw


def tabular_sections(run, data):
    """For a table: the first layer's weight on each feature, and one test row's features and outputs."""
    names = data.class_names
    st.subheader("What the first layer looks for")
    st.caption("Each row is a unit of the first layer (without a hidden layer, a class), each column a feature: "
               "red where a larger value of the feature raises the unit's input, blue where it lowers it.")
    first_box = st.empty()
    st.subheader("One row's journey")
    index = int(st.number_input("Test row", 0, len(data.y_test) - 1, key=state.INSIDE_INDEX))
    show_input(data, run.config, index)
    journey_box = st.empty()

    def draw(model) -> None:
        with first_box.container():
            show_first_layer(model.linears[0].params["W"], data)
        with journey_box.container():
            probs = model.predict_proba(data.scale(data.x_test[index:index + 1], run.config.input_scaling))[0]
            pred, true = int(probs.argmax()), int(data.y_test[index])
            verdict = "right" if pred == true else f"wrong: it is {names[true]}"
            st.markdown(f"Test row **{index}**: the network says **{names[pred]}** ({probs[pred]:.0%}), {verdict}.")
            st.altair_chart(inside.probability_bars(probs, names, pred, true), width="stretch")

    return draw


def dense_sections(run, data, epoch: int):
    """The first layer's units and one image's journey: their widgets, and draw(model) for their placeholders."""
    cfg, names = run.config, data.class_names
    word = images_word(names)
    st.subheader("What the first layer looks for")
    W0 = inside.model_at_epoch(run, epoch, data).linears[0].params["W"]
    hidden = bool(cfg.hidden_sizes)
    st.caption(("Each hidden unit of the first layer weighs every pixel: here are those weights as an image, "
                if hidden else "Without a hidden layer each class's output weighs every pixel directly: ") +
               "red where ink raises the unit's output, blue where it lowers it, white near 0 (each tile scaled "
               "to its own largest weight; the number under it is the weights' length ||w||).")
    c1, c2 = st.columns([1, 2])
    order = c1.radio("Order", ["by weight norm", "by unit number"], key=state.INSIDE_SORT, horizontal=True)
    units = [int(u) for u in inside.units_by(W0, "norm" if order == "by weight norm" else "index")]
    if st.session_state.get(state.INSIDE_UNIT) not in units:
        st.session_state[state.INSIDE_UNIT] = units[0]
    label = (lambda u: f"unit {u}") if hidden else (lambda u: f"{names[u]} (output {u})")
    unit = c2.selectbox("Unit", units, key=state.INSIDE_UNIT, format_func=label,
                        help=f"Its weights, and the test {word} that excite it most.")
    units_box = st.empty()

    st.subheader(f"One {word[:-1]}'s journey")
    pixels, true, where = pick_digit(data)
    explain = st.selectbox("Explain the score of", [None, *range(len(names))], key=state.INSIDE_CLASS,
                           format_func=lambda c: "the predicted class" if c is None else names[c],
                           help="The saliency map is the gradient of this class's score (its logit) with respect "
                                "to the input pixels.")
    journey_box = st.empty()
    x_test = inside.scaled_test(data.name, cfg.input_scaling, data)
    near = inside.nearest_training(data.name, pixels.tobytes(), NEAREST, data)
    st.markdown(f"**Nearest training {word}** (in pixel distance; the network's answer comes from what it "
                f"learned from {word} like these):")
    st.image(mosaic(data.x_train[near], data.image_shape, [names[data.y_train[i]] for i in near], cols=NEAREST))

    def draw(model) -> None:
        with units_box.container():
            draw_units(model.linears[0].params["W"], data, x_test, model, units, unit, label, word)
        with journey_box.container():
            x = scale_pixels(pixels[None], data.name, cfg.input_scaling)[0]
            draw_journey(model, x, journey(model, x, explain), data, pixels, true, where)

    return draw


def pick_digit(data) -> tuple[np.ndarray, int | None, str]:
    """The journey's image: random, by index, sent from Results or a drawing sent from Draw.

    Returns its uint8 pixels, its true class (None for a drawing) and a phrase naming it.
    """
    options = [inside.SOURCE_RANDOM, inside.SOURCE_INDEX]
    if st.session_state.get(state.INSIDE_DIGIT) is not None:
        options.append(inside.SOURCE_RESULTS)
    drawn = st.session_state.get(state.INSIDE_DRAWN)
    if drawn is not None and drawn[0] == data.name:  # a drawing made for this run's kind of input
        options.append(inside.SOURCE_DRAWN)
    if st.session_state.get(state.INSIDE_SOURCE) not in options:
        st.session_state[state.INSIDE_SOURCE] = inside.SOURCE_RANDOM
    c1, c2 = st.columns([2, 1], vertical_alignment="bottom")
    source = c1.radio("Image", options, key=state.INSIDE_SOURCE, horizontal=True)
    n = len(data.y_test)
    if source == inside.SOURCE_DRAWN:
        c2.caption("The drawing from the Draw page, preprocessed as MNIST's digits were.")
        return drawn[1], None, "Your drawing"
    if source == inside.SOURCE_INDEX:
        index = int(c2.number_input("Index in the test set", 0, n - 1, key=state.INSIDE_INDEX))
    elif source == inside.SOURCE_RESULTS:
        index = min(int(st.session_state[state.INSIDE_DIGIT]), n - 1)  # a run of a smaller test set may be shown
        c2.caption(f"Test image {index}, chosen on Results.")
    else:
        if c2.button("Another one", key="inside_another", icon=":material/casino:"):
            st.session_state[state.INSIDE_RANDOM] = st.session_state.get(state.INSIDE_RANDOM, 0) + 1
        index = int(np.random.default_rng(st.session_state.get(state.INSIDE_RANDOM, 0)).integers(n))
    return data.x_test[index], int(data.y_test[index]), f"Test image **{index}**"


def draw_units(W, data, x_test, model, units, unit, label, word) -> None:
    shown = units[:SHOWN_UNITS]
    norms = np.linalg.norm(W, axis=0)
    left, right = st.columns([3, 2])
    with left:
        more = f" ({len(units) - len(shown):,} more not shown)" if len(units) > len(shown) else ""
        st.image(inside.weight_mosaic(W, data.image_shape, shown, [f"{u}: {norms[u]:.2g}" for u in shown],
                                      selected=unit), caption=f"{len(shown)} units, in the order chosen{more}.")
    with right:
        response = unit_inputs(model, x_test, unit)
        top = np.argsort(-response, kind="stable")[:EXCITING]
        st.markdown(f"**{label(unit)}**: ||w|| = {norms[unit]:.3g}")
        st.image(inside.weight_tile(W[:, unit], data.image_shape, 140))
        st.markdown(f"The test {word} that excite it most (its input z = x·w + b, largest first):")
        st.image(mosaic(data.x_test[top], data.image_shape, [f"z {response[i]:.2g}" for i in top], cols=6, cell=56))


def draw_journey(model, x, j, data, pixels: np.ndarray, true: int | None, where: str) -> None:
    names = data.class_names
    verdict = "" if true is None else ", right" if j.prediction == true else f", wrong: it is {names[true]}"
    st.markdown(f"{where}: the network says **{names[j.prediction]}** "
                f"({j.probs[j.prediction]:.0%}){verdict}. Explained: the score of **{names[j.cls]}**.")
    a, b, c, d = st.columns([1, 1, 1, 2])
    a.image(inside.digit_image(pixels, data.image_shape), caption="the input")
    b.image(inside.saliency_image(pixels, j.gradient, data.image_shape), caption="saliency: d score / d pixel")
    c.image(inside.saliency_image(pixels, j.input_times_gradient, data.image_shape), caption="input × gradient")
    d.altair_chart(inside.probability_bars(j.probs, names, j.cls, true), width="stretch")
    st.caption("Saliency: red pixels would raise the explained class's score if they were darker, blue ones would "
               "lower it. Input × gradient keeps only what the pixels actually present contributed.")
    nodes, edges, labels = inside.diagram_frames(model, x, j, names, model.loss.output_name, data.image_shape[1])
    st.altair_chart(inside.network_chart(nodes, edges, labels), width="stretch")
    st.caption("Each column is a layer; a wide one shows its most active units (how many are not shown is under "
               "its name). A unit's colour is its activation relative to the layer's largest; a line is one of "
               "the three largest contributions a·w into the unit it ends at.")


def draw_stats(run, frame, names, epoch: int) -> None:
    if frame.empty:
        st.info("This run's epochs carry no layer statistics: it was saved before MLP Lab recorded them."
                if run.history else "The statistics appear after the first epoch.")
        return
    charts = [(title, text, inside.stat_chart(frame, keys, log, epoch))
              for keys, title, log, text in inside.STAT_VIEWS]
    charts = [c for c in charts if c[2] is not None]
    for row in range(0, len(charts), 2):
        for column, (title, text, chart) in zip(st.columns(2), charts[row:row + 2]):
            with column:
                st.markdown(f"**{title}**")
                st.altair_chart(chart, width="stretch")
                st.caption(text)
    accuracy = inside.class_accuracy_chart(run.history, names, epoch)
    if accuracy is not None:
        st.markdown("**Test accuracy of each class**")
        st.altair_chart(accuracy, width="stretch")
        st.caption(inside.learned_first(run.history, names))


state.run_app_first()
page()
