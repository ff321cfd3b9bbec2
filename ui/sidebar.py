"""The sidebar form, built from TrainConfig's field metadata: a preset, a widget per field (sliders with the exact
value typeable beside them), each field's error under it, the quick look, classroom locks, and the shareable URL."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from engine import PRESETS, TrainConfig
from engine.backends import TORCH_INSTALL_HINT, torch_available
from engine.config import FIELDS, ConfigError, check_value, describe, layer_spec, parse_value, range_text
from ui import state
from ui.lessons import LESSONS
from ui.naming import USER_FIELDS, config_diff, run_label
from ui.resources import get_dataset
from ui.url import CUSTOM, DEFAULT_PRESET, KEPT, PRESET, Link, decode, encode, widget_values

QUICK_IMAGES, QUICK_EPOCHS = 10_000, 3  # the quick look: a subset this large, at most this many epochs
MAX_DEPTH = 6  # hidden layers the depth slider offers; the text field takes more


def one_two_five(low: int, high: int) -> list[float]:
    """1, 2, 5 times each power of ten from 10**low to 10**high."""
    return [float(f"{m}e{e}") for e in range(low, high + 1) for m in (1, 2, 5)]


def preset_values(name: str) -> set:
    return {getattr(p.config, name) for p in PRESETS.values()}


def grid(*parts) -> list:
    return sorted(set().union(*parts))


# A slider per numeric field: its steps (every preset's value among them) and how a step reads.
WIDTHS = grid([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048],
              {t for p in PRESETS.values() for t in p.config.hidden_sizes if isinstance(t, int)})
SLIDERS: dict[str, list] = {
    "learning_rate": grid(one_two_five(-5, 0), [10.0], preset_values("learning_rate")),
    "batch_size": grid([2 ** k for k in range(13)], preset_values("batch_size")),
    "epochs": grid(range(1, 31), range(40, 101, 10), {e for e in preset_values("epochs") if e <= 100}),
    "momentum": grid([0.0, 0.5, 0.8, 0.9, 0.95, 0.99], preset_values("momentum")),
    "l2": grid([0.0], one_two_five(-6, -1), preset_values("l2")),
    "dropout": grid([i / 20 for i in range(19)], preset_values("dropout")),
    "val_split": grid([i / 20 for i in range(19)], preset_values("val_split")),
    "train_limit": grid([0, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000],
                        {p.config.train_limit or 0 for p in PRESETS.values()}),
    "patience": list(range(21)),  # early stopping (issue 17), where TrainConfig has it
}
GROUPS = {  # the rest of the fields go under "More options"
    "Network": ("dataset", "hidden_sizes", "activation", "output", "loss"),
    "Training": ("optimizer", "learning_rate", "batch_size", "epochs", "init", "seed", "backend", "device"),
}
ENABLED_BY = {"device": ("backend", "torch"), "momentum": ("optimizer", "momentum"), "betas": ("optimizer", "adam"),
              "min_delta": ("patience", None)}  # the field matters only when the other one says so (None: not 0)


def step_text(name: str):
    """format_func for a field's slider."""
    if name == "train_limit":
        return lambda v: "all" if not v else f"{v:,}"
    return lambda v: f"{v:g}"


def nearest(options: list, value: Any) -> Any:
    """The slider step closest to value (by ratio for positive numbers: the steps are log-spaced)."""
    try:
        v = float(value)
    except (TypeError, ValueError):  # an emptied box
        return options[0]
    return min(options, key=lambda o: abs(o - v) if o <= 0 or v <= 0 else abs(math.log(o / v)))


# ---------------------------------------------------------------- hidden layers: sliders beside the text


def dense_widths(text: str) -> list[int] | None:
    """The widths when the text is only plain dense layers the sliders can show; else None (the text rules)."""
    try:
        specs = [layer_spec(t) for t in text.replace(" ", ",").split(",") if t.strip()]
    except ConfigError:
        return None
    plain = all(s.kind == "dense" and not s.batch_norm and s.dropout is None for s in specs)
    return [s.size for s in specs] if plain and len(specs) <= MAX_DEPTH else None


def _depth_changed() -> None:
    ss = st.session_state
    widths = dense_widths(ss["hidden_sizes"]) or []
    depth = ss[state.HIDDEN_DEPTH]
    widths = (widths + [widths[-1] if widths else 32] * depth)[:depth]
    ss["hidden_sizes"] = ",".join(map(str, widths))


def _width_changed(i: int) -> None:
    ss = st.session_state
    widths = dense_widths(ss["hidden_sizes"]) or []
    if i < len(widths):
        widths[i] = ss[f"{state.HIDDEN_WIDTH}{i}"]
        ss["hidden_sizes"] = ",".join(map(str, widths))


def hidden_layer_sliders(disabled: bool) -> None:
    ss = st.session_state
    widths = dense_widths(ss["hidden_sizes"])
    if widths is None:
        st.caption("The sliders follow plain dense layers (up to 6); this network is written in the text field above, "
                   "which rules.")
        return
    show_on_slider(state.HIDDEN_DEPTH, len(widths))
    st.slider("Hidden layers", 0, MAX_DEPTH, key=state.HIDDEN_DEPTH, on_change=_depth_changed, disabled=disabled,
              help="How many hidden layers; each gets a width slider below.")
    for i, w in enumerate(widths):
        key = f"{state.HIDDEN_WIDTH}{i}"
        show_on_slider(key, nearest(WIDTHS, w))
        st.select_slider(f"Layer {i + 1} width", WIDTHS, key=key, on_change=_width_changed, args=(i,),
                         disabled=disabled, help="Units in this layer (log-spaced steps; type any width above).")


# ---------------------------------------------------------------- reading the form


def field_value(name: str, value: Any) -> Any:
    """The TrainConfig value of a field's widget value, checked (a ConfigError names the field)."""
    if name in ("hidden_sizes", "betas"):
        return parse_value(name, value)
    if name == "train_limit" and not value:
        return None
    if value is None:
        raise ConfigError(name, f"{describe(name)['label']} is empty; it must be {range_text(name)}.")
    check_value(name, value)
    return value


def read_form() -> tuple[TrainConfig | None, dict[str, str]]:
    """The TrainConfig the widgets describe, or None and each error's sentence by field."""
    ss, values, errors = st.session_state, {}, {}
    for name in FIELDS:
        try:
            values[name] = field_value(name, ss[name])
        except ConfigError as err:
            errors[err.field] = str(err)
    if errors:
        return None, errors
    try:
        return TrainConfig(**values), {}
    except ConfigError as err:
        return None, {err.field: str(err)}


def quick_look(cfg: TrainConfig) -> TrainConfig:
    """The quick look's version of cfg: a 10,000-image subset, at most 3 epochs."""
    return cfg.replace(train_limit=min(cfg.train_limit or QUICK_IMAGES, QUICK_IMAGES),
                       epochs=min(cfg.epochs, QUICK_EPOCHS))


# ---------------------------------------------------------------- presets, the link, locks


def _apply_preset() -> None:
    ss = st.session_state
    name = ss[state.PRESET]
    if name == CUSTOM:
        return
    ss[state.BASE_PRESET] = name
    for key, value in widget_values(PRESETS[name].config).items():
        if key not in USER_FIELDS and key not in ss.get(state.LOCKED, {}):
            ss[key] = value


def preset_matches(cfg: TrainConfig, name: str) -> bool:
    preset = PRESETS[name].config
    return all(getattr(cfg, f) == getattr(preset, f) for f in FIELDS if f not in USER_FIELDS)


def _sync_preset_choice(cfg: TrainConfig | None) -> None:
    """The Preset box names a preset only while the setup is that preset; edited, it reads "Custom (edited ...)",
    so choosing the preset again is a change and reloads it (a selectbox reports no re-pick of its value)."""
    ss = st.session_state
    name, base = ss[state.PRESET], ss.get(state.BASE_PRESET)
    if name != CUSTOM:
        ss[state.BASE_PRESET] = name
        if cfg is None or not preset_matches(cfg, name):
            ss[state.PRESET] = CUSTOM
    elif base in PRESETS and cfg is not None and preset_matches(cfg, base):
        ss[state.PRESET] = base


def preset_label(base: str | None):
    """format_func for the Preset box: Custom reads "Custom (edited <base>)" once a preset was edited."""
    return lambda name: name if name != CUSTOM else f"Custom (edited {base})" if base in PRESETS else "Custom"


def _remember_more_options() -> None:
    st.session_state[state.MORE_OPTIONS_OPEN] = st.session_state[state.MORE_OPTIONS]


def _dismiss_notices() -> None:
    st.session_state[state.URL_NOTICES] = ()


def _init_from_link() -> None:
    """Once per session: fill the widgets from the address (a shared or classroom link); bad parts become notices."""
    ss = st.session_state
    if state.PRESET in ss:
        return
    link: Link = decode(st.query_params.to_dict(), LESSONS)
    ss[state.PRESET] = link.preset
    ss[state.BASE_PRESET] = link.preset if link.preset in PRESETS else DEFAULT_PRESET
    for key, value in link.values.items():
        ss[key] = value
    ss[state.QUICK_LOOK] = link.quick_look
    ss[state.LOCKED] = {name: ss[name] for name in link.locked}  # a locked field keeps the link's value
    ss[state.HIDDEN] = link.hidden
    ss[state.URL_NOTICES] = link.notices
    if link.lesson:
        ss[state.LESSON] = link.lesson
        ss[state.LESSON_LINK] = True


def _write_url(cfg: TrainConfig) -> None:
    ss = st.session_state
    query = encode(widget_values(cfg), ss.get(state.BASE_PRESET) or ss[state.PRESET], tuple(ss[state.LOCKED]),
                   ss[state.HIDDEN], ss.get(state.LESSON), ss[state.QUICK_LOOK])
    current = st.query_params.to_dict()
    query |= {k: v for k, v in current.items() if k in KEPT}
    if current != query:
        st.query_params.from_dict(query)


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


# ---------------------------------------------------------------- drawing a field


def show_on_slider(key: str, value: Any) -> None:
    """Move a slider to value before it is drawn; only when it shows another step, since every assignment makes the
    browser redraw the slider from the server (a drag in progress would jump back)."""
    if st.session_state.get(key) != value:
        st.session_state[key] = value


def _slider_moved(name: str) -> None:
    st.session_state[name] = st.session_state[name + state.SLIDER]


def field_widget(name: str, disabled: bool, error: str | None) -> None:
    """The widget(s) of one TrainConfig field, from its metadata, with its error under it."""
    ss, meta = st.session_state, describe(name)
    if name in ENABLED_BY:
        other, wanted = ENABLED_BY[name]
        disabled = disabled or (not ss.get(other) if wanted is None else ss.get(other) != wanted)
    label, help_text = meta["label"], meta["help"]
    if meta["choices"] is not None:
        choices = meta["choices"]
        st.selectbox(label, list(choices), key=name, format_func=lambda v: choices.get(v, str(v)), help=help_text,
                     disabled=disabled)
    elif name in ("hidden_sizes", "betas"):
        st.text_input(label, key=name, help=help_text, disabled=disabled)
    elif name in SLIDERS:
        options, key = SLIDERS[name], name + state.SLIDER
        show_on_slider(key, nearest(options, ss[name]))
        left, right = st.columns([5, 2], vertical_alignment="bottom")
        left.select_slider(label, options, key=key, format_func=step_text(name), on_change=_slider_moved,
                           args=(name,), help=help_text, disabled=disabled)
        number_box(right, name, disabled, collapsed=True)
    else:
        number_box(st, name, disabled, collapsed=False)
    if error:
        st.error(error)


def number_box(where, name: str, disabled: bool, collapsed: bool) -> None:
    """The exact value, typeable: no bounds here, so an out-of-range value gets TrainConfig's sentence."""
    meta, whole = describe(name), FIELDS[name].type in ("int", "int | None")
    if not whole and isinstance(st.session_state[name], int):
        st.session_state[name] = float(st.session_state[name])  # an int would make the box round what is typed
    where.number_input(meta["label"], key=name, step=1 if whole else None, format=None if whole else "%g",
                       disabled=disabled, help=None if collapsed else meta["help"],
                       label_visibility="collapsed" if collapsed else "visible")


# ---------------------------------------------------------------- the form


def config_sidebar() -> TrainConfig | None:
    """Draw the configuration form; returns the TrainConfig (the quick look's when it is on), or None with errors
    shown under the fields."""
    _init_from_link()
    ss = st.session_state
    locked_values, hidden = ss[state.LOCKED], ss[state.HIDDEN]
    for name, value in locked_values.items():
        ss[name] = value  # whatever a widget or a preset tried, a locked field keeps the link's value
    busy = state.any_run_in_progress()
    cfg, errors = read_form()
    if "dataset" not in errors:
        try:
            get_dataset(ss["dataset"])  # loaded once per process, so Train starts at once
        except (OSError, ValueError) as err:
            errors["dataset"] = f"This dataset cannot be loaded: {err}"
    if ss["backend"] == "torch" and not torch_available():
        errors["backend"] = TORCH_INSTALL_HINT
    if errors:
        cfg = None
    _sync_preset_choice(cfg)
    with st.sidebar:
        st.header("Network")
        if ss[state.URL_NOTICES]:
            st.warning("\n\n".join(ss[state.URL_NOTICES]), icon=":material/link_off:")
            st.button("Dismiss", key=state.URL_NOTICES_DISMISS, on_click=_dismiss_notices)
        if busy:
            running_panel()
            st.caption("Settings are locked while a run is in progress.")
        if locked_values or PRESET in hidden:
            st.caption("This link fixes some settings: "
                       + ", ".join(describe(n)["label"] if n in FIELDS else "preset" for n in locked_values) + ".")
        if PRESET not in hidden:
            st.selectbox("Preset", [CUSTOM, *PRESETS], key=state.PRESET, on_change=_apply_preset,
                         disabled=busy or PRESET in locked_values, format_func=preset_label(ss.get(state.BASE_PRESET)),
                         help="Each preset reproduces a classic MNIST tutorial. Choosing one loads it, also after "
                              "edits.")
        preset_caption = st.empty()
        st.toggle("Quick look", key=state.QUICK_LOOK, disabled=busy,
                  help=f"Train on a {QUICK_IMAGES:,}-image subset for at most {QUICK_EPOCHS} epochs, so a change shows "
                       "its effect within seconds.")
        shown = [n for n in FIELDS if n not in hidden]
        grouped = {g: [n for n in names if n in shown] for g, names in GROUPS.items()}
        more = [n for n in shown if not any(n in names for names in GROUPS.values())]

        def draw(names: list[str]) -> None:
            for name in names:
                field_widget(name, busy or name in locked_values, errors.get(name))
                if name == "hidden_sizes" and "hidden_sizes" not in errors:
                    hidden_layer_sliders(busy or name in locked_values)

        draw(grouped["Network"])
        st.header("Training")
        draw(grouped["Training"])
        with st.expander("More options", expanded=ss.get(state.MORE_OPTIONS_OPEN, False), key=state.MORE_OPTIONS,
                         on_change=_remember_more_options):  # stays as the learner left it, across runs and pages
            draw(more)
        for name in hidden:
            if name in errors:
                st.error(errors[name])  # its widget is hidden; the sentence names it
        base = ss.get(state.BASE_PRESET)
        if cfg is not None and base in PRESETS:
            preset, diff = PRESETS[base], config_diff(cfg, base)
            preset_caption.caption(f"Preset **{base}**" + (f" (modified: {', '.join(diff)})" if diff else "")
                                   + f": {preset.source}; the tutorial reported {preset.reported}.")
        if cfg is not None:
            _write_url(cfg)
            st.caption("The page's address now encodes this setup: share it to reproduce it.")
    run_cfg = quick_look(cfg) if cfg is not None and ss[state.QUICK_LOOK] else cfg
    ss[state.CONFIG] = run_cfg
    ss[state.CONFIG_LABEL] = run_label(run_cfg, base) if run_cfg is not None else CUSTOM
    return run_cfg
