"""Compare: every run of the session in a table, curves overlaid, the notebook's MSE-vs-CE experiment, zips."""

import pandas as pd
import streamlit as st

from engine import PRESETS
from ui import state
from ui.charts import compare_chart
from ui.resources import start_run
from ui.runs import TrainingRun, run_from_zip, run_to_zip

EXPERIMENT = ("notebook-mse", "notebook-ce")
LIVE_SECONDS = 3.0  # as the Train page's curves


def start_notebook_experiment() -> None:
    """Both notebook presets, with the sidebar's backend and seed, overlaid as they train."""
    current = st.session_state.get(state.CONFIG)
    started = []
    for name in EXPERIMENT:
        cfg = PRESETS[name].config
        if current is not None:
            cfg = cfg.replace(backend=current.backend, device=current.device, seed=current.seed)
        run = TrainingRun(cfg)
        run.name = f"{run.id} · {name}"
        state.runs().append(run)
        start_run(run)
        started.append(run.id)
    st.session_state[state.COMPARE_RUNS] = started
    st.session_state[state.ACTIVE_RUN] = started[0]


def runs_table(runs: list[TrainingRun]) -> pd.DataFrame:
    rows = []
    for r in runs:
        c, last = r.config, r.last
        rows.append({
            "run": r.name, "status": r.status, "dataset": c.dataset,
            "layers": c.layers_text("in", "out"),
            "activation": c.activation if c.hidden_sizes else "-", "output / loss": f"{c.output} / {c.loss}",
            "optimizer": c.optimizer, "lr": c.learning_rate, "batch": c.batch_size, "init": c.init,
            "epochs": f"{r.epochs_done}/{c.epochs}", "parameters": r.n_params,
            "train acc": last.train_acc if last else None, "test acc": last.test_acc if last else None,
            "train loss": last.train_loss if last else None, "test loss": last.test_loss if last else None,
            "s / epoch": r.seconds_per_epoch, "total s": r.wall_seconds or None, "backend": c.backend,
        })
    return pd.DataFrame(rows)


def page() -> None:
    st.title("Compare")
    with st.expander("Upload a run", icon=":material/upload:"):
        upload = st.file_uploader("A run zip downloaded from MLP Lab", type=["zip"], key=state.UPLOAD_RUN)
        if upload is not None:
            seen = st.session_state.setdefault(state.UPLOADED_FILES, {})
            if upload.file_id not in seen:
                try:
                    loaded = run_from_zip(upload.getvalue())
                except ValueError as err:
                    st.error(f"{upload.name} could not be loaded: {err}. Your runs are unchanged.")
                else:
                    seen[upload.file_id] = loaded.id
                    state.runs().append(loaded)
            if upload.file_id in seen:
                st.success(f"Loaded {upload.name}: it is in the table below and on the Results page.")
    st.button("Run the notebook experiment: MSE vs cross-entropy", key="notebook_experiment",
              on_click=start_notebook_experiment, icon=":material/science:",
              help="Trains notebook-mse and notebook-ce (30 epochs each) and overlays their curves as they "
                   "learn, as the NumPy notebook's figures do.")
    busy = state.any_run_in_progress()
    st.fragment(runs_overview, run_every=LIVE_SECONDS if busy else None)()


def runs_overview() -> None:
    """The table, the overlaid curves and the downloads: a fragment, redrawn every few seconds while runs train."""
    if state.became_idle():
        st.rerun()  # the whole app: the sidebar unlocks, the downloads appear and the polling stops
    runs = state.runs()
    if not runs:
        st.info("No runs yet: train one on the Train page, start the notebook experiment above, "
                "or upload a run you downloaded before.")
    else:
        pct = st.column_config.NumberColumn(format="percent")
        st.dataframe(runs_table(runs), hide_index=True, column_config={
            "train acc": pct, "test acc": pct, "lr": st.column_config.NumberColumn(format="%g"),
            "train loss": st.column_config.NumberColumn(format="%.4f"),
            "test loss": st.column_config.NumberColumn(format="%.4f"),
            "s / epoch": st.column_config.NumberColumn(format="%.2f"),
            "total s": st.column_config.NumberColumn(format="%.1f")})
        if any(r.in_progress for r in runs):
            st.caption(f"Some runs are still training: this view follows them every {LIVE_SECONDS:g} s.")

        names = {r.id: r.name for r in runs}
        ids = [r.id for r in runs if r.history]
        st.session_state[state.COMPARE_RUNS] = [i for i in st.session_state.get(state.COMPARE_RUNS, ids[-2:])
                                                if i in names]
        chosen = st.multiselect("Runs to overlay", list(names), key=state.COMPARE_RUNS, format_func=names.get)
        metric = st.radio("Metric", ["accuracy", "loss"], key=state.COMPARE_METRIC, horizontal=True)
        shown = [r for r in map(state.run_by_id, chosen) if r.history]
        if shown:
            st.altair_chart(compare_chart(shown, metric), width="stretch")
        elif chosen:
            st.caption("The chosen runs have no finished epoch yet.")

        st.subheader("Download a run")
        st.caption("A zip with the configuration (config.json), the history (history.csv) and the weights "
                   "(weights.npz); upload it here later to inspect it again.")
        for r in runs:
            if r.model is not None and not r.in_progress and r.history:
                st.download_button(f"{r.name}", data=lambda r=r: run_to_zip(r), file_name=f"{r.id}.zip",
                                   mime="application/zip", key=f"download_{r.id}", icon=":material/download:")



state.run_app_first()
page()
