"""Train: start, pause, step and stop a run, and watch it live."""

import streamlit as st

from ui import state
from ui.charts import MSE_NOTE, batch_loss_chart, learning_curves_charts
from ui.diagnosis import verdict
from ui.fork import fork_name, fork_note
from ui.live import follow
from ui.naming import run_label
from ui.overfit import with_early_stopping
from ui.resources import MAX_CONCURRENT_TRAININGS, get_dataset, resume_button, start_run
from ui.runs import DIVERGED, FAILED, FINISHED, INTERRUPTED, PAUSED, QUEUED, RUNNING, STOPPED, TrainingRun

PROGRESS_SECONDS = 1.0  # progress lines: cheap to redraw
CURVES_SECONDS = 3.0  # numbers and charts: redrawing them costs the browser and the server real CPU


def new_run(step_only: bool) -> None:
    cfg = st.session_state[state.CONFIG]
    run = TrainingRun(cfg)
    label = run_label(cfg, st.session_state.get(state.BASE_PRESET))
    run.name = fork_name(cfg, run.short_id) or f"{run.short_id} {label}"
    run.pause_after_epoch = step_only
    state.runs().append(run)
    st.session_state[state.ACTIVE_RUN] = run.id
    st.session_state[state.FOLLOWED_RUNS] = [run.id]
    forked_from = st.session_state.pop(state.FORK_PARENT, None)
    if forked_from is not None:  # Compare overlays the fork on its parent
        st.session_state[state.COMPARE_RUNS] = [forked_from]
        st.session_state[state.COMPARE_PENDING] = [run.id]
    start_run(run)


def step_help(runs: list[TrainingRun]) -> str:
    """What Step will do, said before it does it: finish the epoch in progress, or train the next one."""
    paused = [r for r in runs if r.status == PAUSED]
    if paused and paused[0].progress.batch:
        r = paused[0]
        return (f"Finish epoch {r.epochs_done + 1} (paused at batch {r.progress.batch}/{r.progress.n_batches}), "
                "then pause.")
    if paused:
        return f"Train epoch {paused[0].epochs_done + 1}, then pause."
    return "Start a run that trains one epoch, then pauses."


def controls(runs: list[TrainingRun]) -> None:
    """Train / Pause / Resume / Step / Stop, enabled by the followed runs' states; each acts on all of them."""
    cfg_ok = st.session_state.get(state.CONFIG) is not None
    busy = [r for r in runs if r.in_progress]
    cols = st.columns(5)
    if cols[0].button("Train", key="train", type="primary", disabled=bool(busy) or not cfg_ok, width="stretch",
                      icon=":material/play_arrow:"):
        new_run(step_only=False)
        st.rerun()
    if cols[1].button("Pause", key="pause", disabled=not any(r.status == RUNNING for r in busy),
                      width="stretch", icon=":material/pause:"):
        for r in busy:
            r.pause()
    if cols[2].button("Resume", key="resume", disabled=not any(r.status == PAUSED for r in busy), width="stretch",
                      icon=":material/resume:"):
        for r in busy:
            r.resume()
    paused = [r for r in busy if r.status == PAUSED]
    step_ok = bool(paused) or (not busy and cfg_ok)
    if cols[3].button("Step", key="step", disabled=not step_ok, width="stretch", icon=":material/skip_next:",
                      help=step_help(busy)):
        if paused:
            for r in paused:
                r.step()
        else:
            new_run(step_only=True)
            st.rerun()
    if cols[4].button("Stop", key="stop", disabled=not busy, width="stretch", icon=":material/stop:"):
        for r in busy:
            r.stop()
    if paused and paused[0].progress.batch:
        st.caption(step_help(busy).replace("Finish", "**Step** will finish", 1))


def status_line(run: TrainingRun) -> None:
    p, cfg = run.progress, run.config
    done = run.epochs_done
    batch = p.batch if p.epoch == done + 1 else 0  # the worker has appended an epoch but not yet moved on
    if run.status == QUEUED:
        st.info(f"**{run.name}** is queued: waiting for a free training slot ({MAX_CONCURRENT_TRAININGS} trainings "
                "run at once on this server).", icon=":material/hourglass:")
    elif run.status in (RUNNING, PAUSED):
        share = batch / p.n_batches if p.n_batches else 0.0
        eta = run.eta_seconds()
        where = (f"training epoch {done + 1}: batch {batch}/{p.n_batches or '?'}" if batch or not done
                 else f"epoch {done + 1} next")
        text = (f"Epochs done {run.epochs_text()} · {where}"
                + (f" · about {eta:.0f} s left" if eta is not None else "")
                + (" · paused" if run.status == PAUSED else ""))
        st.progress(min((done + share) / cfg.epochs, 1.0), text=text)
    elif run.status == FINISHED:
        warning = verdict(run.history, get_dataset(cfg.dataset).n_classes, cfg)
        if warning:
            st.warning(f"{run.summary()}.\n\n{warning}", icon=":material/warning:")
        else:
            st.success(run.summary(), icon=":material/check_circle:")
    elif run.status == STOPPED:
        st.warning(run.summary(), icon=":material/stop_circle:")
        resume_button(run, "train")
    elif run.status == INTERRUPTED:
        st.warning(run.summary(), icon=":material/power_off:")
        resume_button(run, "train")
    elif run.status in (DIVERGED, FAILED):
        st.error(run.summary(), icon=":material/error:")
    if run.in_progress:
        warning = verdict(run.history, get_dataset(cfg.dataset).n_classes, cfg) if done >= 2 else None
        if warning:
            st.warning(warning, icon=":material/warning:")


def epoch_numbers(run: TrainingRun) -> None:
    last = run.last
    if last is None:
        return
    prev = run.history[-2] if len(run.history) > 1 else None
    cols = st.columns(5)
    cols[0].metric("Epochs done", run.epochs_text())
    cols[1].metric("Train loss", f"{last.train_loss:.4f}",
                   delta=f"{last.train_loss - prev.train_loss:+.4f}" if prev else None, delta_color="inverse")
    cols[2].metric("Train accuracy", f"{last.train_acc:.2%}",
                   delta=f"{100 * (last.train_acc - prev.train_acc):+.2f} pts" if prev else None)
    cols[3].metric("Test accuracy", f"{last.test_acc:.2%}",
                   delta=f"{100 * (last.test_acc - prev.test_acc):+.2f} pts" if prev else None)
    cols[4].metric("Seconds / epoch", f"{run.seconds_per_epoch:.2f}")


def curves(run: TrainingRun) -> None:
    epoch_numbers(run)
    if run.history:
        n_classes = get_dataset(run.config.dataset).n_classes
        for column, chart in zip(st.columns(2), learning_curves_charts(run.history, n_classes, run.config.loss)):
            column.altair_chart(with_early_stopping(chart, run.history), width="stretch")
        if run.config.loss == "mse":
            st.caption(MSE_NOTE)
    losses = list(run.batch_losses)
    if run.in_progress and len(losses) > 1:
        st.altair_chart(batch_loss_chart(losses, run.epochs_done + 1), width="stretch")
        st.caption(f"The loss of each batch in epoch {run.epochs_done + 1} so far: noisy, since each batch is a few "
                   "images; the epoch curves above are full passes.")


def page() -> None:
    st.title("Train")
    st.write("Build a multilayer perceptron in the sidebar and train it. The curves update after every epoch; "
             "training goes on while you look at other pages.")
    if st.session_state.get(state.CONFIG) is None:
        st.error("The configuration in the sidebar has a problem (shown under the field); fix it to train.")
    fork_note(st.session_state.get(state.CONFIG))
    runs = state.followed_runs()
    controls(runs)
    if not runs:
        st.info("Choose a preset or build a network in the sidebar, then press **Train**.",
                icon=":material/arrow_back:")
        return
    boxes = []
    for run in runs:
        if len(runs) > 1:
            st.subheader(run.name)
        st.caption(f"**{run.name}** — {run.n_params:,} parameters, backend {run.config.backend}")
        boxes.append((run, st.empty(), st.empty()))
    ticks, final, drawn_epochs = [0], set(), {}

    def draw() -> None:
        batch_curve_due = ticks[0] % round(CURVES_SECONDS / PROGRESS_SECONDS) == 0
        ticks[0] += 1
        for run, status_box, curves_box in boxes:
            if run.id in final:
                continue
            done = run.epochs_done
            with status_box.container():
                status_line(run)
            if batch_curve_due or drawn_epochs.get(run.id) != done or not run.in_progress:
                drawn_epochs[run.id] = done  # a finished epoch reaches the tiles with the progress line
                with curves_box.container():
                    curves(run)
            if not run.in_progress:
                final.add(run.id)  # drawn for good

    follow(draw, PROGRESS_SECONDS)


state.run_app_first()
page()
