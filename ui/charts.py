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
MIN_ACC_SPAN = 0.2  # the accuracy axis spans at least 20 points, so noise of 1% does not look like learning
CHANCE_MARGIN = 0.3  # a run whose best accuracy is within 30 points of chance shows chance on its axis
RUN_COLORS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
              "#bab0ac", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
              "#bcbd22", "#17becf")  # tableau10, then category10: distinct hues for up to 20 runs
LOSS_UNITS = {"mse": "mean squared error", "cross_entropy": "cross-entropy"}
MSE_NOTE = ("Our mean squared error sums the squared error over the 10 outputs and averages over images; the NumPy "
            "notebook prints the mean over all 10 outputs too, so its printed figure is 10× smaller for the same "
            "network (it back-propagates the summed version, as we do).")


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


def accuracy_domain(values, chance: float) -> list[float]:
    """The accuracy axis: at least MIN_ACC_SPAN wide, within [0, 1], reaching down to chance for a run near it."""
    values = [v for v in values if v is not None]
    lo, hi = (min(values), max(values)) if values else (chance, 1.0)
    if hi < chance + CHANCE_MARGIN:
        lo = min(lo, chance)
    if hi - lo < MIN_ACC_SPAN:
        hi = min(1.0, lo + MIN_ACC_SPAN)
        lo = max(0.0, min(lo, hi - MIN_ACC_SPAN))
    return [round(lo, 4), round(hi, 4)]


def chance_rule(chance: float) -> alt.Chart:
    """A grey dashed line at chance level (guessing), labelled."""
    df = pd.DataFrame({"chance": [chance], "label": [f"chance {chance:.0%}"]})
    rule = alt.Chart(df).mark_rule(color="#888", strokeDash=[4, 4]).encode(y="chance:Q")
    text = alt.Chart(df).mark_text(align="left", dx=4, dy=-6, color="#666").encode(
        y="chance:Q", x=alt.value(0), text="label:N")
    return rule + text


def learning_curves_charts(history: list[EpochResult], n_classes: int = 10,
                           loss_name: str | None = None) -> tuple[alt.Chart, alt.LayerChart]:
    """Loss and accuracy as two charts, each to fill a column (a facet has a fixed width and overflows a laptop
    window). Coloured and dashed by split, so a train curve under the test one shows; each has the legend under it,
    so their plots are the same size. The accuracy axis never zooms into noise and shows chance level when the
    run is near it.
    """
    df = history_frame(history)
    chance = 1.0 / n_classes

    def curve(metric: str, title: str, scale: alt.Scale) -> alt.Chart:
        return alt.Chart(df[df.metric == metric]).mark_line(point=True).encode(
            x=alt.X("epoch:Q", title="epoch", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title=title, scale=scale),
            color=alt.Color("split:N", scale=split_scale(df.split), title="split", legend=SPLIT_LEGEND),
            strokeDash=alt.StrokeDash("split:N", scale=split_scale(df.split, SPLIT_DASHES), title="split",
                                      legend=SPLIT_LEGEND),
            tooltip=["epoch:Q", "split:N", alt.Tooltip("value:Q", title=metric, format=".4f")],
        ).properties(height=320)  # in all: axes and legend included

    loss_title = f"loss ({LOSS_UNITS[loss_name]})" if loss_name in LOSS_UNITS else "loss"
    loss = curve("loss", loss_title, alt.Scale(zero=False))
    domain = accuracy_domain(df[df.metric == "accuracy"].value.tolist(), chance)
    accuracy = curve("accuracy", "accuracy", alt.Scale(domain=domain, clamp=True))
    if domain[0] <= chance:
        accuracy = alt.layer(accuracy, chance_rule(chance)).properties(height=320)
    return loss, accuracy


def batch_loss_chart(losses: list[float], epoch: int, max_points: int = 400) -> alt.Chart:
    """This epoch's loss batch by batch, as a light line (thinned to max_points: a batch of 1 makes 60,000)."""
    step = max(1, -(-len(losses) // max_points))
    df = pd.DataFrame({"batch": np.arange(1, len(losses) + 1)[::step], "loss": np.asarray(losses)[::step]})
    return alt.Chart(df).mark_line(color="#9ab8d8", strokeWidth=1).encode(
        x=alt.X("batch:Q", title=f"batch of epoch {epoch}", scale=alt.Scale(nice=False)),
        y=alt.Y("loss:Q", title="batch loss", scale=alt.Scale(zero=False)),
        tooltip=["batch:Q", alt.Tooltip("loss:Q", format=".4f")],
    ).properties(height=160)


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
    tooltip = [alt.Tooltip("true_name:N", title="true"), alt.Tooltip("pred_name:N", title="predicted"),
               "count:Q", alt.Tooltip("share:Q", format=".1%", title="share of row")]
    # Two colour scales: blue for the right answers on the diagonal, red for the mistakes off it, each from 0 to
    # its own largest cell, so 33 nines read as fours stand out beside 980 zeros read as zeros.
    off_max = float(df.loc[df.true != df.pred, field].max()) if (df.true != df.pred).any() else 0.0
    diagonal = base.mark_rect().encode(
        color=alt.Color(f"{field}:Q", scale=alt.Scale(scheme="blues", domainMin=0), legend=None),
        opacity=alt.condition(selection, alt.value(1.0), alt.value(0.55)),
    ).transform_filter("datum.true == datum.pred")
    off_diagonal = base.mark_rect().encode(
        color=alt.Color(f"{field}:Q", scale=alt.Scale(scheme="reds", domain=[0, max(off_max, 1e-9)]), legend=None),
        opacity=alt.condition(selection, alt.value(1.0), alt.value(0.55)),
    ).transform_filter("datum.true != datum.pred")
    clicks = base.mark_rect(color="white", opacity=0.001).encode(tooltip=tooltip).add_params(selection)  # on top
    df_dark_off = df.assign(dark=np.where(df.true == df.pred, df[field] > 0.5 * df[field].max(),
                                          df[field] > 0.5 * max(off_max, 1e-9)))
    text = alt.Chart(df_dark_off).encode(x="pred:O", y="true:O").mark_text(fontSize=11).encode(
        text=alt.Text(f"{field}:Q", format=".0%" if normalized else "d"),
        color=alt.condition("datum.dark", alt.value("white"), alt.value("black")),
    )
    return alt.layer(diagonal, off_diagonal, text, clicks).resolve_scale(color="independent").properties(height=440)


def run_labels(runs: list) -> dict[str, str]:
    """Run id -> the name its curves carry: its name, with its number added where two runs share a name."""
    names = [r.name for r in runs]
    return {r.id: r.name if names.count(r.name) == 1 else f"{r.name} ({r.id})" for r in runs}


def run_color_scale(runs: list) -> alt.Scale:
    """One colour per run, fixed by its place in the list: the plot and its legend use the same scale."""
    labels = list(run_labels(runs).values())
    return alt.Scale(domain=labels, range=[RUN_COLORS[i % len(RUN_COLORS)] for i in range(len(labels))])


def compare_frame(runs: list, metric: str) -> pd.DataFrame:
    """Per run, split and epoch: the metric's value (loss or accuracy)."""
    labels = run_labels(runs)
    frames = []
    for run in runs:
        df = history_frame(run.history)
        df = df[df.metric == metric].assign(run=labels[run.id])
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else history_frame([]).assign(run=[])


COMPARE_HEIGHT = 320  # the plot's height, whatever the number of runs (their legend is a chart of its own)


def compare_chart(runs: list, metric: str, title: str | None = None, all_runs: list | None = None) -> alt.Chart:
    """Runs overlaid: colour by run; dash and point shape by split (a dash alone gives the legend two equal dots).

    The runs' legend is compare_legend(), beside or under the plot, so adding runs never shrinks the plot;
    `all_runs` fixes the colours when the runs are split over several charts (one per loss).
    """
    df = compare_frame(runs, metric)
    y_scale = (alt.Scale(domain=accuracy_domain(df.value.tolist(), 0.1), clamp=True) if metric == "accuracy"
               else alt.Scale(zero=False))  # the accuracy axis never zooms into noise, as on the run's own charts
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("epoch:Q", scale=alt.Scale(zero=False, nice=False), axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=title or metric, scale=y_scale),
        color=alt.Color("run:N", scale=run_color_scale(all_runs or runs), legend=None),
        strokeDash=alt.StrokeDash("split:N", scale=split_scale(df.split, SPLIT_DASHES), title="split",
                                  legend=alt.Legend(orient="bottom", direction="horizontal")),
        shape=alt.Shape("split:N", scale=split_scale(df.split, SPLIT_SHAPES), title="split",
                        legend=alt.Legend(orient="bottom", direction="horizontal")),
        tooltip=["run:N", "split:N", "epoch:Q", alt.Tooltip("value:Q", format=".4f")],
    ).properties(height=COMPARE_HEIGHT)


def compare_legend(runs: list) -> alt.LayerChart:
    """The runs' colours as a list of its own, a swatch and a name a line: 22 px a run, as tall as it needs."""
    labels = list(run_labels(runs).values())
    df = pd.DataFrame({"run": labels})
    y = alt.Y("run:N", sort=labels, axis=None)
    swatch = alt.Chart(df).mark_square(size=140).encode(
        y=y, x=alt.value(8), color=alt.Color("run:N", scale=run_color_scale(runs), legend=None))
    name = alt.Chart(df).mark_text(align="left", fontSize=12, limit=600).encode(y=y, x=alt.value(20), text="run:N")
    return alt.layer(swatch, name).properties(height=22 * len(labels)).configure_view(stroke=None)


def probability_chart(probs: np.ndarray, class_names: tuple[str, ...], pred: int, true: int) -> alt.Chart:
    """A mistake's output probabilities, one bar per class: the prediction red, the true class green."""
    role = ["predicted" if i == pred else "true" if i == true else "other" for i in range(len(class_names))]
    df = pd.DataFrame({"class": list(class_names), "probability": probs.astype(float), "role": role,
                       "order": range(len(class_names))})
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("class:N", sort=list(class_names), title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("probability:Q", title="output", scale=alt.Scale(domain=[0, max(1.0, float(probs.max()))])),
        color=alt.Color("role:N", scale=alt.Scale(domain=["predicted", "true", "other"],
                                                  range=["#d62728", "#2ca02c", "#bbbbbb"]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["class:N", alt.Tooltip("probability:Q", format=".3f")],
    ).properties(height=200)
