"""Draw: a digit drawn or uploaded, preprocessed as MNIST's were, and what a run of the session makes of it."""

import streamlit as st

from ui import state
from ui.draw import canvas_picture, my_digits_section, runs_to_ask, show_prediction, show_steps, uploaded_picture
from ui.inside import open_drawing_button
from ui.resources import get_dataset


def page() -> None:
    st.title("Draw")
    st.write("Draw a digit (or upload a picture of one) and see what a network you trained makes of it. Your "
             "drawing is made into the network's input the way MNIST's digits were made: the ink cropped, fitted "
             "into a 20x20 box and placed in a 28x28 field by its centre of mass.")
    runs = runs_to_ask()
    run = None
    if runs:
        ids = [r.id for r in runs]
        if st.session_state.get(state.DRAW_RUN) not in ids:
            st.session_state[state.DRAW_RUN] = ids[0]
        names = {r.id: r.name for r in runs}
        run = state.run_by_id(st.selectbox("Ask the network of", ids, key=state.DRAW_RUN, format_func=names.get))
    else:
        st.info("No trained network yet: train one on the **Train** page (an epoch is enough), then come back. "
                "Meanwhile you can draw and see the preprocessing.", icon=":material/model_training:")
    dataset = run.config.dataset if run is not None else "mnist"
    if dataset == "fashion-mnist":
        st.warning("This run learned Fashion-MNIST: its ten classes are clothes, so a digit can only look like one "
                   "of them.", icon=":material/checkroom:")

    left, right = st.columns([2, 3])
    with left:
        source = st.segmented_control("Input", ["Draw", "Upload"], key=state.DRAW_SOURCE, default="Draw")
        if source == "Upload":
            picture = uploaded_picture()
        else:
            stroke = st.slider("Pen width", 8, 40, 20, key=state.DRAW_STROKE)
            picture = canvas_picture(stroke)
            st.caption("Draw with the mouse or a finger; the bin icon above the canvas clears it.")
    with right:
        st.subheader("What the network sees")
        prepared = show_steps(picture, dataset) if picture is not None else None
        if picture is None:
            st.info("Draw a digit on the canvas." if source != "Upload" else "Upload a PNG or JPEG of a digit.",
                    icon=":material/draw:")
        if prepared is not None and run is not None:
            show_prediction(run, prepared.pixels, get_dataset(dataset).class_names)
            open_drawing_button(prepared.pixels, dataset, key="draw_open_inside")
    my_digits_section(run, picture if prepared is not None else None)


state.run_app_first()
page()
