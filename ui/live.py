"""Live views that follow training from the server: no browser timers.

A fragment with `run_every` makes the browser send a rerun request for its page every few seconds. When the
learner navigates (or commits a sidebar value) while such a request is on its way, Streamlit folds the two
requests into one that takes the newer request's page and query string: the timer's stale ones. The app
then draws the previous page, or the address keeps the old page or value (issue 14, items 1 and 2).

So the pages follow runs in a loop at the end of their own script run: it redraws placeholders every
`every` seconds while runs train. Only the learner's own actions send requests; one interrupts the loop at
its next redraw, and the new run carries the page and values the learner chose. When the runs' statuses
change (a run starts, pauses, ends) the loop reruns the whole app from inside the current run, so the
buttons and the sidebar follow.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from ui import state

FOREVER = float("inf")


def runs_signature(watch: str = "status") -> tuple:
    """What a page's buttons, lists and views depend on: the runs' statuses, and whether they have an epoch
    ("history") or how many ("epochs")."""
    return tuple((r.id, r.status, bool(r.history) if watch == "history" else r.epochs_done if watch == "epochs"
                  else None) for r in state.runs())


def follow(draw: Callable[[], None], every: float, watch: str = "status") -> None:
    """Call draw() now and then every `every` seconds while a run of this session is in progress.

    draw() must only write into placeholders made before (it runs many times in one script run). The loop
    lasts `st.session_state[state.FOLLOW_SECONDS]` at most (AppTest sets 0: draw once, the test polls).
    """
    seen = runs_signature(watch)
    budget = st.session_state.get(state.FOLLOW_SECONDS, FOREVER)
    deadline = time.monotonic() + budget
    beat = st.empty()
    while True:
        draw()
        beat.empty()  # a message to the browser: where Streamlit takes a pending rerun request, whatever draw() did
        if runs_signature(watch) != seen:
            st.rerun()  # from this run: its page and query string are the ones the learner is on
        if not state.any_run_in_progress() or time.monotonic() >= deadline:
            return
        time.sleep(every)
