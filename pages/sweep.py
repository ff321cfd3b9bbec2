"""Sweep: the sidebar's setup trained over a grid of values, on this server's cores or a Ray cluster, every
point a run; a heatmap, small multiples, parallel coordinates and the best configuration, filling in live."""

import math
import os

import streamlit as st

from engine.config import FIELDS
from engine.sweep import RAY_INSTALL_HINT, SweepError, available_cores, parse_grid_values, ray_available
from ui import state
from ui.live import follow
from ui.sidebar import CUSTOM, widget_values
from ui.sweep import (
    MAX_LOCAL_POINTS,
    MAX_RAY_POINTS,
    METRIC_LABELS,
    Sweep,
    curves_frame,
    field_label,
    heatmap_chart,
    parallel_chart,
    parallel_frame,
    points_frame,
    small_multiples_chart,
    start_sweep,
)

AXES = 3  # rows of the grid form
LIVE_SECONDS = 2.0
NONE = ""
EXAMPLES = {"learning_rate": "0.03,0.1,0.3,1", "batch_size": "32,128", "hidden_sizes": "32;64;64,32",
            "optimizer": "sgd,momentum,adam", "activation": "sigmoid,tanh,relu", "seed": "0,1,2",
            "dropout": "0,0.2,0.5", "l2": "0,1e-4,1e-3", "epochs": "5,10", "init": "notebook,xavier,he"}
DEFAULT_GRID = (("learning_rate", "0.1,0.3,1"), ("batch_size", "32,128"), (NONE, ""))
HERE, RAY = "This server's cores", "A Ray cluster"


def sweeps() -> list[Sweep]:
    return st.session_state.setdefault(state.SWEEPS, [])


def current() -> Sweep | None:
    """The sweep the page shows: the one chosen, else the latest."""
    by_id = {s.id: s for s in sweeps()}
    return by_id.get(st.session_state.get(state.SWEEP_SHOWN)) or (sweeps()[-1] if sweeps() else None)


def grid_form() -> tuple[dict[str, tuple], list[str]]:
    """The grid's rows (a field and its values), each checked; the grid and the errors, one per bad row."""
    for i, (name, values) in enumerate(DEFAULT_GRID):
        st.session_state.setdefault(f"{state.SWEEP_FIELD}_{i}", name)
        st.session_state.setdefault(f"{state.SWEEP_VALUES}_{i}", values)
    grid, errors = {}, []
    options = [NONE, *FIELDS]
    for i in range(AXES):
        left, right = st.columns([1, 2])
        name = left.selectbox(f"Setting {i + 1}", options, key=f"{state.SWEEP_FIELD}_{i}",
                              format_func=lambda f: "—" if f == NONE else field_label(f))
        text = right.text_input(f"Values {i + 1}", key=f"{state.SWEEP_VALUES}_{i}", disabled=name == NONE,
                                placeholder=f"e.g. {EXAMPLES.get(name, 'v1,v2')}",
                                help="Separated by commas; by semicolons when a value has commas itself "
                                     "(hidden sizes 64,16;128).")
        if name == NONE:
            continue
        try:
            if name in grid:
                raise SweepError(f"{field_label(name)} is in the grid twice; give all its values in one row.")
            grid[name] = parse_grid_values(name, text)
        except SweepError as err:
            errors.append(str(err))
            right.error(str(err))
    return grid, errors


def open_in_sidebar(cfg) -> None:
    """The sidebar's form shows cfg (a button's callback: before the widgets are drawn)."""
    for key, value in widget_values(cfg).items():
        st.session_state[key] = value
    st.session_state[state.PRESET] = CUSTOM
    st.session_state[state.SWEEP_OPENED] = True


def start(grid: dict[str, tuple], where: str, address: str, workers: int) -> None:
    sweep = Sweep(st.session_state[state.CONFIG], grid, ray_address=address.strip() if where == RAY else "",
                  workers=workers)
    sweeps().append(sweep)
    st.session_state[state.SWEEP_SHOWN] = sweep.id
    start_sweep(sweep, state.runs())


def setup() -> None:
    cfg = st.session_state.get(state.CONFIG)
    st.write("Train the sidebar's setup once for each combination of the values below, side by side: "
             "one worker process per core here, or one task per point on a Ray cluster. Every point is a run "
             "(Results, Compare and Inside show it).")
    grid, errors = grid_form()
    n = math.prod(len(v) for v in grid.values()) if grid else 0
    left, right = st.columns([2, 1])
    where = left.radio("Where", [HERE, RAY], key=state.SWEEP_WHERE, horizontal=True)
    st.session_state.setdefault(state.SWEEP_RAY_ADDRESS, os.environ.get("RAY_ADDRESS", ""))
    address, workers = "", available_cores()
    if where == RAY:
        address = left.text_input("Ray address", key=state.SWEEP_RAY_ADDRESS, placeholder="e.g. 127.0.0.1:6379",
                                  help="host:port of the cluster's head node (`ray start --head` prints it).")
        if not ray_available():
            errors.append(RAY_INSTALL_HINT)
            left.error(RAY_INSTALL_HINT)
        elif not address.strip():
            errors.append("Give the Ray head's address.")
    else:
        workers = right.number_input("Worker processes", key=state.SWEEP_WORKERS, min_value=1,
                                     max_value=available_cores(), value=available_cores(),
                                     help="One point trains in each, with one BLAS thread.")
    limit = MAX_RAY_POINTS if where == RAY else MAX_LOCAL_POINTS
    if cfg is None:
        errors.append("The sidebar's setup has a problem: fix it there first.")
    elif not grid:
        errors.append("Choose a setting and its values.")
    elif n > limit:
        errors.append(f"{n} points is more than {limit} {'on a Ray cluster' if where == RAY else 'on this server'}; "
                      "give fewer values.")
    if cfg is not None and grid:
        st.caption(f"{n} point{'s' * (n != 1)} × {cfg.epochs} epochs of {cfg.dataset}, "
                   f"{cfg.layers_text('in', 'out')}.")
    busy = any(s.in_progress for s in sweeps())
    if busy:
        st.caption("A sweep is running: cancel it, or wait for it to end, to start another.")
    elif errors and grid and cfg is not None:
        st.caption(errors[-1])
    st.button("Start the sweep", key=state.SWEEP_START, type="primary", icon=":material/grid_view:",
              disabled=busy or bool(errors), on_click=start, args=(grid, where, address, workers))


def progress_text(sweep: Sweep) -> str:
    counts = sweep.counts()
    done = sum(v for k, v in counts.items() if k not in ("queued", "running"))
    parts = [f"{done}/{len(sweep.runs)} points done"] + [f"{v} {k}" for k, v in counts.items()]
    where = f"on the Ray cluster at {sweep.ray_address}" if sweep.ray_address else "on this server"
    waiting = " · waiting for this server's other sweep to end" if sweep.waiting else ""
    return " · ".join(parts) + f" · {where}{waiting}"


def results(sweep: Sweep, boxes: dict) -> None:
    """Everything that fills in as points train: written into placeholders (the live loop redraws them)."""
    boxes["progress"].progress(sum(not r.in_progress for r in sweep.runs.values()) / max(len(sweep.runs), 1),
                               text=progress_text(sweep))
    if sweep.message:
        boxes["message"].error(sweep.message)
    metric = st.session_state[state.SWEEP_METRIC]
    df = points_frame(sweep, metric)
    fields = sweep.fields
    x, y = st.session_state.get(state.SWEEP_X, fields[0]), st.session_state.get(state.SWEEP_Y)
    with boxes["heatmap"].container():
        st.altair_chart(heatmap_chart(df, x, y if y in fields and y != x else None, metric), width="stretch")
    curves = curves_frame(sweep)
    with boxes["curves"].container():
        if len(curves):
            st.altair_chart(small_multiples_chart(sweep, curves))
    with boxes["parallel"].container():
        long = parallel_frame(df, fields, metric)
        if len(long):
            axes = [field_label(f) for f in fields] + [METRIC_LABELS[metric]]
            st.altair_chart(parallel_chart(long, axes, metric), width="stretch")
    shown = df[["point", *fields, "status", "epochs", "metric", "message"]].rename(
        columns={f: field_label(f) for f in fields} | {"metric": METRIC_LABELS[metric]})
    boxes["table"].dataframe(shown, hide_index=True, column_config={
        METRIC_LABELS[metric]: st.column_config.NumberColumn(format="percent")})


def best_point(sweep: Sweep, metric: str) -> None:
    """The best finished point and a button that opens it in the sidebar (drawn once a script run: a status change
    reruns the app, so it follows the points as they finish)."""
    best = sweep.best(metric)
    if best is None:
        st.caption("The best configuration shows here when a point has finished.")
        return
    point, run = best
    with st.container(border=True):
        st.markdown(f"**Best so far: {point.label}** — {METRIC_LABELS[metric]} "
                    f"{getattr(run.last, metric):.2%} after {run.epochs_done} epochs ({run.short_id})")
        st.button("Open it in the sidebar", key=state.SWEEP_OPEN_BEST, icon=":material/tune:",
                  on_click=open_in_sidebar, args=(run.config,), disabled=sweep.in_progress,
                  help="The sidebar's form takes this point's setup, ready to train on the Train page"
                       + (" (when the sweep ends)." if sweep.in_progress else "."))


def view(sweep: Sweep) -> None:
    top = st.columns([3, 1])
    if len(sweeps()) > 1:
        names = {s.id: f"{s.id}: {', '.join(field_label(f) for f in s.fields)} ({len(s.points)} points)"
                 for s in sweeps()}
        st.session_state[state.SWEEP_SHOWN] = sweep.id
        top[0].selectbox("Sweep", list(names)[::-1], key=state.SWEEP_SHOWN, format_func=names.get)
    if sweep.in_progress:
        top[1].button("Cancel the sweep", key=state.SWEEP_CANCEL, icon=":material/cancel:", on_click=sweep.cancel,
                      help="Stops every point; the epochs they finished are kept.")
    if st.session_state.pop(state.SWEEP_OPENED, False):
        st.success("The sidebar now holds the best point's setup: train it on the Train page.",
                   icon=":material/tune:")
    boxes = {"progress": st.empty(), "message": st.empty()}
    has_val = all(r.config.val_split > 0 for r in sweep.runs.values())
    options = ["val_acc", "test_acc"] if has_val else ["test_acc"]
    if st.session_state.get(state.SWEEP_METRIC) not in options:
        st.session_state[state.SWEEP_METRIC] = options[0]
    st.subheader("Final accuracy over the grid")
    left, mid, right = st.columns(3)
    left.radio("Accuracy", options, key=state.SWEEP_METRIC, format_func=METRIC_LABELS.get, horizontal=True,
               help=None if has_val else "Set a validation split in the sidebar to choose by validation accuracy "
                                         "(choosing by the test set makes it a poor measure of the result).")
    fields = sweep.fields
    if len(fields) > 1:
        if st.session_state.get(state.SWEEP_X) not in fields:
            st.session_state[state.SWEEP_X] = fields[0]
        if st.session_state.get(state.SWEEP_Y) not in fields:
            st.session_state[state.SWEEP_Y] = fields[1]
        mid.selectbox("Across", fields, key=state.SWEEP_X, format_func=field_label)
        right.selectbox("Down", fields, key=state.SWEEP_Y, format_func=field_label)
        if len(fields) > 2:
            st.caption("Each cell is the mean over the other settings' values.")
    else:
        st.session_state[state.SWEEP_X], st.session_state[state.SWEEP_Y] = fields[0], None
    boxes["heatmap"] = st.empty()
    best_point(sweep, st.session_state[state.SWEEP_METRIC])
    st.subheader("Every point's curves")
    boxes["curves"] = st.empty()
    st.subheader("Parallel coordinates")
    st.caption("One line per finished point, across every setting of the grid to its final accuracy.")
    boxes["parallel"] = st.empty()
    st.subheader("Points")
    boxes["table"] = st.empty()
    follow(lambda: results(sweep, boxes), LIVE_SECONDS)


def page() -> None:
    st.title("Sweep")
    setup()
    sweep = current()
    if sweep is None:
        return
    st.divider()
    view(sweep)


state.run_app_first()
page()
