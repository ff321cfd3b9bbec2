"""Compare: every run of the session in a table, curves overlaid, the notebook's MSE-vs-CE experiment, zips."""

import streamlit as st

from ui import cnn, state
from ui.charts import LOSS_UNITS, MSE_NOTE, compare_chart, compare_legend
from ui.fork import change_one_thing, differences
from ui.inside import mse_vs_ce_view
from ui.live import follow
from ui.resources import get_dataset, start_presets
from ui.runs import TrainingRun, run_from_zip, run_to_zip
from ui.text import runs_table, table_height, upload_error

EXPERIMENT = ("notebook-mse", "notebook-ce")
LIVE_SECONDS = 3.0  # as the Train page's curves


def experiment_training() -> bool:
    """The notebook experiment started last is still training: one pair at a time per session."""
    return any(r is not None and r.in_progress for r in map(state.run_by_id, st.session_state.get(
        state.EXPERIMENT_RUNS, [])))


def start_notebook_experiment() -> None:
    """Both notebook presets, with the sidebar's backend and seed, overlaid as they train."""
    if experiment_training():  # a second click that arrived before the button was drawn disabled
        return
    started = start_presets(EXPERIMENT)
    st.session_state[state.EXPERIMENT_RUNS] = started


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
                    st.error(upload_error(upload.name, err))
                else:
                    seen[upload.file_id] = loaded.id
                    state.runs().append(loaded)
            if upload.file_id in seen:
                st.success(f"Loaded {upload.name}: it is in the table below and on the Results page.")
    st.button("Run the notebook experiment: MSE vs cross-entropy", key="notebook_experiment",
              on_click=start_notebook_experiment, icon=":material/science:", disabled=experiment_training(),
              help="Trains notebook-mse and notebook-ce (30 epochs each) and overlays their curves as they "
                   "learn, as the NumPy notebook's figures do; once they have finished, it can run again.")
    st.button("Keras: MLP vs CNN", key="cnn_experiment", on_click=cnn.start_cnn_vs_mlp, icon=":material/grid_on:",
              help="Trains keras-mlp (10 epochs) and keras-cnn (5 epochs), the Keras tutorial's pair, and sets them "
                   "side by side: why does the CNN do better? (The CNN takes minutes an epoch on a small CPU.)")
    runs = state.runs()
    if not runs:
        st.info("No runs yet: train one on the Train page, start the notebook experiment above, "
                "or upload a run you downloaded before.")
        return
    table_box, live_caption = st.empty(), st.empty()

    # The overlay's choices: only runs with an epoch to draw; runs the experiment started join once they have one.
    ids = [r.id for r in runs if r.history]
    names = {r.id: r.name for r in runs}
    pending = st.session_state.get(state.COMPARE_PENDING, [])
    chosen = st.session_state.get(state.COMPARE_RUNS, ids[-2:])
    chosen = [i for i in ids if i in chosen or i in pending]  # in the runs' order
    st.session_state[state.COMPARE_PENDING] = [i for i in pending if i not in ids]
    st.session_state[state.COMPARE_RUNS] = chosen
    st.multiselect("Runs to overlay", ids, key=state.COMPARE_RUNS, format_func=names.get,
                   placeholder="Runs appear here after their first epoch")
    metric = st.radio("Metric", ["accuracy", "loss"], key=state.COMPARE_METRIC, horizontal=True)
    overlay_box = st.empty()
    mse_vs_ce_view([r for r in map(state.run_by_id, st.session_state[state.COMPARE_RUNS]) if r], get_dataset)
    overlaid = [r for r in map(state.run_by_id, st.session_state[state.COMPARE_RUNS]) if r]
    if len(overlaid) > 1:
        diff = differences(overlaid)
        st.caption("What differs between the overlaid runs (every other setting is the same):" if len(diff) else
                   "The overlaid runs have the same setup.")
        if len(diff):
            st.dataframe(diff)
    ids_all = [r.id for r in runs if not r.in_progress]
    if ids_all:
        pick, go = st.columns([3, 1], vertical_alignment="bottom")
        with pick:
            base = st.selectbox("Change one thing from", ids_all[::-1], key=state.FORK_CHOICE, format_func=names.get)
        with go:
            if st.button("Change one thing", key="change_one_thing", on_click=change_one_thing, args=(base,),
                         icon=":material/call_split:",
                         help="Its setup goes back into the sidebar: change a setting and train, and the new run "
                              "starts from the same initial weights and batch order wherever the change allows."):
                st.switch_page("pages/train.py")
    pair = [state.run_by_id(i) for i in st.session_state.get(state.CNN_VS_MLP_RUNS, [])]
    if len(pair) == 2 and all(pair):
        st.subheader("MLP vs CNN")
        rows, sentence = cnn.cnn_vs_mlp(*pair)
        st.dataframe(rows, hide_index=True)
        st.markdown(sentence)

    st.subheader("Download a run")
    st.caption("A zip with the configuration (config.json), the history (history.csv), the weights "
               "(weights.npz) of the last completed epoch, and the weights kept per epoch with their statistics "
               "(snapshots.npz, epochs.json) for the Inside page; upload it here later to inspect it again.")
    for r in runs:
        if r.model is not None and not r.in_progress and r.history:
            st.download_button(f"{r.name}", data=lambda r=r: run_to_zip(r), file_name=f"{r.id}.zip",
                               mime="application/zip", key=f"download_{r.id}", icon=":material/download:")

    def draw() -> None:
        table_box.dataframe(runs_table(runs), hide_index=True, height=table_height(len(runs)))
        if any(r.in_progress for r in runs):
            live_caption.caption(f"Some runs are still training: this view follows them every {LIVE_SECONDS:g} s.")
        else:
            live_caption.empty()
        with overlay_box.container():
            overlay([r for r in map(state.run_by_id, st.session_state[state.COMPARE_RUNS]) if r], metric)

    follow(draw, LIVE_SECONDS, watch="history")


def overlay(shown: list[TrainingRun], metric: str) -> None:
    """The chosen runs' curves; losses of different kinds on separate axes (their units differ)."""
    if not shown:
        return
    plot, legend = st.columns([3, 1])
    kinds = sorted({r.config.loss for r in shown})
    with plot:
        if metric == "loss" and len(kinds) > 1:
            st.caption("Mean squared error and cross-entropy are different units, so each has its own chart: "
                       "compare the runs' shapes, not their heights. " + MSE_NOTE)
            for kind in kinds:
                group = [r for r in shown if r.config.loss == kind]
                title = f"loss ({LOSS_UNITS.get(kind, kind)})"
                st.altair_chart(compare_chart(group, metric, title=title, all_runs=shown), width="stretch")
        else:
            title = f"loss ({LOSS_UNITS.get(kinds[0], kinds[0])})" if metric == "loss" else metric
            st.altair_chart(compare_chart(shown, metric, title=title), width="stretch")
            if metric == "loss" and kinds == ["mse"]:
                st.caption(MSE_NOTE)
    with legend:  # beside the plot; scrolls when the runs need more room than the plot's height
        with st.container(height=min(22 * len(shown) + 40, 360), border=False):
            st.altair_chart(compare_legend(shown), width="stretch")


state.run_app_first()
page()
