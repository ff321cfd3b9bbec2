"""MLP Lab: build a multilayer perceptron, train it on MNIST, and watch it learn."""

import streamlit as st

from ui import state, workspace
from ui.ast_lock import serialize_ast_parse
from ui.resources import warm_torch
from ui.sidebar import config_sidebar

serialize_ast_parse()  # before the pages are parsed, each in its session's thread
st.set_page_config(page_title="MLP Lab", page_icon=":material/neurology:", layout="wide")
workspace.hosted_options()
state.init_state()
page = st.navigation([
    # url paths must not equal a widget key (AppTest mixes up a page "train" with the button "train")
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="training", default=True),
    st.Page("pages/results.py", title="Results", icon=":material/insights:", url_path="results"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page("pages/inside.py", title="Inside", icon=":material/hub:", url_path="inside"),
    st.Page("pages/draw.py", title="Draw", icon=":material/draw:", url_path="draw"),
    st.Page("pages/gradient_check.py", title="Gradient check", icon=":material/function:", url_path="gradient_check"),
    st.Page("pages/data.py", title="Data", icon=":material/table_chart:", url_path="data"),
    st.Page("pages/sweep.py", title="Sweep", icon=":material/grid_view:", url_path="sweep"),
    st.Page("pages/lessons.py", title="Lessons", icon=":material/school:", url_path="lessons"),
])
ws = workspace.attach()  # this session's runs: its workspace's (?ws=), or a share link's one run (?run=)
cfg = config_sidebar()
workspace.panel(ws)
if st.session_state.pop(state.SHARED_OPEN, False) and page.url_path != "results":
    st.switch_page("pages/results.py")  # a share link opens the run's Results
if st.session_state.pop(state.LESSON_LINK, False) and page.url_path != "lessons":
    st.switch_page("pages/lessons.py")  # a classroom link to a lesson (?lesson=...) opens the Lessons page
if cfg is not None and cfg.backend == "torch":
    warm_torch()  # PyTorch's one-time start-up, in the background, before the learner presses Train
page.run()
