"""Train: start, pause, step and stop a run, and watch it live."""

import streamlit as st

from ui import state
from ui.charts import learning_curves_charts
from ui.resources import MAX_CONCURRENT_TRAININGS, start_run
from ui.runs import DIVERGED, FAILED, FINISHED, PAUSED, QUEUED, RUNNING, STOPPED, TrainingRun

PROGRESS_SECONDS = 1.0  # buttons and progress bar: cheap to redraw
CURVES_SECONDS = 3.0  # numbers and charts: redrawing them costs the browser and the server real CPU


def new_run(step_only: bool) -> None:
    cfg = st.session_state[state.CONFIG]
    label = st.session_state[state.CONFIG_LABEL]
    run = TrainingRun(cfg)
    run.name = f"{run.id} · {label} · {cfg.dataset} {cfg.architecture} {cfg.optimizer} lr {cfg.learning_rate:g}"
    run.pause_after_epoch = step_only
    state.runs().append(run)
    st.session_state[state.ACTIVE_RUN] = run.id
    start_run(run)


def controls(run: TrainingRun | None) -> None:
    """Train / Pause / Resume / Step / Stop, enabled by the run's state."""
    cfg_ok = st.session_state.get(state.CONFIG) is not None
    busy = run is not None and run.in_progress
    cols = st.columns(5)
    if cols[0].button("Train", key="train", type="primary", disabled=busy or not cfg_ok, width="stretch",
                      icon=":material/play_arrow:"):
        new_run(step_only=False)
        st.rerun()
    if cols[1].button("Pause", key="pause", disabled=not (busy and run.status == RUNNING), width="stretch",
                      icon=":material/pause:"):
        run.pause()
    if cols[2].button("Resume", key="resume", disabled=not (busy and run.status == PAUSED), width="stretch",
                      icon=":material/resume:"):
        run.resume()
    step_ok = (busy and run.status == PAUSED) or (not busy and cfg_ok)
    if cols[3].button("Step", key="step", disabled=not step_ok, width="stretch", icon=":material/skip_next:",
                      help="Train exactly one epoch, then pause."):
        if busy:
            run.step()
        else:
            new_run(step_only=True)
            st.rerun()
    if cols[4].button("Stop", key="stop", disabled=not busy, width="stretch", icon=":material/stop:"):
        run.stop()


def status_line(run: TrainingRun) -> None:
    p, cfg = run.progress, run.config
    if run.status == QUEUED:
        st.info(f"Queued: waiting for a free training slot ({MAX_CONCURRENT_TRAININGS} trainings run at once "
                "on this server).", icon=":material/hourglass:")
    elif run.status in (RUNNING, PAUSED):
        batch_share = p.batch / p.n_batches if p.n_batches else 0.0
        done = (run.epochs_done + (batch_share if p.epoch > run.epochs_done else 0)) / cfg.epochs
        eta = run.eta_seconds()
        text = (f"Epoch {p.epoch}/{cfg.epochs} · batch {p.batch}/{p.n_batches or '?'}"
                + (f" · about {eta:.0f} s left" if eta is not None else "")
                + (" · paused" if run.status == PAUSED else ""))
        st.progress(min(done, 1.0), text=text)
    elif run.status == FINISHED:
        st.success(run.summary(), icon=":material/check_circle:")
    elif run.status == STOPPED:
        st.warning(run.summary(), icon=":material/stop_circle:")
    elif run.status in (DIVERGED, FAILED):
        st.error(run.summary(), icon=":material/error:")


def epoch_numbers(run: TrainingRun) -> None:
    last = run.last
    if last is None:
        return
    prev = run.history[-2] if len(run.history) > 1 else None
    cols = st.columns(5)
    cols[0].metric("Epoch", f"{last.epoch}/{run.config.epochs}")
    cols[1].metric("Train loss", f"{last.train_loss:.4f}",
                   delta=f"{last.train_loss - prev.train_loss:+.4f}" if prev else None, delta_color="inverse")
    cols[2].metric("Train accuracy", f"{last.train_acc:.2%}",
                   delta=f"{100 * (last.train_acc - prev.train_acc):+.2f} pts" if prev else None)
    cols[3].metric("Test accuracy", f"{last.test_acc:.2%}",
                   delta=f"{100 * (last.test_acc - prev.test_acc):+.2f} pts" if prev else None)
    cols[4].metric("Seconds / epoch", f"{run.seconds_per_epoch:.2f}")


def live_controls() -> None:
    if state.became_idle():
        st.rerun()  # the whole app: the sidebar unlocks and the curves show the last epoch
    run = state.active_run()
    controls(run)
    if run is None:
        st.info("Choose a preset or build a network in the sidebar, then press **Train**.",
                icon=":material/arrow_back:")
        return
    st.caption(f"**{run.name}** — {run.n_params:,} parameters, backend {run.config.backend}")
    status_line(run)


def live_curves() -> None:
    run = state.active_run()
    if run is None:
        return
    epoch_numbers(run)
    if run.history:
        for column, chart in zip(st.columns(2), learning_curves_charts(run.history)):
            column.altair_chart(chart, width="stretch")


def page() -> None:
    st.title("Train")
    st.write("Build a multilayer perceptron in the sidebar and train it. The curves update after every epoch; "
             "training goes on while you look at other pages.")
    if st.session_state.get(state.CONFIG) is None:
        st.error("The configuration in the sidebar has a problem (shown under the field); fix it to train.")
    busy = state.any_run_in_progress()
    st.fragment(live_controls, run_every=PROGRESS_SECONDS if busy else None)()
    st.fragment(live_curves, run_every=CURVES_SECONDS if busy else None)()


state.run_app_first()
page()
