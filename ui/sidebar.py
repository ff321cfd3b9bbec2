"""The sidebar form: preset, every TrainConfig field, validation under each field, and the shareable URL."""

from __future__ import annotations

import dataclasses

import streamlit as st

from engine import PRESETS, TrainConfig, parse_hidden_sizes
from engine.backends import TORCH_INSTALL_HINT, torch_available
from engine.config import ACTIVATION_CHOICES as ACTIVATION_LABELS
from engine.config import BACKENDS, DATASET_NAMES, DEVICES, INIT_LABELS, INITS
from engine.config import DATASET_CHOICES as DATASET_LABELS
from engine.config import INPUT_SCALING_CHOICES as INPUT_SCALING_LABELS
from engine.config import LOSS_CHOICES as LOSS_LABELS
from engine.config import OPTIMIZER_CHOICES as OPTIMIZER_LABELS
from engine.config import OUTPUT_CHOICES as OUTPUT_LABELS
from engine.data import INPUT_SCALINGS
from engine.layers import ACTIVATIONS
from engine.losses import LOSSES, OUTPUTS, make_loss
from engine.optim import OPTIMIZERS
from ui import state
from ui.naming import USER_FIELDS, config_diff, run_label
from ui.resources import get_dataset

CUSTOM = "custom"
DEFAULT_PRESET = "notebook-mse"
CHOICES = {"dataset": DATASET_NAMES, "activation": tuple(ACTIVATIONS), "output": OUTPUTS, "loss": LOSSES,
           "optimizer": tuple(OPTIMIZERS), "init": INITS, "backend": BACKENDS, "device": DEVICES,
           "input_scaling": INPUT_SCALINGS}


def choice_label(field: str):
    """format_func for a TrainConfig field's selectbox: the label its metadata gives each choice, else the value."""
    meta = next((f.metadata for f in dataclasses.fields(TrainConfig) if f.name == field), {})
    labels = meta.get("choices") or {}
    return lambda value: labels.get(value, str(value))


def widget_values(cfg: TrainConfig) -> dict:
    """The sidebar's widget values that show cfg."""
    values = cfg.to_dict()
    values["hidden_sizes"] = ",".join(str(h) for h in cfg.hidden_sizes)
    values["train_limit"] = cfg.train_limit or 0
    del values["betas"]
    return values


def _apply_preset() -> None:
    name = st.session_state[state.PRESET]
    if name == CUSTOM:
        return
    st.session_state[state.BASE_PRESET] = name
    for key, value in widget_values(PRESETS[name].config).items():
        if key not in USER_FIELDS:
            st.session_state[key] = value


def _remember_more_options() -> None:
    st.session_state[state.MORE_OPTIONS_OPEN] = st.session_state[state.MORE_OPTIONS]


def config_from_state() -> TrainConfig | None:
    """The TrainConfig the widgets' values describe, or None where one is invalid (the form says which)."""
    ss = st.session_state
    try:
        return TrainConfig(
            dataset=ss["dataset"], hidden_sizes=parse_hidden_sizes(ss["hidden_sizes"]), activation=ss["activation"],
            output=ss["output"], loss=ss["loss"], optimizer=ss["optimizer"],
            learning_rate=float(ss["learning_rate"] or 0), momentum=float(ss["momentum"]),
            batch_size=int(ss["batch_size"]), epochs=int(ss["epochs"]), init=ss["init"], l2=float(ss["l2"]),
            dropout=float(ss["dropout"]), val_split=float(ss["val_split"]),
            train_limit=int(ss["train_limit"]) or None, seed=int(ss["seed"]), backend=ss["backend"],
            device=ss["device"], input_scaling=ss["input_scaling"])
    except (ValueError, TypeError, KeyError):
        return None


def _sync_preset_choice() -> None:
    """The Preset box names a preset only while the setup is that preset; edited, it reads "Custom (edited ...)",
    so choosing the preset again is a change and reloads it (a selectbox reports no re-pick of its value)."""
    ss = st.session_state
    name, base = ss[state.PRESET], ss.get(state.BASE_PRESET)
    cfg = config_from_state()
    if name != CUSTOM:
        ss[state.BASE_PRESET] = base = name
        if cfg is None or not preset_matches(cfg, name):
            ss[state.PRESET] = CUSTOM
    elif base in PRESETS and cfg is not None and preset_matches(cfg, base):
        ss[state.PRESET] = base


def preset_label(base: str | None):
    """format_func for the Preset box: Custom reads "Custom (edited <base>)" once a preset was edited."""
    return lambda name: name if name != CUSTOM else f"Custom (edited {base})" if base in PRESETS else "Custom"


def running_panel() -> None:
    """While runs train the form is locked: say what is training, so the form's values are not taken for it."""
    busy = [r for r in state.runs() if r.in_progress]
    with st.container(border=True):
        st.markdown("**Training now**")
        for r in busy:
            c = r.config
            st.markdown(f"{r.name}  \n{c.dataset} · layers {c.layers_text('in', 'out')} · {c.activation} · "
                        f"{c.output} / {c.loss} · {c.optimizer} · learning rate {c.learning_rate:g} · batch "
                        f"{c.batch_size} · {c.epochs} epochs · {c.backend}")
        st.caption("The form below is your next setup; it unlocks when training ends.")


def _init_defaults() -> None:
    if state.PRESET in st.session_state:
        return
    st.session_state[state.PRESET] = DEFAULT_PRESET
    for key, value in widget_values(PRESETS[DEFAULT_PRESET].config).items():
        st.session_state.setdefault(key, value)
    _read_url()


def _read_url() -> None:
    """Fill the widgets from the query string (a shared link); bad values are named and skipped."""
    params = st.query_params.to_dict()
    if not params:
        return
    ignored = []
    if params.get(state.PRESET) in (CUSTOM, *PRESETS):
        st.session_state[state.PRESET] = params[state.PRESET]
        _apply_preset()
    defaults = widget_values(TrainConfig())
    for key, text in params.items():
        if key not in defaults:
            continue
        try:
            value = type(defaults[key])(text)
            if key == "hidden_sizes":
                parse_hidden_sizes(text)
            if key in CHOICES and value not in CHOICES[key]:
                raise ValueError(key)
            st.session_state[key] = value
        except ValueError:
            ignored.append(key)
    if ignored:
        st.session_state["url_warning"] = (f"The link's value for {', '.join(ignored)} could not be read "
                                           "and was skipped.")


def _write_url(cfg: TrainConfig) -> None:
    query = {k: str(v) for k, v in widget_values(cfg).items()}
    query[state.PRESET] = st.session_state.get(state.BASE_PRESET) or st.session_state[state.PRESET]
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


def preset_matches(cfg: TrainConfig, name: str) -> bool:
    preset = PRESETS[name].config
    return all(getattr(cfg, f) == getattr(preset, f) for f in preset.to_dict() if f not in USER_FIELDS)


def config_sidebar() -> TrainConfig | None:
    """Draw the configuration form; returns the TrainConfig, or None with errors shown under the fields."""
    _init_defaults()
    errors: dict[str, str] = {}
    locked = state.any_run_in_progress()
    ss = st.session_state
    with st.sidebar:
        st.header("Network")
        if ss.get("url_warning"):
            st.warning(ss.pop("url_warning"))
        if locked:
            running_panel()
            st.caption("Settings are locked while a run is in progress.")
        _sync_preset_choice()
        st.selectbox("Preset", [CUSTOM, *PRESETS], key=state.PRESET, on_change=_apply_preset, disabled=locked,
                     format_func=preset_label(ss.get(state.BASE_PRESET)),
                     help="Each preset reproduces a classic MNIST tutorial. Choosing one loads it, also after edits.")
        preset_caption = st.empty()
        st.selectbox("Dataset", DATASET_NAMES, key="dataset", format_func=DATASET_LABELS.get, disabled=locked)
        try:
            get_dataset(ss["dataset"])  # loaded once per process, so Train starts at once
        except (OSError, ValueError) as err:
            errors["dataset"] = f"This dataset cannot be loaded: {err}"
            st.error(errors["dataset"])
        st.text_input("Hidden layer sizes", key="hidden_sizes", disabled=locked,
                      help="Widths of the hidden layers, comma-separated, e.g. 64,16. Empty: no hidden layer.")
        try:
            hidden = parse_hidden_sizes(ss["hidden_sizes"])
        except ValueError as err:
            errors["hidden_sizes"] = str(err)
            st.error(str(err))
            hidden = None
        st.selectbox("Hidden activation", list(ACTIVATIONS), key="activation", format_func=ACTIVATION_LABELS.get,
                     disabled=locked)
        st.selectbox("Output activation", OUTPUTS, key="output", format_func=OUTPUT_LABELS.get, disabled=locked)
        st.selectbox("Loss", LOSSES, key="loss", format_func=LOSS_LABELS.get, disabled=locked)
        try:
            make_loss(ss["loss"], ss["output"])
        except ValueError as err:
            errors["loss"] = str(err)
            st.error(str(err))

        st.header("Training")
        st.selectbox("Optimizer", list(OPTIMIZERS), key="optimizer", format_func=OPTIMIZER_LABELS.get,
                     disabled=locked)
        st.number_input("Learning rate", key="learning_rate", format="%g", step=None, min_value=None,
                        disabled=locked, help="Any positive number, e.g. 3, 0.5 or 1e-3.")
        if not ss["learning_rate"] or ss["learning_rate"] <= 0:
            errors["learning_rate"] = "The learning rate must be a positive number."
            st.error(errors["learning_rate"])
        st.number_input("Batch size", key="batch_size", min_value=1, max_value=60000, step=1, disabled=locked)
        st.number_input("Epochs", key="epochs", min_value=1, max_value=1000, step=1, disabled=locked)
        st.selectbox("Initialisation", INITS, key="init", format_func=INIT_LABELS.get, disabled=locked)
        st.number_input("Seed", key="seed", min_value=0, step=1, disabled=locked)
        st.selectbox("Backend", BACKENDS, key="backend", format_func=choice_label("backend"), disabled=locked)
        if ss["backend"] == "torch" and not torch_available():
            errors["backend"] = TORCH_INSTALL_HINT
            st.error(TORCH_INSTALL_HINT)
        with st.expander("More options", expanded=ss.get(state.MORE_OPTIONS_OPEN, False), key=state.MORE_OPTIONS,
                         on_change=_remember_more_options):  # stays as the learner left it, across runs and pages
            st.selectbox("Device (PyTorch)", DEVICES, key="device", disabled=locked or ss["backend"] != "torch",
                         help="auto picks a CUDA GPU when there is one, then Apple's MPS, then the CPU.")
            st.number_input("Momentum", key="momentum", min_value=0.0, max_value=0.999, format="%g",
                            disabled=locked or ss["optimizer"] != "momentum")
            st.number_input("L2 weight decay", key="l2", min_value=0.0, format="%g", disabled=locked)
            st.slider("Dropout", key="dropout", min_value=0.0, max_value=0.9, step=0.05, disabled=locked)
            st.slider("Validation split", key="val_split", min_value=0.0, max_value=0.5, step=0.05,
                      disabled=locked, help="Fraction of the training set held out to watch over-fitting.")
            st.number_input("Training subset (0 = all)", key="train_limit", min_value=0, step=1000,
                            disabled=locked)
            st.selectbox("Input scaling", INPUT_SCALINGS, key="input_scaling",
                         format_func=INPUT_SCALING_LABELS.get, disabled=locked)

        cfg = None
        if not errors:
            try:
                cfg = TrainConfig(
                    dataset=ss["dataset"], hidden_sizes=hidden, activation=ss["activation"], output=ss["output"],
                    loss=ss["loss"], optimizer=ss["optimizer"], learning_rate=float(ss["learning_rate"]),
                    momentum=float(ss["momentum"]), batch_size=int(ss["batch_size"]), epochs=int(ss["epochs"]),
                    init=ss["init"], l2=float(ss["l2"]), dropout=float(ss["dropout"]),
                    val_split=float(ss["val_split"]), train_limit=int(ss["train_limit"]) or None,
                    seed=int(ss["seed"]), backend=ss["backend"], device=ss["device"],
                    input_scaling=ss["input_scaling"])
            except ValueError as err:
                errors["config"] = str(err)
                st.error(str(err))
        base = ss.get(state.BASE_PRESET)
        if cfg is not None and base in PRESETS:
            preset, diff = PRESETS[base], config_diff(cfg, base)
            preset_caption.caption(f"Preset **{base}**" + (f" (modified: {', '.join(diff)})" if diff else "")
                                   + f": {preset.source}; the tutorial reported {preset.reported}.")
        if cfg is not None:
            _write_url(cfg)
            st.caption("The page's address now encodes this setup: share it to reproduce it.")
    ss[state.CONFIG] = cfg
    ss[state.CONFIG_LABEL] = run_label(cfg, base) if cfg is not None else CUSTOM
    return cfg
