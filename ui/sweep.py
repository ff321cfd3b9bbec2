"""A sweep in the app: its points are runs of the session, trained by engine.sweep from a background thread,
and the tables and Altair charts of the Sweep page (pure: data in, chart out).

The thread never calls st.*: it only writes its sweep's and its runs' own fields, as a TrainingRun's worker does.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import altair as alt
import pandas as pd
import streamlit as st

from engine import TrainConfig, build_model
from engine.config import describe
from engine.data import load_dataset
from engine.snapshots import Snapshots
from engine.sweep import (
    EPOCH,
    FAILED,
    STARTED,
    STOPPED,
    PointEvent,
    SweepError,
    SweepPoint,
    expand,
    run_sweep,
    value_text,
)
from ui.charts import SPLIT_COLORS, history_frame, split_scale
from ui.runs import FINISHED, RUNNING, TrainingRun

MAX_LOCAL_POINTS = 64  # on this server's cores; a Ray cluster takes more
MAX_RAY_POINTS = 1000
SNAPSHOT_BYTES = 8 * 2**20  # per point: a sweep's many runs keep fewer epochs' weights than a run of its own
METRIC_LABELS = {"val_acc": "validation accuracy", "test_acc": "test accuracy"}
_ids = itertools.count(1)


class SweepRun(TrainingRun):
    """A point of a sweep, shown as a run: trained in a worker process or a Ray task, filled in from its events."""

    def begin(self) -> None:
        """Its initial weights (the engine draws them from the seed, as the worker does) as epoch 0; none where its
        dataset cannot be loaded (its worker then says why, and it fails)."""
        try:
            data = load_dataset(self.config.dataset)
        except (OSError, ValueError):
            return
        self.model = build_model(self.config, data.n_features, data.n_classes)
        self.n_params = self.model.n_params
        self.snapshots = Snapshots(SNAPSHOT_BYTES)
        self._epoch_weights = self.model.get_weights()
        self.snapshots.add(0, self._epoch_weights)

    def apply(self, event: PointEvent) -> None:
        if event.kind == STARTED:
            now = time.perf_counter()
            self.progress.epoch, self.progress.started, self.progress.epoch_started = 1, now, now
            self.status = RUNNING
        elif event.kind == EPOCH:
            self._epoch_weights = event.weights  # what the pages read while the sweep runs
            self.snapshots.add(event.result.epoch, event.weights)
            self.model.set_weights(event.weights)
            self.history.append(event.result)
            self.progress.epoch, self.progress.epoch_started = event.result.epoch + 1, time.perf_counter()
        elif event.ended:
            self.end(event.kind, event.message)

    def end(self, status: str, message: str = "") -> None:
        if self.progress.started:
            self.wall_seconds = time.perf_counter() - self.progress.started
        self.message = message
        self.status = status


@dataclass(eq=False)
class Sweep:
    """One grid over the sidebar's setup: its points, the runs of the valid ones, and where they train."""

    base: TrainConfig
    grid: dict[str, tuple]
    ray_address: str = ""
    workers: int | None = None
    id: str = field(default_factory=lambda: f"sweep-{next(_ids)}")
    points: list[SweepPoint] = field(default_factory=list)
    runs: dict[int, SweepRun] = field(default_factory=dict)  # point index -> its run (valid points only)
    message: str = ""  # why the sweep could not run, if it could not
    waiting: bool = False  # for the server's local pool, busy with another sweep

    def __post_init__(self) -> None:
        self.points = expand(self.base, self.grid)
        for p in self.points:
            if p.config is not None:
                run = SweepRun(p.config)
                run.name = f"{run.short_id} · {self.id} · {p.label}"
                self.runs[p.index] = run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fields(self) -> list[str]:
        return list(self.grid)

    @property
    def in_progress(self) -> bool:
        return any(r.in_progress for r in self.runs.values())

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def start(self, local_slot: threading.Semaphore) -> None:
        """Train in a daemon thread; a local sweep first waits for the server's pool (one local sweep at a time)."""
        for run in self.runs.values():
            run.begin()
        self._thread = threading.Thread(target=self._work, args=(local_slot,), daemon=True, name=f"mlp-lab-{self.id}")
        self._thread.start()

    def cancel(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _work(self, local_slot: threading.Semaphore) -> None:
        slot = None if self.ray_address else local_slot
        if slot is not None:
            self.waiting = True
            while not slot.acquire(timeout=0.2):
                if self._stop.is_set():
                    break
            self.waiting = False
        try:
            if not self._stop.is_set():
                for event in run_sweep(self.points, self.workers, self.ray_address or None, self._stop):
                    if event.index in self.runs:
                        self.runs[event.index].apply(event)
        except SweepError as err:  # Ray missing or unreachable: every point says why
            self.message = str(err)
        except Exception as err:  # noqa: BLE001 - the page shows it; the session carries on
            self.message = f"The sweep stopped: {type(err).__name__}: {err}"
        finally:
            for run in self.runs.values():
                if run.in_progress:
                    run.end(STOPPED if self._stop.is_set() else FAILED, self.message)
            if slot is not None and not self.waiting:
                slot.release()

    def counts(self) -> dict[str, int]:
        """How many runs are in each status."""
        out: dict[str, int] = {}
        for run in self.runs.values():
            out[run.status] = out.get(run.status, 0) + 1
        return out

    def best(self, metric: str) -> tuple[SweepPoint, SweepRun] | None:
        """The finished point with the highest final `metric`."""
        done = [(p, self.runs[p.index]) for p in self.points
                if p.index in self.runs and self.runs[p.index].status == FINISHED]
        done = [(p, r) for p, r in done if getattr(r.last, metric) is not None]
        return max(done, key=lambda pr: getattr(pr[1].last, metric)) if done else None


def field_label(name: str) -> str:
    return describe(name)["label"]


# ---------------------------------------------------------------- tables and charts

def points_frame(sweep: Sweep, metric: str) -> pd.DataFrame:
    """One row per point: each grid field's value (as text, and its position among the field's values),
    status, epochs done, the final metric and any error."""
    rows = []
    for p in sweep.points:
        run = sweep.runs.get(p.index)
        last = run.last if run else None
        row = {"point": p.index + 1, "label": p.label,
               "status": run.status if run else "impossible", "epochs": run.epochs_done if run else 0,
               "metric": getattr(last, metric) if last else None,
               "message": (run.message if run else p.error) or ""}
        for name in sweep.fields:
            row[name] = value_text(p.values[name])
            row[f"{name}#"] = sweep.grid[name].index(p.values[name])
        rows.append(row)
    return pd.DataFrame(rows)


def heatmap_chart(df: pd.DataFrame, x: str, y: str | None, metric: str) -> alt.LayerChart:
    """The final metric over one or two grid fields (the mean over any others), as coloured cells with values."""
    keys = [x] + ([y] if y else [])
    cells = df.groupby(keys, sort=False, as_index=False).agg(metric=("metric", "mean"), n=("metric", "count"))
    cells["text"] = cells["metric"].map(lambda v: "…" if pd.isna(v) else f"{v:.1%}")
    cells["dark"] = cells["metric"] < (cells["metric"].min() + cells["metric"].max()) / 2  # viridis: dark when low
    order = {k: list(dict.fromkeys(df.sort_values(f"{k}#")[k])) for k in keys}
    title = METRIC_LABELS[metric]
    base = alt.Chart(cells).encode(
        x=alt.X(f"{x}:O", sort=order[x], title=field_label(x), axis=alt.Axis(labelAngle=0)),
        **({"y": alt.Y(f"{y}:O", sort=order[y], title=field_label(y))} if y else {}))
    rect = base.mark_rect().encode(
        color=alt.Color("metric:Q", title=title, scale=alt.Scale(scheme="viridis"),
                        legend=alt.Legend(format=".0%", orient="right")),
        tooltip=[*keys, alt.Tooltip("metric:Q", title=title, format=".2%"),
                 alt.Tooltip("n:Q", title="points with an epoch")])
    text = base.mark_text(fontSize=13, fontWeight="bold").encode(
        text="text:N", color=alt.condition("datum.dark", alt.value("white"), alt.value("black")))
    return (rect + text).properties(height=alt.Step(44) if y else 60)


def curves_frame(sweep: Sweep) -> pd.DataFrame:
    """Accuracy per point, split and epoch, with the point's grid values."""
    frames = []
    for p in sweep.points:
        run = sweep.runs.get(p.index)
        if run is None or not run.history:
            continue
        df = history_frame(run.history)
        df = df[df.metric == "accuracy"].assign(label=p.label, **{f: value_text(p.values[f]) for f in sweep.fields})
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def small_multiples_chart(sweep: Sweep, df: pd.DataFrame) -> alt.FacetChart:
    """Each point's accuracy curves in its own small chart: a 2-D grid laid out as the grid, else wrapped."""
    order = {f: [value_text(v) for v in sweep.grid[f]] for f in sweep.fields}
    chart = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("split:N", scale=split_scale(df.split, SPLIT_COLORS), legend=alt.Legend(orient="bottom")),
        tooltip=["label:N", "split:N", "epoch:Q", alt.Tooltip("value:Q", format=".2%")],
    ).properties(width=150, height=100)
    if len(sweep.fields) == 2:
        x, y = sweep.fields
        return chart.facet(column=alt.Column(f"{x}:O", sort=order[x], title=field_label(x)),
                           row=alt.Row(f"{y}:O", sort=order[y], title=field_label(y)))
    labels = [p.label for p in sweep.points]
    return chart.facet(facet=alt.Facet("label:N", sort=labels, title=None), columns=4)


def parallel_frame(df: pd.DataFrame, fields: list[str], metric: str) -> pd.DataFrame:
    """Long format for parallel coordinates: per point and axis, its position in [0, 1] and the value's text.

    A grid field's values sit evenly spaced in the grid's order (categories, sizes and learning rates alike);
    the metric axis is linear between its lowest and highest value.
    """
    rows = []
    done = df[df.metric.notna()]
    low, high = (done.metric.min(), done.metric.max()) if len(done) else (0.0, 1.0)
    for _, r in done.iterrows():
        for name in fields:
            n = df[f"{name}#"].max()
            rows.append({"point": r.point, "axis": field_label(name), "pos": r[f"{name}#"] / n if n else 0.5,
                         "text": r[name], "final": r.metric})
        rows.append({"point": r.point, "axis": METRIC_LABELS[metric],
                     "pos": (r.metric - low) / (high - low) if high > low else 0.5,
                     "text": f"{r.metric:.1%}", "final": r.metric})
    return pd.DataFrame(rows, columns=["point", "axis", "pos", "text", "final"])


def parallel_chart(long: pd.DataFrame, axes: list[str], metric: str) -> alt.LayerChart:
    """One line per point across every grid field and the final metric, coloured by the metric."""
    x = alt.X("axis:N", sort=axes, title=None, axis=alt.Axis(labelAngle=0, orient="top", labelFontWeight="bold",
                                                                labelLimit=240))
    y = alt.Y("pos:Q", axis=None, scale=alt.Scale(domain=[-0.05, 1.05]))
    lines = alt.Chart(long).mark_line(opacity=0.8, strokeWidth=2).encode(
        x=x, y=y, detail="point:N",
        color=alt.Color("final:Q", title=METRIC_LABELS[metric], scale=alt.Scale(scheme="viridis"),
                        legend=alt.Legend(format=".0%")),
        tooltip=["point:N", "axis:N", alt.Tooltip("text:N", title="value")])
    rules = alt.Chart(pd.DataFrame({"axis": axes})).mark_rule(color="#888").encode(x=x)
    ticks = alt.Chart(long.drop_duplicates(["axis", "text"])).mark_text(align="left", dx=6, fontSize=11).encode(
        x=x, y=y, text="text:N")
    return (rules + lines + ticks).properties(height=320)


# ---------------------------------------------------------------- what the page needs from the server

@st.cache_resource
def local_sweep_slot() -> threading.BoundedSemaphore:
    """The server's cores run one local sweep at a time; another waits (a Ray cluster takes any number)."""
    return threading.BoundedSemaphore(1)


def _cancel_all(sweeps: list[Sweep]) -> None:
    for sweep in sweeps:
        sweep.cancel()


@st.cache_resource(scope="session", on_release=_cancel_all)
def session_sweeps() -> list[Sweep]:
    """The sweeps this browser session started; cancelled when the session closes."""
    return []


def start_sweep(sweep: Sweep, runs: list) -> None:
    """The sweep's runs join the session's runs (Results and Compare show them); then it trains."""
    runs.extend(sweep.runs[p.index] for p in sweep.points if p.index in sweep.runs)
    sweep.start(local_sweep_slot())
    session_sweeps().append(sweep)
