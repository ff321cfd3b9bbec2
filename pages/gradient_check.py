"""Gradient check: backprop against the definition of the derivative for the sidebar's network, what each costs,
and what a broken backward pass does to training (the TwoLayerNet tutorial's lesson)."""

import streamlit as st

from engine.gradcheck import BUGS, CHECK_BATCH, MAX_ENTRIES, bugs_for
from ui import state
from ui.gradcheck import (
    FORMULA,
    checks_for,
    cost_for,
    damage,
    damage_chart,
    damage_frame,
    outcome_text,
    show_checks,
    show_cost,
)
from ui.resources import get_dataset


def page() -> None:
    st.title("Gradient check")
    st.write("Back-propagation computes every derivative of the loss in one backward pass. The definition of the "
             "derivative computes each one on its own: nudge a parameter up and down by a tiny ε and see how the "
             "loss moves. If the two disagree, the backward pass has a bug. This is the check the TwoLayerNet "
             "tutorial runs before it trusts backprop.")
    cfg = st.session_state.get(state.CONFIG)
    if cfg is None:
        st.error("The configuration in the sidebar has a problem (shown under the field); fix it to check its "
                 "gradients.")
        return
    data = get_dataset(cfg.dataset)
    st.caption(f"The sidebar's network: {cfg.layers_text(data.n_features, data.n_classes)}, "
               f"{cfg.activation} hidden units, {cfg.output} output, {cfg.loss}; its initial weights, in float64"
               + (", dropout off (the check needs the same network on every pass)." if cfg.dropout else "."))

    cols = st.columns([2, 1, 1])
    bugs = bugs_for(cfg)
    if st.session_state.get(state.GC_BUG) not in bugs:
        st.session_state[state.GC_BUG] = "none"
    bug = cols[0].selectbox("Break the backward pass", bugs, key=state.GC_BUG, format_func=BUGS.get,
                            help="Plant a classic backprop bug and watch the check catch it.")
    examples = cols[1].number_input("Examples in the batch", 1, 256, CHECK_BATCH, key=state.GC_EXAMPLES)
    entries = cols[2].number_input("Entries checked per tensor", 1, 2000, MAX_ENTRIES, key=state.GC_ENTRIES,
                                   help="Drawn at random from each weight matrix; small tensors are checked whole.")

    st.subheader("Backprop against the numerical gradient")
    with st.spinner("Nudging parameters one by one…"):
        show_checks(checks_for(cfg, bug, int(examples), int(entries), data))
    st.latex(FORMULA)
    st.caption("a is backprop's gradient for a tensor's checked entries, n the central differences; p_i is one entry "
               "and L the batch loss. In float64 a correct backward pass agrees to about 1e-8 (the nudge's own "
               "rounding); a bug gives errors near 1. L2 weight decay is added by the optimizer, outside the loss.")

    st.subheader("What each way costs")
    with st.spinner("Timing both ways…"):
        show_cost(cost_for(cfg, data))

    st.subheader("What a broken gradient does to training")
    if bug == "none":
        st.info("Choose a bug under **Break the backward pass** above to train with it.", icon=":material/bug_report:")
        return
    steps = st.number_input("Optimizer steps", 50, 1000, 300, step=50, key=state.GC_STEPS)
    if st.button("Train with both backward passes", key=state.GC_TRAIN, icon=":material/play_arrow:",
                 help="The sidebar's network from the same initial weights, through the same batches: once with the "
                      "right gradient, once with the broken one."):
        with st.spinner(f"Training {int(steps)} steps twice…"):
            st.session_state[state.GC_DAMAGE] = (cfg, bug, int(steps), damage(cfg, bug, int(steps), data))
    shown = st.session_state.get(state.GC_DAMAGE)
    if shown is None or shown[:3] != (cfg, bug, int(steps)):
        return
    healthy, broken = shown[3]
    st.altair_chart(damage_chart(damage_frame(healthy, broken, bug)), width="stretch")
    st.write(outcome_text(healthy, broken))


state.run_app_first()
page()
