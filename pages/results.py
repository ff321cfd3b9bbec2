"""Results: curves, sample digits, mistakes and a confusion matrix you can click into, for one run."""

import numpy as np
import pandas as pd
import streamlit as st
from sklearn.metrics import precision_recall_fscore_support

from ui import state
from ui.charts import (
    CM_SELECTION,
    MSE_NOTE,
    confusion_frame,
    confusion_matrix_chart,
    learning_curves_charts,
    probability_chart,
)
from ui.diagnosis import verdict
from ui.draw import export_buttons, my_digits_score
from ui.inside import confusion_epoch_widget, confusion_frame_at_epoch, open_in_inside_button, predictions_at_epoch
from ui.live import follow
from ui.mosaic import mosaic
from ui.overfit import with_early_stopping
from ui.resources import get_dataset, resume_button
from ui.tabular import rows_frame, show_mistakes, show_samples
from ui.text import images_word
from ui.workspace import share_button

GRID = 25
WATCH_SECONDS = 1.0
CELL_COLS = 4  # the clicked cell's gallery: 4 across fits its half of a laptop window unscaled, captions readable


def caption(pred: int, true: int, names: tuple[str, ...]) -> str:
    return names[pred] if pred == true else f"{names[pred]} (is {names[true]})"  # the mosaic wraps long ones


def grid(data, idx: np.ndarray, pred: np.ndarray, cols: int = 5):
    y = data.y_test
    return mosaic(data.x_test[idx], data.image_shape, [caption(pred[i], y[i], data.class_names) for i in idx],
                  wrong=pred[idx] != y[idx], cols=cols)


def mistake_label(i: int, probs: np.ndarray, pred: np.ndarray, y: np.ndarray, names) -> str:
    return f"test image {i}: predicted {names[pred[i]]} ({probs[i, pred[i]]:.0%}), is {names[y[i]]}"


def image_views(data, probs: np.ndarray, pred: np.ndarray, wrong_idx: np.ndarray) -> None:
    """Random test images and the mistakes, each with the prediction under it."""
    y = data.y_test
    left, right = st.columns(2)
    with left:
        word = images_word(data.class_names)
        st.subheader(f"Random test {word}")
        if st.button("New samples", key="new_samples", icon=":material/casino:"):
            st.session_state[state.SAMPLE_SEED] += 1
        rng = np.random.default_rng(st.session_state[state.SAMPLE_SEED])
        sample = rng.choice(len(y), GRID, replace=False)
        st.image(grid(data, sample, pred), caption=f"Predicted label under each {word[:-1]}; mistakes framed in red.")
    with right:
        st.subheader("Mistakes")
        kind = st.radio("Which mistakes", ["random", "most confident"], key="mistake_kind", horizontal=True)
        if len(wrong_idx) == 0:
            st.success("No mistakes on the test set.")
        else:
            if kind == "random":
                shown = rng.choice(wrong_idx, min(GRID, len(wrong_idx)), replace=False)
            else:  # the model was surest of these wrong answers
                shown = wrong_idx[np.argsort(-probs[wrong_idx, pred[wrong_idx]])][:GRID]
            st.image(grid(data, shown, pred), caption="Predicted label, and the true one in brackets.")
            names = data.class_names
            pick = st.selectbox("See a mistake's ten outputs", [int(i) for i in shown], key=state.MISTAKE_PICK,
                                index=None, placeholder="Choose one of the mistakes above",
                                format_func=lambda i: mistake_label(i, probs, pred, y, names))
            if pick is not None:
                st.altair_chart(probability_chart(probs[pick], names, int(pred[pick]), int(y[pick])),
                                width="stretch")


def page() -> None:
    st.title("Results")
    views()
    follow(lambda: None, WATCH_SECONDS, watch="epochs")  # an epoch ends or a run starts or ends: the views redraw


def views() -> None:
    candidates = [r for r in state.runs() if r.history]
    if not candidates:
        st.info("No results yet: train a network on the **Train** page (a run shows here after its first epoch).")
        return

    run = state.pick_run(candidates, state.RESULTS_RUN)
    data = get_dataset(run.config.dataset)
    st.caption(run.summary() + (f" — still training: the views below use the weights after epoch {run.epochs_done} "
                                "and follow each epoch as it ends." if run.in_progress else ""))
    share_button(run)
    resume_button(run, "results")
    warning = verdict(run.history, data.n_classes, run.config)
    if warning:
        st.warning(warning, icon=":material/warning:")

    st.subheader("Learning curves")
    for column, chart in zip(st.columns(2), learning_curves_charts(run.history, data.n_classes, run.config.loss)):
        column.altair_chart(with_early_stopping(chart, run.history), width="stretch")
    if run.config.loss == "mse":
        st.caption(MSE_NOTE)

    probs = run.test_predictions(data)
    pred = probs.argmax(axis=1)
    y = data.y_test
    wrong_idx = np.flatnonzero(pred != y)
    st.write(f"On the {len(y):,} test images: **{len(y) - len(wrong_idx):,} right, {len(wrong_idx):,} wrong** "
             f"({1 - len(wrong_idx) / len(y):.2%} accuracy).")
    my_digits_score(run)

    if data.is_tabular:  # rows of features instead of images
        st.subheader("Random test rows")
        if st.button("New samples", key="new_samples", icon=":material/casino:"):
            st.session_state[state.SAMPLE_SEED] += 1
        show_samples(data, probs, st.session_state[state.SAMPLE_SEED])
        st.subheader("Mistakes")
        show_mistakes(data, probs)
    else:
        image_views(data, probs, pred, wrong_idx)

    st.subheader("Confusion matrix")
    st.caption("Rows are the true class, columns the prediction. Right answers (the diagonal) are blue, mistakes "
               "red, each on its own scale so a few dozen confusions stand out. Click a cell to see its images.")
    normalized = st.radio("Show", ["counts", "share of each true class"], key=state.CM_MODE,
                          horizontal=True) != "counts"
    cm_epoch = confusion_epoch_widget(run)  # the matrix after any recorded epoch, and its cells' images
    cm = confusion_frame_at_epoch(run, cm_epoch, data.class_names)
    if cm is None or cm_epoch == run.epochs_done:
        cm, cm_pred = confusion_frame(y, pred, data.class_names), pred
    else:
        probs_then = predictions_at_epoch(run, data, cm_epoch)  # None where that epoch's weights were thinned out
        cm_pred = pred if probs_then is None else probs_then.argmax(axis=1)
        if probs_then is None:
            st.caption(f"Epoch {cm_epoch}'s weights were not kept: the matrix is that epoch's, the images below "
                       "are sorted by the final weights.")
    cm_col, cell_col = st.columns(2)
    with cm_col:
        event = st.altair_chart(confusion_matrix_chart(cm, normalized), key=state.CM_CHART, on_select="rerun",
                                selection_mode=CM_SELECTION, width="stretch")
    with cell_col:
        picked = (event.selection.get(CM_SELECTION) or []) if event else []
        if picked:
            t, p = int(picked[0]["true"]), int(picked[0]["pred"])
            in_cell = np.flatnonzero((y == t) & (cm_pred == p))
            names = data.class_names
            word = images_word(data.class_names)[:-1]
            st.markdown(f"**True {names[t]}, predicted {names[p]}: {len(in_cell)} {word}{'s' * (len(in_cell) != 1)}**"
                        + (" (first 40 shown)" if len(in_cell) > 40 else ""))
            if len(in_cell) and data.is_tabular:
                st.dataframe(rows_frame(data, in_cell[:40], probs), hide_index=True)
            elif len(in_cell):
                st.image(grid(data, in_cell[:40], cm_pred, cols=CELL_COLS))
                chosen = st.selectbox("Follow one of them through the network", [int(i) for i in in_cell[:40]],
                                      key=state.CM_FOLLOW, format_func=lambda i: f"test image {i}")
                open_in_inside_button(chosen, key="cm_open_inside")
        else:
            st.info("Click a cell of the matrix to see the digits in it.", icon=":material/touch_app:")

    st.subheader("Per-class scores")
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=np.arange(data.n_classes),
                                                                     zero_division=0)
    st.dataframe(pd.DataFrame({"class": data.class_names, "precision": precision, "recall": recall, "F1": f1,
                               "test images": support}),
                 hide_index=True, column_config={c: st.column_config.NumberColumn(format="%.3f")
                                                 for c in ("precision", "recall", "F1")})
    export_buttons(run)


state.run_app_first()
page()
