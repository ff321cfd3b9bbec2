"""Session-state keys (one place for every key a page or test uses) and the session's run list."""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st

APP = Path(__file__).resolve().parent.parent / "app.py"

# Sidebar widgets: besides the preset, each widget's key is the TrainConfig field it edits (a test contract).
PRESET = "preset"

# Derived each run by the sidebar
CONFIG = "config"  # the TrainConfig the sidebar describes, or None
CONFIG_LABEL = "config_label"  # the preset's name, "<preset> (modified)" once edited, or "custom"

# Runs
RUNS = "runs"  # list[TrainingRun], oldest first
ACTIVE_RUN = "active_run"  # id of the run started last
FOLLOWED_RUNS = "followed_runs"  # ids of the runs started together last (the notebook experiment starts two)
FOLLOW_SECONDS = "follow_seconds"  # how long a live view follows runs in one script run (tests set 0)
BASE_PRESET = "base_preset"  # the preset the sidebar's setup was loaded from (runs are named after it)
UPLOADED_FILES = "uploaded_files"  # upload file id -> id of the run loaded from it

# Page widgets
RESULTS_RUN = "results_run"
SAMPLE_SEED = "sample_seed"
CM_MODE = "cm_mode"
CM_CHART = "cm_chart"
CNN_VS_MLP_RUNS = "cnn_vs_mlp_runs"  # the keras-mlp and keras-cnn runs Compare sets side by side
FORK_PARENT = "fork_parent"  # the run whose setup the sidebar holds, to change one thing from
FORK_CHOICE = "fork_choice"  # Compare: the run to change one thing from
CM_FOLLOW = "cm_follow"  # the clicked cell's image to open on Inside
MISTAKE_PICK = "mistake_pick"
MORE_OPTIONS = "more_options"  # the sidebar's "More options" expander, open or not
MORE_OPTIONS_OPEN = "more_options_open"  # its state kept past a page change (Streamlit drops the expander's then)
COMPARE_PENDING = "compare_pending"  # runs to add to the overlay once they have an epoch
COMPARE_RUNS = "compare_runs"
COMPARE_METRIC = "compare_metric"
UPLOAD_RUN = "upload_run"
DRAW_RUN = "draw_run"  # the run the Draw page asks
DRAW_SOURCE = "draw_source"  # draw on the canvas or upload a picture
DRAW_CANVAS = "draw_canvas"
DRAW_STROKE = "draw_stroke"
DRAW_UPLOAD = "draw_upload"
DRAW_LABEL = "draw_label"
DRAW_KEEP = "draw_keep"
DRAW_FORGET = "draw_forget"
MY_DIGITS = "my_digits"  # list of kept drawings: {"label", "mnist": (784,) uint8, "digits": (64,) uint8}
EXPORT_PREFIX = "export_"  # + "numpy" / "torch": the Results page's script downloads
GC_BUG = "gc_bug"  # the Gradient check page's broken backward pass
GC_EXAMPLES = "gc_examples"
GC_ENTRIES = "gc_entries"
GC_STEPS = "gc_steps"
GC_TRAIN = "gc_train"
GC_DAMAGE = "gc_damage"  # (config, bug, steps, (right, broken) StepsRuns): the last damage training
# The Data page (issue 20)
DATA_TABLE = "data_table"  # the built-in table shown
DATA_UPLOAD = "data_upload"  # the CSV uploader
DATA_CSV = "data_csv"  # (file name, bytes) of the CSV uploaded last: the steps after the upload survive reruns
DATA_LABEL = "data_label"  # its label column
DATA_REGISTER = "data_register"  # "Use this file"
DATA_REGISTERED = "data_registered"  # (dataset name, rows dropped) of the CSV registered last
DATA_TRAIN = "data_train"  # "Train on it", under the built-in tables
DATA_TRAIN_UPLOAD = "data_train_upload"  # and under the upload


def init_state() -> None:
    """Create the session's containers once."""
    if RUNS not in st.session_state:
        st.session_state[RUNS] = []
    if SAMPLE_SEED not in st.session_state:
        st.session_state[SAMPLE_SEED] = 0


def run_app_first() -> None:
    """Each page calls this first: when Streamlit ran the page on its own, run app.py instead.

    Until app.py has called st.navigation once in a server process, Streamlit treats pages/ as an
    old-style pages folder, so the first visit to /results after a start runs pages/results.py
    alone: no sidebar, no session state. app.py then draws the page the address names.
    """
    if RUNS not in st.session_state:  # app.py creates it before any page runs
        runpy.run_path(str(APP))
        st.stop()


def runs() -> list:
    return st.session_state[RUNS]


def run_by_id(run_id: str | None):
    return next((r for r in runs() if r.id == run_id), None)


def pick_run(candidates: list, key: str):
    """A "Run" selectbox over `candidates` (newest first) under `key`, starting at the active run; the run chosen."""
    ids = [r.id for r in candidates][::-1]
    if st.session_state.get(key) not in ids:
        active = st.session_state.get(ACTIVE_RUN)
        st.session_state[key] = active if active in ids else ids[0]
    names = {r.id: r.name for r in candidates}
    return run_by_id(st.selectbox("Run", ids, key=key, format_func=names.get))


def active_run():
    """The run started last in this session."""
    return run_by_id(st.session_state.get(ACTIVE_RUN))


def followed_runs() -> list:
    """The runs the Train page follows: those started together last (one, or the notebook experiment's two)."""
    ids = st.session_state.get(FOLLOWED_RUNS) or [st.session_state.get(ACTIVE_RUN)]
    return [r for r in map(run_by_id, ids) if r is not None]


def any_run_in_progress() -> bool:
    return any(r.in_progress for r in runs())

# The Inside page (issue 16)
INSIDE_RUN = "inside_run"
INSIDE_EPOCH = "inside_epoch"  # the epoch scrubber
INSIDE_AT_LATEST = "inside_at_latest"  # the latest epoch when the scrubber last showed it (else None): it follows
INSIDE_PENDING_EPOCH = "inside_pending_epoch"  # where the scrubber goes on the next run (after playing)
INSIDE_PLAYING = "inside_playing"
INSIDE_PLAY_AT = "inside_play_at"  # the epoch the play loop shows
INSIDE_SORT = "inside_sort"
INSIDE_UNIT = "inside_unit"
INSIDE_SOURCE = "inside_source"  # where the journey's digit comes from: random, by index, from Results
INSIDE_INDEX = "inside_index"
INSIDE_RANDOM = "inside_random"  # seed of the random digit
INSIDE_DIGIT = "inside_digit"  # a test image index Results sends to the journey
INSIDE_CLASS = "inside_class"  # the class whose score the saliency explains (None: the prediction)
CM_EPOCH = "cm_epoch"  # Results' confusion-matrix epoch scrubber
INSIDE_DRAWN = "inside_drawn"  # (dataset, uint8 pixels) of a drawing sent from Draw to the journey

# The Sweep page (issue 22)
SWEEPS = "sweeps"  # list[ui.sweep.Sweep] of this session, oldest first
SWEEP_SHOWN = "sweep_shown"  # id of the sweep the page shows
SWEEP_FIELD = "sweep_field"  # + "_<row>": the grid row's setting
SWEEP_VALUES = "sweep_values"  # + "_<row>": its values, as text
SWEEP_WHERE = "sweep_where"
SWEEP_RAY_ADDRESS = "sweep_ray_address"
SWEEP_WORKERS = "sweep_workers"
SWEEP_START = "sweep_start"
SWEEP_CANCEL = "sweep_cancel"
SWEEP_METRIC = "sweep_metric"
SWEEP_X = "sweep_x"  # the heatmap's field across
SWEEP_Y = "sweep_y"  # and down
SWEEP_OPEN_BEST = "sweep_open_best"
SWEEP_OPENED = "sweep_opened"  # the best point was just opened in the sidebar: say so once

# Runs that last (issue 19)
RUN_COUNTER = "run_counter"  # the last run number this session gave (run ids count per session, not per server)
EXPERIMENT_RUNS = "experiment_runs"  # ids of the notebook experiment's two runs, started last from Compare
WORKSPACE = "workspace"  # this session's workspace token (also ?ws= in the address)
SHARED_RUN = "shared_run"  # a share link's session: the link's token (its one run, if known, is the session's run)
SHARED_OPEN = "shared_open"  # a share link was just opened: app.py goes to its Results once
SHARE_LINKS = "share_links"  # run id -> the share link made for it

# The sidebar's sliders, quick look and classroom links (issue 18)
SLIDER = "_slider"  # a numeric field's slider is keyed field + SLIDER; the exact value beside it by the field
HIDDEN_DEPTH = "hidden_depth"  # the hidden-layer count slider
HIDDEN_WIDTH = "hidden_width_"  # + layer index: that layer's width slider
QUICK_LOOK = "quick_look"  # train on a subset for a few epochs
LOCKED = "locked"  # field (or "preset") -> the value a classroom link fixed
HIDDEN = "hidden"  # the fields a classroom link hides
URL_NOTICES = "url_notices"  # what the link asked for that was ignored, in sentences
URL_NOTICES_DISMISS = "url_notices_dismiss"
# The Lessons page
LESSON = "lesson"  # the lesson shown (a link's ?lesson=)
LESSON_LINK = "lesson_link"  # the session's first address named a lesson: app.py opens the Lessons page once
LESSON_SCALE = "lesson_scale"  # tests shrink a lesson's subsets and epochs by this factor (default 1)
LESSON_GUESS = "lesson_guess_"  # + lesson id: the learner's prediction
LESSON_RUN = "lesson_run_"  # + lesson id: the button that runs it
LESSON_RUNS = "lesson_runs"  # lesson id -> (the prediction, the ids of its runs, its extra results)
