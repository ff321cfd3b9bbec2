"""Tables instead of images: the views of a tabular run (rows of features, class names) for Results, Inside and
Compare, and the Data page's pieces (a dataset's overview, a CSV upload registered as a dataset).

Frames and charts are built by pure functions (tested); the `show_*` functions draw them.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from engine import TrainConfig
from engine.config import DATASET_CHOICES
from engine.data import Dataset, load_dataset
from engine.tabular import CsvError, csv_columns, register_csv, upload_name
from ui import state

SAMPLE_ROWS = 12
MAX_TABLE_ROWS = 500  # rows a dataset's table shows on the Data page


def rows_frame(data: Dataset, idx: np.ndarray, probs: np.ndarray | None = None) -> pd.DataFrame:
    """Test rows `idx` as a table: the features as the file gave them, the class by name and, with `probs`
    (n_test, n_classes), the network's answer, its probability and whether it is right."""
    df = pd.DataFrame(data.x_test[idx], columns=list(data.feature_names), index=pd.Index(idx, name="test row"))
    df.insert(0, "class", [data.class_names[c] for c in data.y_test[idx]])
    if probs is not None:
        pred = probs[idx].argmax(axis=1)
        df.insert(1, "predicted", [data.class_names[c] for c in pred])
        df.insert(2, "probability", probs[idx, pred])
        df.insert(3, "right", pred == data.y_test[idx])
    return df


def mistakes_frame(data: Dataset, probs: np.ndarray, n: int = 50) -> pd.DataFrame:
    """The test rows the network gets wrong, the most confident mistakes first (at most n)."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != data.y_test)
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:n]
    return rows_frame(data, wrong, probs)


def feature_summary(data: Dataset) -> pd.DataFrame:
    """Per feature, over the training rows: min, max, mean and std (what min-max and standardized scaling use)."""
    r = data.feature_ranges
    return pd.DataFrame({k: r[k] for k in ("min", "max", "mean", "std")}, index=pd.Index(data.feature_names,
                                                                                          name="feature"))


def class_counts(data: Dataset) -> pd.DataFrame:
    """Rows per class in the training and test parts, by class name."""
    k = data.n_classes
    return pd.DataFrame({"training rows": np.bincount(data.y_train, minlength=k),
                         "test rows": np.bincount(data.y_test, minlength=k)},
                        index=pd.Index(data.class_names, name="class"))


def feature_weights_chart(W: np.ndarray, feature_names: tuple[str, ...], max_units: int = 64) -> alt.Chart:
    """The first layer's weights (n_features, n_units) as a heatmap, feature by unit: Inside's counterpart of the
    weight images of a network on pictures. Red pushes a unit up, blue down."""
    W = W[:, :max_units]
    df = pd.DataFrame({"feature": np.repeat(feature_names, W.shape[1]), "unit": np.tile(np.arange(W.shape[1]), len(W)),
                       "weight": W.ravel().astype(float)})
    limit = float(np.abs(W).max()) or 1.0
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("unit:O", title="hidden unit of the first layer"),
        y=alt.Y("feature:N", sort=list(feature_names), title=None),
        color=alt.Color("weight:Q", scale=alt.Scale(scheme="redblue", domain=[limit, -limit])),
        tooltip=["feature", "unit", alt.Tooltip("weight:Q", format=".3f")],
    ).properties(height=max(120, 18 * len(feature_names)))


def input_frame(data: Dataset, cfg: TrainConfig, i: int) -> pd.DataFrame:
    """Test row i's features as the file gave them and as the network sees them (the config's scaling)."""
    raw = data.x_test[i]
    return pd.DataFrame({"value": raw, "network input": data.scale(raw[None], cfg.input_scaling)[0]},
                        index=pd.Index(data.feature_names, name="feature"))


def dataset_label(name: str) -> str:
    """A dataset's name as a learner reads it (an upload: its file and label column)."""
    return DATASET_CHOICES.get(name, name)


# ---------------------------------------------------------------- drawing: Results, Inside, Compare

def show_samples(data: Dataset, probs: np.ndarray, seed: int = 0) -> None:
    """Results' sample grid for a table: some test rows with the class, the network's answer and its probability."""
    idx = np.sort(np.random.default_rng(seed).choice(len(data.y_test), min(SAMPLE_ROWS, len(data.y_test)),
                                                     replace=False))
    st.dataframe(rows_frame(data, idx, probs), width="stretch", column_config=_probability_column())


def show_mistakes(data: Dataset, probs: np.ndarray) -> None:
    """Results' mistakes for a table: the wrong test rows, most confident first."""
    df = mistakes_frame(data, probs)
    if df.empty:
        st.success("No mistakes on the test rows.")
        return
    st.caption(f"{int((probs.argmax(axis=1) != data.y_test).sum())} of {len(data.y_test)} test rows are wrong; "
               f"the most confident mistakes first.")
    st.dataframe(df.drop(columns="right"), width="stretch", column_config=_probability_column())


def show_first_layer(W: np.ndarray, data: Dataset) -> None:
    """Inside's first-layer view for a table."""
    st.altair_chart(feature_weights_chart(W, data.feature_names), width="stretch")


def show_input(data: Dataset, cfg: TrainConfig, i: int) -> None:
    """Inside's 'one input' panel for a table: the row's features, raw and scaled."""
    st.dataframe(input_frame(data, cfg, i), width="stretch")


def _probability_column() -> dict:
    return {"probability": st.column_config.ProgressColumn("probability", min_value=0.0, max_value=1.0,
                                                           format="percent")}


# ---------------------------------------------------------------- drawing: the Data page

def show_dataset(data: Dataset) -> None:
    """A tabular dataset: what it is, its classes, its features' ranges and its training rows."""
    st.markdown(f"**{dataset_label(data.name)}**: {len(data.y_train)} training rows and {len(data.y_test)} test rows "
                f"(a 70/30 split, random_state 1234), {data.n_features} features, {data.n_classes} classes.")
    left, right = st.columns([1, 2])
    left.dataframe(class_counts(data), width="stretch")
    right.dataframe(feature_summary(data), width="stretch")
    rows = pd.DataFrame(data.x_train[:MAX_TABLE_ROWS], columns=list(data.feature_names))
    rows.insert(0, "class", [data.class_names[c] for c in data.y_train[:MAX_TABLE_ROWS]])
    st.dataframe(rows, width="stretch", height=300)


def upload_csv() -> Dataset | None:
    """The CSV upload: the file, its label column, then registered as a dataset of the session; None until then.

    The uploaded file's bytes are kept under state.DATA_CSV (name, bytes), so the steps survive reruns.
    """
    upload = st.file_uploader("A CSV file: a header row naming the columns, one row per example", type=["csv"],
                              key=state.DATA_UPLOAD)
    if upload is not None:
        st.session_state[state.DATA_CSV] = (upload.name, upload.getvalue())
    if st.session_state.get(state.DATA_CSV) is None:
        return None
    filename, raw = st.session_state[state.DATA_CSV]
    try:
        columns = csv_columns(raw)
    except CsvError as err:
        st.error(f"{filename}: {err}", icon=":material/error:")
        return None
    default = "quality" if "quality" in columns else columns[-1]
    if st.session_state.get(state.DATA_LABEL) not in columns:
        st.session_state[state.DATA_LABEL] = default
    label = st.selectbox("The label column (what the network learns to predict)", columns, key=state.DATA_LABEL)
    if st.button("Use this file", key=state.DATA_REGISTER, type="primary"):
        try:
            data, dropped = register_csv(raw, label, filename)
        except CsvError as err:
            st.error(f"{filename}: {err}", icon=":material/error:")
            return None
        st.session_state[state.DATA_REGISTERED] = (data.name, dropped)
    name, dropped = st.session_state.get(state.DATA_REGISTERED) or (None, 0)
    if name != upload_name(raw, label):
        return None
    data = load_dataset(name)
    note = f" {dropped} rows with missing values were left out." if dropped else ""
    st.success(f"{filename} is a dataset now: {len(data.y_train) + len(data.y_test)} rows, {data.n_features} "
               f"features, classes {', '.join(data.class_names)}.{note}", icon=":material/check_circle:")
    return data
