"""Data: the built-in tables (scikit-learn's wine, breast cancer, iris) and your own CSV, as datasets to train on."""

import streamlit as st

from engine import PRESETS, TrainConfig
from engine.config import ConfigError
from engine.tabular import (
    BUILTIN,
    MAX_CSV_BYTES,
    WINE_QUALITY,
    WINE_QUALITY_FILE,
    WINE_QUALITY_URL,
    is_wine_quality,
)
from ui import state
from ui.naming import run_label
from ui.resources import get_dataset, start_run
from ui.runs import TrainingRun
from ui.tabular import dataset_label, show_dataset, upload_csv

USER_FIELDS = ("seed", "backend", "device")  # what a preset leaves as the sidebar has it


def train_on(cfg: TrainConfig, label: str) -> None:
    """Start a run of cfg, as the Train page's button does; the Train page follows it."""
    run = TrainingRun(cfg)
    run.name = f"{run.short_id} {label}"
    state.runs().append(run)
    st.session_state[state.ACTIVE_RUN] = run.id
    st.session_state[state.FOLLOWED_RUNS] = [run.id]
    start_run(run)
    st.success(f"Started {run.name}.", icon=":material/model_training:")
    st.page_link("pages/train.py", label="Watch it on the Train page", icon=":material/arrow_forward:")


def config_for(name: str) -> tuple[TrainConfig | None, str]:
    """The run the Train-on-it button starts: wine-quality's preset for that table, else the sidebar's setup on
    this dataset (scaled min-max where the sidebar scales pixels); None and why where that is not valid."""
    sidebar = st.session_state.get(state.CONFIG) or TrainConfig()
    try:
        if name == WINE_QUALITY:
            preset = PRESETS[WINE_QUALITY].config
            return preset.replace(**{f: getattr(sidebar, f) for f in USER_FIELDS}), WINE_QUALITY
        scaling = "minmax" if sidebar.input_scaling == "unit" else sidebar.input_scaling
        cfg = sidebar.replace(dataset=name, input_scaling=scaling)
        return cfg, run_label(cfg, st.session_state.get(state.BASE_PRESET))
    except ConfigError as err:
        return None, str(err)


def train_button(name: str, key: str) -> None:
    cfg, label = config_for(name)
    if cfg is None:
        st.warning(f"The sidebar's setup does not fit this table: {label}", icon=":material/warning:")
        return
    what = "the wine-quality preset (the Kaggle course's setup)" if name == WINE_QUALITY else \
        f"the sidebar's network ({cfg.architecture}, {cfg.epochs} epochs)"
    if st.button(f"Train {what} on it", key=key):
        train_on(cfg, label)


def page() -> None:
    st.title("Data")
    st.write("Besides images, a network can learn from a table: each row an example, each column a measurement, "
             "one column the class to predict. Tables are split 70/30 into training and test rows (scikit-learn's "
             "`train_test_split`, `random_state=1234`, as the Kaggle course does) and scaled as the sidebar's "
             "*input scaling* says: min-max fitted on the training rows, or standardized.")
    built_in, own = st.tabs(["Built-in tables", "Your CSV"])
    with built_in:
        name = st.selectbox("Table", list(BUILTIN), key=state.DATA_TABLE, format_func=dataset_label)
        show_dataset(get_dataset(name))
        train_button(name, state.DATA_TRAIN)
    with own:
        st.write(f"Upload a CSV (comma, semicolon or tab separated, up to {MAX_CSV_BYTES // 2**20} MB). Every column "
                 "but the label must hold numbers; rows with a missing value are left out; the label may be numbers "
                 "or words, each distinct value a class. The Kaggle course's red wine table is "
                 f"**{WINE_QUALITY_FILE}**, from {WINE_QUALITY_URL}: upload it with the label column *quality* "
                 "and the *wine-quality* preset trains on it.")
        data = upload_csv()
        if data is not None:
            show_dataset(data)
            train_button(WINE_QUALITY if is_wine_quality(data) else data.name, state.DATA_TRAIN_UPLOAD)


state.run_app_first()
page()
