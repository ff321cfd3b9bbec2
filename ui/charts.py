"""Altair chart builders and the long-format tables behind them (pure: data in, chart out)."""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import pandas as pd

from engine import EpochResult

SPLIT_COLORS = {"train": "#1f77b4", "validation": "#ff7f0e", "test": "#2ca02c"}
CM_SELECTION = "cell"  # the confusion matrix's click selection
SPLIT_DASHES = {"train": [6, 3], "validation": [2, 2], "test": [1, 0]}  # test solid, on every chart
SPLIT_SHAPES = {"train": "square", "validation": "triangle-up", "test": "circle"}
SPLIT_LEGEND = alt.Legend(title=None, symbolType="stroke", symbolStrokeWidth=2.5, symbolSize=400, orient="bottom",
                          direction="horizontal")  # a line sample per split, under the chart


def split_scale(splits, styles: dict = SPLIT_COLORS) -> alt.Scale:
    """Fixed colours (or dashes) per split, listing only the splits present."""
    present = [s for s in SPLIT_COLORS if s in set(splits)]
    return alt.Scale(domain=present, range=[styles[s] for s in present])


def history_frame(history: list[EpochResult]) -> pd.DataFrame:
    """Long format: one row per (epoch, split, metric)."""
    rows = []
    for r in history:
        for split, loss, acc in (("train", r.train_loss, r.train_acc), ("validation", r.val_loss, r.val_acc),
                                 ("test", r.test_loss, r.test_acc)):
            if loss is not None:
                rows.append({"epoch": r.epoch, "split": split, "metric": "loss", "value": loss})
                rows.append({"epoch": r.epoch, "split": split, "metric": "accuracy", "value": acc})
    return pd.DataFrame(rows, columns=["epoch", "split", "metric", "value"])


def learning_curves_charts(history: list[EpochResult]) -> tuple[alt.Chart, alt.Chart]:
    """Loss and accuracy as two charts, each to fill a column (a facet has a fixed width and overflows a laptop
    window). Coloured and dashed by split, so a train curve under the test one shows; each has the legend under it,
    so their plots are the same size.
    """
    df = history_frame(history)

    def curve(metric: str) -> alt.Chart:
        return alt.Chart(df[df.metric == metric]).mark_line(point=True).encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            color=alt.Color("split:N", scale=split_scale(df.split), title="split", legend=SPLIT_LEGEND),
            strokeDash=alt.StrokeDash("split:N", scale=split_scale(df.split, SPLIT_DASHES), title="split",
                                      legend=SPLIT_LEGEND),
            tooltip=["epoch:Q", "split:N", alt.Tooltip("value:Q", title=metric, format=".4f")],
        ).properties(height=320)  # in all: axes and legend included

    return curve("loss"), curve("accuracy")


def confusion_frame(y_true: np.ndarray, y_pred: np.ndarray, class_names: tuple[str, ...]) -> pd.DataFrame:
    k = len(class_names)
    counts = np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)
    row_totals = counts.sum(axis=1, keepdims=True)
    share = counts / np.maximum(row_totals, 1)
    t, p = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    return pd.DataFrame({"true": t.ravel(), "pred": p.ravel(), "count": counts.ravel(), "share": share.ravel(),
                         "true_name": [class_names[i] for i in t.ravel()],
                         "pred_name": [class_names[i] for i in p.ravel()]})


def class_label_expr(names: list[str]) -> str | None:
    """A Vega expression naming class i on an axis, or None where the names are the indices (digits)."""
    if names == [str(i) for i in range(len(names))]:
        return None
    return json.dumps(names) + "[datum.value]"


def confusion_matrix_chart(df: pd.DataFrame, normalized: bool) -> alt.LayerChart:
    """Rect + text heat map; clicking a cell selects its (true, pred) pair."""
    field = "share" if normalized else "count"
    df = df.assign(dark=df[field] > 0.5 * df[field].max())  # white text on dark cells
    selection = alt.selection_point(name=CM_SELECTION, fields=["true", "pred"], on="click")
    names = df.drop_duplicates("true").sort_values("true")["true_name"].tolist()
    expr = class_label_expr(names)
    named = {"labelExpr": expr} if expr else {}
    base = alt.Chart(df).encode(  # the class index is what a click selects; the axes show its name
        x=alt.X("pred:O", title="predicted",
                axis=alt.Axis(labelAngle=-45 if expr else 0, labelOverlap=False, **named)),
        y=alt.Y("true:O", title="true", axis=alt.Axis(**named)),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(f"{field}:Q", scale=alt.Scale(scheme="blues"), legend=None),
        opacity=alt.condition(selection, alt.value(1.0), alt.value(0.55)),
        tooltip=[alt.Tooltip("true_name:N", title="true"), alt.Tooltip("pred_name:N", title="predicted"),
                 "count:Q", alt.Tooltip("share:Q", format=".1%", title="share of row")],
    ).add_params(selection)
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text(f"{field}:Q", format=".0%" if normalized else "d"),
        color=alt.condition("datum.dark", alt.value("white"), alt.value("black")),
    )
    return (rect + text).properties(height=440)  # as wide as its column


def compare_frame(runs: list, metric: str) -> pd.DataFrame:
    """Per run, split and epoch: the metric's value (loss or accuracy)."""
    frames = []
    for run in runs:
        df = history_frame(run.history)
        df = df[df.metric == metric].assign(run=run.name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else history_frame([]).assign(run=[])


def compare_chart(runs: list, metric: str) -> alt.Chart:
    """Runs overlaid: colour by run; dash and point shape by split (a dash alone gives the legend two equal dots)."""
    df = compare_frame(runs, metric)
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("epoch:Q", scale=alt.Scale(zero=False, nice=False), axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
        color=alt.Color("run:N", scale=alt.Scale(scheme="tableau10"),  # distinct hues, not the theme's two blues
                        legend=alt.Legend(orient="bottom", columns=1, labelLimit=500)),
        strokeDash=alt.StrokeDash("split:N", scale=split_scale(df.split, SPLIT_DASHES), title="split"),
        shape=alt.Shape("split:N", scale=split_scale(df.split, SPLIT_SHAPES), title="split"),
        tooltip=["run:N", "split:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")],
    ).properties(height=360)
