"""The Gradient check page's pieces: the check's table, the cost side by side, and the damage a broken backward
pass does to a short training, as an Altair chart."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from engine import Dataset, TrainConfig
from engine.gradcheck import (
    BUGS,
    TOLERANCE,
    GradientCost,
    StepsRun,
    TensorCheck,
    check_batch,
    check_gradients,
    checking_model,
    duration_text,
    measure_cost,
    train_steps,
)

FORMULA = (r"\text{relative error} = \frac{\lVert a - n \rVert_2}{\lVert a \rVert_2 + \lVert n \rVert_2}, \qquad "
           r"n_i = \frac{L(p_i + \varepsilon) - L(p_i - \varepsilon)}{2\varepsilon}, \quad \varepsilon = 10^{-6}")
SMOOTH_STEPS = 10  # the damage chart shows a moving average of the batch losses over this many steps
RIGHT = "correct backward pass"


def checks_frame(checks: list[TensorCheck]) -> pd.DataFrame:
    """One row per parameter tensor, as the page's table shows it."""
    return pd.DataFrame({
        "parameter": [c.label for c in checks],
        "entries checked": [f"{c.n_checked:,} of {int(np.prod(c.shape)):,}" for c in checks],
        "‖a‖ (backprop)": [c.analytic_norm for c in checks],
        "‖n‖ (numerical)": [c.numeric_norm for c in checks],
        "relative error": [c.relative_error for c in checks],
        "verdict": ["✓ agrees" if c.passed else "✗ WRONG" for c in checks],
    })


def show_checks(checks: list[TensorCheck]) -> None:
    st.dataframe(checks_frame(checks), hide_index=True, width="stretch", column_config={
        "‖a‖ (backprop)": st.column_config.NumberColumn(format="%.3e"),
        "‖n‖ (numerical)": st.column_config.NumberColumn(format="%.3e"),
        "relative error": st.column_config.NumberColumn(format="%.1e"),
    })
    wrong = [c.label for c in checks if not c.passed]
    if wrong:
        st.error(f"The backward pass is wrong for {', '.join(wrong)}: backprop and the definition of the "
                 f"derivative disagree (relative error above {TOLERANCE:g}).", icon=":material/error:")
    else:
        worst = max(c.relative_error for c in checks)
        st.success(f"Backprop agrees with the numerical gradient for every tensor (worst relative error "
                   f"{worst:.1e}, below {TOLERANCE:g}).", icon=":material/check_circle:")


def show_cost(cost: GradientCost) -> None:
    """Seconds per gradient and per epoch, each way."""
    cols = st.columns(4)
    cols[0].metric("One backprop gradient", duration_text(cost.backprop_seconds), border=True,
                   help=f"One forward and one backward pass over a batch of {cost.batch_size}, measured.")
    cols[1].metric("One numerical gradient", duration_text(cost.numerical_seconds), border=True,
                   help=f"2 x {cost.n_params:,} forward passes of the same batch (one forward pass measured: "
                        f"{duration_text(cost.forward_seconds)}).")
    cols[2].metric("An epoch with backprop", duration_text(cost.epoch_backprop_seconds), border=True,
                   help=f"{cost.batches_per_epoch:,} batches; gradients only, without the optimizer's updates.")
    cols[3].metric("An epoch with numerical gradients", duration_text(cost.epoch_numerical_seconds), border=True)
    st.caption(f"The numerical gradient nudges each of the {cost.n_params:,} parameters up and down and runs the "
               f"network forward each time: {cost.ratio:,.0f} times the work of back-propagation, which gets every "
               "derivative from one backward pass. The TwoLayerNet tutorial trains with it once, to feel this.")


@st.cache_data(show_spinner=False, max_entries=32)
def checks_for(cfg: TrainConfig, bug: str, examples: int, entries: int, _data: Dataset) -> list[TensorCheck]:
    """The check of the config's network (broken as `bug` says) on `examples` training examples; kept per setup."""
    x, t = check_batch(cfg, _data, examples)
    return check_gradients(checking_model(cfg, _data, bug), x, t, max_entries=entries, seed=cfg.seed)


@st.cache_data(show_spinner=False, max_entries=32)
def cost_for(cfg: TrainConfig, _data: Dataset) -> GradientCost:
    """measure_cost, once per setup in this server: timing it again on every rerun would only add noise."""
    return measure_cost(cfg, _data)


@st.cache_data(show_spinner=False, max_entries=16)
def damage(cfg: TrainConfig, bug: str, steps: int, _data: Dataset) -> tuple[StepsRun, StepsRun]:
    """A short training with the right backward pass and one with `bug`: same weights, same batches."""
    return train_steps(cfg, _data, "none", steps), train_steps(cfg, _data, bug, steps)


def damage_frame(healthy: StepsRun, broken: StepsRun, bug: str) -> pd.DataFrame:
    """Long format: step, smoothed batch loss, which backward pass."""
    frames = []
    for name, run in ((RIGHT, healthy), (BUGS[bug], broken)):
        losses = pd.Series(run.losses).rolling(SMOOTH_STEPS, min_periods=1).mean()
        frames.append(pd.DataFrame({"step": np.arange(1, len(losses) + 1), "loss": losses, "backward pass": name}))
    df = pd.concat(frames, ignore_index=True)
    return df[np.isfinite(df.loss) & (df.loss > 0)]


def damage_chart(df: pd.DataFrame) -> alt.Chart:
    """Both trainings' batch loss against the step, on a log scale (a broken pass can send it far up)."""
    return alt.Chart(df).mark_line().encode(
        x=alt.X("step:Q", title="optimizer step"),
        y=alt.Y("loss:Q", title=f"batch loss (mean of {SMOOTH_STEPS} steps)", scale=alt.Scale(type="log")),
        color=alt.Color("backward pass:N", legend=alt.Legend(orient="bottom", title=None, labelLimit=600),
                        scale=alt.Scale(domain=[RIGHT, *sorted(set(df["backward pass"]) - {RIGHT})],
                                        range=["#2ca02c", "#d62728"])),
        tooltip=["step:Q", "backward pass:N", alt.Tooltip("loss:Q", format=".4f")],
    ).properties(height=320)


def outcome_text(healthy: StepsRun, broken: StepsRun) -> str:
    """A sentence on what the broken pass did to the training."""
    steps = len(healthy.losses)
    if np.isnan(broken.losses[-1]):
        at = int(np.flatnonzero(np.isnan(broken.losses))[0]) + 1
        return (f"With the broken backward pass the loss blew up to infinity at step {at}: training diverged. "
                f"The correct one reached {healthy.test_acc:.1%} test accuracy in {steps} steps.")
    text = (f"After {steps} steps: {healthy.test_acc:.1%} test accuracy with the correct backward pass, "
            f"{broken.test_acc:.1%} with the broken one.")
    if broken.test_acc >= healthy.test_acc - 0.01:
        text += (" This bug barely hurts here, so the training curve would never have shown it: only the gradient "
                 "check does.")
    return text
