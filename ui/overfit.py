"""Early stopping on the learning curves: where a run stopped and which epoch's weights it kept, as two labelled
vertical rules over a curves chart (ui.charts.learning_curves_charts' loss or accuracy, compare_chart)."""

from __future__ import annotations

import altair as alt
import pandas as pd

from engine import EpochResult

RULE_COLORS = {"kept": "#2e7d32", "stopped": "#c62828"}


def early_stopping_frame(history: list[EpochResult]) -> pd.DataFrame:
    """The rules to draw: epoch, what happened there and its label; empty where early stopping did not end the run."""
    if not history or history[-1].kept_epoch is None:
        return pd.DataFrame(columns=["epoch", "event", "label"])
    kept, stopped = history[-1].kept_epoch, history[-1].epoch
    return pd.DataFrame({"epoch": [kept, stopped], "event": ["kept", "stopped"],
                         "label": [f"kept epoch {kept} (lowest validation loss)",
                                   f"stopped after epoch {stopped}"]})


def with_early_stopping(chart: alt.Chart | alt.LayerChart, history: list[EpochResult]) -> alt.Chart | alt.LayerChart:
    """`chart` (x: epoch) with a green rule at the epoch whose weights the run kept and a red one where it stopped,
    each labelled; the chart itself where early stopping did not end the run."""
    df = early_stopping_frame(history)
    if df.empty:
        return chart
    color = alt.Color("event:N", scale=alt.Scale(domain=list(RULE_COLORS), range=list(RULE_COLORS.values())),
                      legend=None)
    base = alt.Chart(df).encode(x="epoch:Q", color=color)
    rules = base.mark_rule(strokeWidth=2, strokeDash=[6, 3]).encode(tooltip=["label:N"])
    labels = [base.transform_filter(alt.datum.event == event).mark_text(align="left", dx=4, baseline="top")
              .encode(y=alt.value(y), text="label:N") for event, y in (("kept", 4), ("stopped", 20))]
    return alt.layer(chart, rules, *labels).resolve_scale(color="independent")
