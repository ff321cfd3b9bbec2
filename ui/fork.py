"""Change one thing: a run's setup back in the sidebar, the new run said against its parent, and their differences."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import TrainConfig
from engine.config import FIELDS, describe
from engine.sweep import fork
from ui import state
from ui.naming import value_text
from ui.url import CUSTOM, PRESET, widget_values


def change_one_thing(run_id: str) -> None:
    """A button's callback: the sidebar shows the run's setup, and the next run started is its fork."""
    run = state.run_by_id(run_id)
    for key, value in widget_values(run.config).items():
        st.session_state[key] = value
    st.session_state[PRESET] = CUSTOM
    st.session_state[state.FORK_PARENT] = run_id


def parent():
    """The run the sidebar's setup was forked from, while it is still in the session."""
    return state.run_by_id(st.session_state.get(state.FORK_PARENT))


def changes(cfg: TrainConfig, base: TrainConfig) -> list[str]:
    """What cfg changes in base, as 'learning rate 0.1 → 0.03' phrases in the fields' order."""
    return [f"{describe(f)['label'].lower()} {value_text(f, getattr(base, f))} → {value_text(f, getattr(cfg, f))}"
            for f in FIELDS if getattr(cfg, f) != getattr(base, f)]


def fork_note(cfg: TrainConfig | None) -> None:
    """On Train, while the sidebar holds a forked setup: what differs from the parent and what they share."""
    run = parent()
    if run is None or cfg is None:
        return
    diff = changes(cfg, run.config)
    said = fork(run.config).reason if not diff else fork(run.config, **{
        f: getattr(cfg, f) for f in FIELDS if getattr(cfg, f) != getattr(run.config, f)}).reason
    what = "; ".join(diff) if diff else "nothing changed yet: change a setting in the sidebar"
    st.info(f"Changing one thing from **{run.name}**: {what}. {said}", icon=":material/call_split:")


def fork_name(cfg: TrainConfig, short_id: str) -> str | None:
    """The new run's name when it is a fork ('#5 fork of #3: learning rate 0.1 → 0.03'), else None."""
    run = parent()
    if run is None:
        return None
    diff = changes(cfg, run.config)
    return f"{short_id} fork of {run.short_id}: " + (", ".join(diff) if diff else "the same setup again")


def differences(runs: list) -> pd.DataFrame:
    """The settings that differ between the runs: a row per setting, a column per run ('' where all agree)."""
    fields = [f for f in FIELDS if len({repr(getattr(r.config, f)) for r in runs}) > 1]
    return pd.DataFrame({r.short_id: [value_text(f, getattr(r.config, f)) for f in fields] for r in runs},
                        index=pd.Index([describe(f)["label"] for f in fields], name="setting"))
