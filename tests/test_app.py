"""The app through Streamlit's AppTest: pages render, the sidebar builds configs, runs train, stop, step."""

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine import PRESETS, TrainConfig

APP = "../app.py"
PAGES = ("pages/train.py", "pages/results.py", "pages/compare.py")


def new_app() -> AppTest:
    """The app, with its live views drawing once per run instead of following training (the tests poll)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["follow_seconds"] = 0
    return at.run()


def set_fields(at: AppTest, **values) -> AppTest:
    for key, value in values.items():
        widget = next(w for kind in ("selectbox", "number_input", "text_input", "slider")
                      for w in getattr(at, kind) if w.key == key)
        widget.set_value(value)
    return at.run()


def wait_for(at: AppTest, done, seconds: float = 60) -> AppTest:
    """Rerun the app (as the live view's polling would) until done(at) or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        at.run()
        if done(at):
            return at.run()  # once more: the page draws what the worker finished in between
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the app")


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def chart_data(element) -> list:
    """The rows of a drawn Altair chart's datasets (Streamlit ships them as Arrow beside the spec)."""
    import pyarrow as pa

    rows = []
    for d in element.proto.datasets:
        rows += pa.ipc.open_stream(d.data.data).read_pandas().to_dict("records")
    return rows


def active_run(at: AppTest):
    return next(r for r in at.session_state["runs"] if r.id == at.session_state["active_run"])


TITLES = {"pages/train.py": "Train", "pages/results.py": "Results", "pages/compare.py": "Compare",
          "pages/inside.py": "Inside the network", "pages/draw.py": "Draw", "pages/gradient_check.py": "Gradient check",
          "pages/data.py": "Data", "pages/sweep.py": "Sweep"}


@pytest.mark.parametrize("page", list(TITLES))
def test_every_page_renders_without_exception(page):
    at = new_app()
    at.switch_page(page).run()
    assert not at.exception
    assert at.title[0].value == TITLES[page]


def test_default_config_is_the_notebook_preset():
    at = new_app()
    assert at.session_state["config"] == PRESETS["notebook-mse"].config
    assert at.button(key="train").disabled is False


def test_sidebar_fields_build_the_right_config():
    at = set_fields(new_app(), dataset="digits", hidden_sizes="32, 16", activation="tanh", output="softmax",
                    loss="cross_entropy", optimizer="adam", learning_rate=0.002, batch_size=32, epochs=4,
                    init="xavier", seed=7, dropout=0.2, val_split=0.1, train_limit=500,
                    input_scaling="standardize")
    assert not at.exception
    assert at.session_state["config"] == TrainConfig(
        dataset="digits", hidden_sizes=(32, 16), activation="tanh", output="softmax", loss="cross_entropy",
        optimizer="adam", learning_rate=0.002, batch_size=32, epochs=4, init="xavier", seed=7, dropout=0.2,
        val_split=0.1, train_limit=500, input_scaling="standardize")


def test_choosing_a_preset_fills_the_fields_and_editing_marks_it_modified():
    at = set_fields(new_app(), preset="keras-mlp")
    assert at.session_state["config"] == PRESETS["keras-mlp"].config
    assert at.text_input(key="hidden_sizes").value == "1000"
    assert "modified" not in texts(at.sidebar.caption)
    at = set_fields(at, epochs=3)
    assert at.session_state["config"] == PRESETS["keras-mlp"].config.replace(epochs=3)
    assert "keras-mlp** (modified: epochs 3)" in texts(at.sidebar.caption)


@pytest.mark.parametrize("fields, message", [
    (dict(hidden_sizes="64,,abc"), "empty entry"),
    (dict(hidden_sizes="64,abc"), "'abc' is not a whole number"),
    (dict(hidden_sizes="8192,8192"), "73,629,706 parameters"),
    (dict(learning_rate=0.0), "positive number"),
    (dict(output="linear", loss="cross_entropy"), "softmax or sigmoid"),
])
def test_invalid_input_is_explained_and_disables_train(fields, message):
    at = set_fields(new_app(), **fields)
    assert not at.exception
    assert message in texts(at.sidebar.error)
    assert at.session_state["config"] is None
    assert at.button(key="train").disabled and at.button(key="step").disabled


def test_a_link_reproduces_a_setup():
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["follow_seconds"] = 0
    at.query_params.update(preset="custom", dataset="digits", hidden_sizes="20", activation="relu",
                           learning_rate="0.25", epochs="3", seed="not-a-number")
    at.run()
    cfg = at.session_state["config"]
    assert (cfg.dataset, cfg.hidden_sizes, cfg.activation, cfg.learning_rate, cfg.epochs) == (
        "digits", (20,), "relu", 0.25, 3)
    assert "seed" in texts(at.sidebar.warning)


def short_run_app(**extra) -> AppTest:
    fields = dict(dataset="digits", hidden_sizes="32", activation="relu", output="softmax", loss="cross_entropy",
                  learning_rate=0.1, batch_size=32, epochs=3, init="he")
    fields.update(extra)
    return set_fields(new_app(), **fields)


def test_a_short_run_trains_and_shows_on_results_and_compare():
    at = short_run_app()
    at.button(key="train").click().run()
    assert at.sidebar.selectbox(key="dataset").disabled  # locked while the run is active
    at = wait_for(at, lambda a: "Finished" in texts(a.success))
    assert "Finished: 3/3 epochs done, test accuracy" in texts(at.success)
    run = active_run(at)
    assert [r.epoch for r in run.history] == [1, 2, 3] and run.history[-1].test_acc > 0.6  # chance is 0.1
    assert run.name.startswith(f"#{run.id.split('-')[1]} notebook-mse · dataset digits, hidden 32, activation relu")
    assert not at.sidebar.selectbox(key="dataset").disabled  # unlocked again
    assert len(at.get("vega_lite_chart")) == 2 and len(at.get("metric")) == 5  # loss and accuracy curves, numbers

    at.switch_page("pages/results.py").run()
    assert not at.exception
    assert "right" in texts(at.markdown)
    assert len(at.get("vega_lite_chart")) == 3 and len(at.get("image")) == 2  # 2 curves, matrix; two grids
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 10  # per-class scores

    at.switch_page("pages/compare.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table.loc[0, "run"] == run.name and table.loc[0, "epochs"] == "3/3"
    assert table.loc[0, "test acc"] == f"{run.history[-1].test_acc:.2%}"


def test_stop_keeps_the_history_so_far():
    at = short_run_app(epochs=200, batch_size=8)
    at.button(key="train").click().run()
    at = wait_for(at, lambda a: len(active_run(a).history) >= 1)
    at.button(key="stop").click().run()
    at = wait_for(at, lambda a: not active_run(a).in_progress)
    run = active_run(at)
    assert run.status == "stopped" and 1 <= len(run.history) < 200
    assert f"Stopped: {len(run.history)}/200 epochs done" in texts(at.warning)


def test_step_trains_exactly_one_epoch_then_pauses():
    at = short_run_app(epochs=5)
    at.button(key="step").click().run()
    at = wait_for(at, lambda a: active_run(a).status == "paused")
    assert len(active_run(at).history) == 1
    at.button(key="step").click().run()
    at = wait_for(at, lambda a: len(active_run(a).history) == 2 and active_run(a).status == "paused")
    at.button(key="resume").click().run()
    at = wait_for(at, lambda a: active_run(a).status == "finished")
    assert len(active_run(at).history) == 5


def test_divergence_is_explained_and_keeps_the_curves():
    at = short_run_app(output="linear", loss="mse", learning_rate=50.0, epochs=3)
    at.button(key="train").click().run()
    at = wait_for(at, lambda a: not active_run(a).in_progress)
    assert active_run(at).status == "diverged"
    assert "learning rate" in texts(at.error) and "smaller" in texts(at.error)
    assert not at.exception


def test_results_confusion_matrix_and_samples_redraw():
    at = short_run_app()
    at.button(key="train").click().run()
    wait_for(at, lambda a: not active_run(a).in_progress)
    at.switch_page("pages/results.py").run()
    seed = at.session_state["sample_seed"]
    at.button(key="new_samples").click().run()
    assert at.session_state["sample_seed"] == seed + 1
    at.radio(key="cm_mode").set_value("share of each true class").run()
    at.radio(key="mistake_kind").set_value("most confident").run()
    assert not at.exception
    # the matrix can be scrubbed back to any epoch it was recorded after
    scrubber = at.select_slider(key="cm_epoch")
    assert scrubber.options == ["1", "2", "3"] and scrubber.value == 3
    scrubber.set_value(1).run()
    assert not at.exception and at.session_state["cm_epoch"] == 1


def test_run_zip_round_trip_and_bad_uploads(digits):
    from ui.runs import TrainingRun, run_from_zip, run_to_zip

    cfg = TrainConfig(dataset="digits", hidden_sizes=(16,), activation="relu", output="softmax",
                      loss="cross_entropy", learning_rate=0.1, epochs=2, init="he", val_split=0.2)
    import threading

    run = TrainingRun(cfg)
    run.start(digits, threading.BoundedSemaphore(1))
    run.join(60)
    back = run_from_zip(run_to_zip(run))
    assert back.config == cfg and back.status == "uploaded"
    assert [(r.epoch, r.test_acc, r.val_loss) for r in back.history] == [
        (r.epoch, r.test_acc, r.val_loss) for r in run.history]
    np.testing.assert_array_equal(back.model.predict_proba(digits.x_test), run.model.predict_proba(digits.x_test))
    with pytest.raises(ValueError, match="not a zip"):
        run_from_zip(b"plain text")
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", "{}")
    with pytest.raises(ValueError, match="lacks history.csv, weights.npz"):
        run_from_zip(buf.getvalue())
    good = zipfile.ZipFile(io.BytesIO(run_to_zip(run)))
    for meta, words in [('{"name": "x"}', "no run configuration"), ("[1, 2]", "no run configuration"),
                        ('{"config": {"hidden_sizes": 5}}', "unreadable")]:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for name in good.namelist():
                z.writestr(name, meta if name == "config.json" else good.read(name))
        with pytest.raises(ValueError, match=words):
            run_from_zip(buf.getvalue())


def test_runs_queue_when_all_slots_are_busy(digits):
    import threading

    from ui.runs import TrainingRun

    slots = threading.BoundedSemaphore(1)
    cfg = TrainConfig(dataset="digits", hidden_sizes=(16,), activation="relu", output="softmax",
                      loss="cross_entropy", learning_rate=0.1, epochs=50, batch_size=4, init="he")
    first, second = TrainingRun(cfg), TrainingRun(cfg.replace(epochs=1))
    first.start(digits, slots)
    deadline = time.monotonic() + 10
    while first.status != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    second.start(digits, slots)
    time.sleep(0.5)
    assert second.status == "queued"
    first.stop()
    second.join(30)
    assert first.status == "stopped" and second.status == "finished"


def test_two_runs_of_a_parallel_model_share_the_cores_pause_and_stop(mnist, monkeypatch):
    """keras-mlp takes the engine's multi-threaded step; two at once get a core each; pausing and
    stopping mid-epoch leave no helper thread behind."""
    import threading

    import engine.fast.parallel as parallel
    from engine.fast.parallel import CpuShare
    from ui.runs import TrainingRun

    share = CpuShare(cores=2)
    monkeypatch.setattr(parallel, "_SHARE", share)
    workers_seen = []
    original = parallel.ParallelStep.__init__

    def spy(self, model, optimizer, workers):
        workers_seen.append(workers)
        original(self, model, optimizer, workers)

    monkeypatch.setattr(parallel.ParallelStep, "__init__", spy)
    cfg = PRESETS["keras-mlp"].config.replace(epochs=1, train_limit=3000)
    alone = TrainingRun(cfg)
    alone.start(mnist, threading.BoundedSemaphore(2))
    alone.join(120)
    assert alone.status == "finished" and set(workers_seen) == {2}  # (the engine times its step variants first)

    slots = threading.BoundedSemaphore(2)
    long_runs = [TrainingRun(cfg.replace(epochs=50, train_limit=20000)) for _ in range(2)]
    for run in long_runs:
        run.start(mnist, slots)
    deadline = time.monotonic() + 60
    while share.trainings < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert share.trainings == 2 and share.workers() == 1  # a core each: the serial step
    long_runs[0].pause()
    time.sleep(0.3)
    for run in long_runs:
        run.stop()
        run.join(60)
    assert all(run.status == "stopped" for run in long_runs), [(r.status, r.epochs_done, r.message) for r in long_runs]
    assert share.trainings == 0 and share.looping == 0
    assert not any(t.name.startswith("mlp-lab-worker") for t in threading.enumerate())


def test_a_dataset_that_cannot_be_loaded_is_explained(monkeypatch, tmp_path):
    from engine import data as D
    from ui.resources import get_dataset

    monkeypatch.setattr(D, "REPO_DATA", tmp_path / "nodata")
    monkeypatch.setattr(D, "DEBIAN_FASHION", tmp_path / "nodebian")
    monkeypatch.setenv("MLP_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLP_LAB_FASHION_URL", "http://127.0.0.1:9/")
    D.load_dataset.cache_clear()
    get_dataset.clear()
    try:
        at = set_fields(new_app(), dataset="fashion-mnist")
        assert "cannot be loaded" in texts(at.sidebar.error) and "dataset-fashion-mnist" in texts(at.sidebar.error)
        assert at.session_state["config"] is None and at.button(key="train").disabled
    finally:
        D.load_dataset.cache_clear()
        get_dataset.clear()


def test_the_torch_backend_trains_from_the_app():
    pytest.importorskip("torch")
    at = short_run_app(backend="torch")
    at = set_fields(at, device="cpu")
    at.button(key="train").click().run()
    at = wait_for(at, lambda a: not active_run(a).in_progress)
    run = active_run(at)
    assert run.status == "finished" and run.config.backend == "torch", run.message
    assert "Finished: 3/3 epochs done" in texts(at.success)


def test_the_notebook_experiment_starts_both_runs_and_overlays_them():
    """Issue 14, items 7, 9 and 10: while both runs train the sidebar says what trains, the Train page follows both;
    the overlay offers runs once they have an epoch; MSE and cross-entropy losses get an axis each."""
    at = new_app()
    at.switch_page("pages/compare.py").run()
    at.button(key="notebook_experiment").click().run()
    runs = at.session_state["runs"]
    try:
        assert [r.config for r in runs] == [PRESETS["notebook-mse"].config, PRESETS["notebook-ce"].config]
        assert at.button(key="notebook_experiment").disabled  # issue 19: one pair at a time while they train
        assert [r.name for r in runs] == [f"{r.short_id} {name}" for r, name in zip(runs, ("notebook-mse",
                                                                                          "notebook-ce"))]
        offered = at.multiselect(key="compare_runs").options
        assert all(r.name not in offered for r in runs if not r.history)  # nothing to draw yet: not offered
        at.switch_page("app.py").run()  # the whole app (AppTest runs a page file alone), on its Train page
        sidebar = texts(at.sidebar.markdown)
        assert "Training now" in sidebar
        assert "learning rate 3 " in sidebar and "learning rate 0.5 " in sidebar  # the runs' settings, not the form's
        assert [t.value for t in at.subheader] == [r.name for r in runs]  # the Train page follows both

        at.switch_page("pages/compare.py").run()
        wait_for(at, lambda a: all(len(r.history) >= 1 for r in runs))
        assert at.multiselect(key="compare_runs").value == [r.id for r in runs]  # joined once they had an epoch
        # the overlay and its legend, then each sigmoid run's output gradients under MSE and cross-entropy
        assert not at.exception and len(at.get("vega_lite_chart")) == 2 + 2
        assert "Why cross-entropy learns faster than MSE" in [t.value for t in at.subheader]
        at.radio(key="compare_metric").set_value("loss").run()
        assert len(at.get("vega_lite_chart")) == 3 + 2  # a loss chart each, and the legend
        assert "different units" in texts(at.caption) and "10× smaller" in texts(at.caption)
    finally:
        for r in runs:
            r.stop()
        for r in runs:
            r.join(30)


def test_without_pytorch_the_backend_selector_explains(monkeypatch):
    import ui.sidebar

    monkeypatch.setattr(ui.sidebar, "torch_available", lambda: False)
    at = set_fields(new_app(), backend="torch")
    assert "pip install torch==2.13.0" in texts(at.sidebar.error)
    assert at.session_state["config"] is None and at.button(key="train").disabled


def test_get_backend_without_torch_says_how_to_install(monkeypatch):
    import sys

    from engine.backends import get_backend

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(ImportError, match="pip install torch==2.13.0"):
        get_backend("torch")
    assert get_backend("numpy").name == "numpy"


# ---------------------------------------------------------------- issue 14: every number and link on screen is true

def long_run(at: AppTest) -> AppTest:
    """A run of the digits that lasts (200 epochs of 8-image batches), under way."""
    at = set_fields(at, epochs=200, batch_size=8)
    at.button(key="train").click().run()
    return at


def pause_mid_epoch(at: AppTest) -> AppTest:
    """Pause the active run after its first epoch, between two batches of an epoch."""
    at = wait_for(at, lambda a: len(active_run(a).history) >= 1 and active_run(a).progress.batch > 5)
    for _ in range(10):  # a pause lands between two batches, or (on these short epochs) at an epoch's end
        at.button(key="pause").click().run()
        at = wait_for(at, lambda a: active_run(a).status == "paused")
        if active_run(at).progress.batch:
            return at
        at.button(key="resume").click().run()
        at = wait_for(at, lambda a: active_run(a).status == "running")  # its slot back (a paused run gives it up)
    raise AssertionError("every pause landed at an epoch's end")


def test_no_view_asks_the_browser_to_poll(monkeypatch):
    """Items 1 and 2: a fragment's run_every timer sends reruns for the page it was drawn on; Streamlit folds one
    that crosses a navigation or an edit into it, with the timer's stale page and query string. Live views follow
    training from the server instead."""
    import streamlit as st

    timers = []
    fragment = st.fragment

    def spy(func=None, *, run_every=None, **kw):
        timers.append(run_every)
        return fragment(func, run_every=run_every, **kw)

    monkeypatch.setattr(st, "fragment", spy)
    at = long_run(short_run_app())
    try:
        wait_for(at, lambda a: active_run(a).status == "running")
        for page in PAGES:
            at.switch_page(page).run()
            assert not at.exception
        assert not [t for t in timers if t is not None]
    finally:
        active_run(at).stop()
        active_run(at).join(30)


def test_a_run_stopped_mid_epoch_shows_one_accuracy_everywhere(digits):
    """Item 3: Results, the zip and the Train page all use the weights of the last completed epoch."""
    import io
    import re
    import zipfile

    from engine import load_model

    at = pause_mid_epoch(long_run(short_run_app()))
    at.button(key="stop").click().run()  # the worker, paused between two batches, stops there
    at = wait_for(at, lambda a: not active_run(a).in_progress)
    run = active_run(at)
    acc = run.last.test_acc
    from ui.runs import run_to_zip

    model = load_model(io.BytesIO(zipfile.ZipFile(io.BytesIO(run_to_zip(run))).read("weights.npz")))
    assert np.mean(model.predict_proba(digits.x_test).argmax(1) == digits.y_test) == acc  # the zip's weights
    train_page = texts(at.warning)
    at.switch_page("pages/results.py").run()
    shown = re.search(r"\*\*(\d+) right, (\d+) wrong\*\*", texts(at.markdown))
    right, wrong = int(shown[1]), int(shown[2])
    assert right / (right + wrong) == acc  # Results: exactly the last epoch's test accuracy
    assert run.status == "stopped" and run.partial_epoch_dropped
    assert f"test accuracy {acc:.2%}" in train_page and f"weights after epoch {run.epochs_done}" in train_page


def test_a_run_that_learned_nothing_is_not_shown_as_a_success():
    """Item 4: accuracy at chance gets a warning with causes, not a green Finished."""
    at = short_run_app(output="sigmoid", loss="mse", activation="sigmoid", learning_rate=1e-7, init="small",
                       epochs=2)
    at.button(key="train").click().run()
    at = wait_for(at, lambda a: not active_run(a).in_progress)
    run = active_run(at)
    assert run.status == "finished" and run.last.test_acc < 0.15
    assert not at.success
    assert "learned nothing" in texts(at.warning) and "10 to 100 times larger" in texts(at.warning)
    at.switch_page("pages/results.py").run()
    assert "learned nothing" in texts(at.warning)


def test_epoch_counters_agree_and_step_says_it_finishes_the_epoch():
    """Item 5: one epoch counter (epochs done X/Y, training epoch X+1); Step mid-epoch says what it will do."""
    at = long_run(short_run_app())
    try:
        at = pause_mid_epoch(at)
        run = active_run(at)
        n, b = run.epochs_done, run.progress.batch
        assert b > 0
        tile = next(m for m in at.get("metric") if m.label == "Epochs done")
        assert tile.value == f"{n}/200"
        progress = " ".join(p.proto.text for p in at.get("progress"))
        assert f"Epochs done {n}/200 · training epoch {n + 1}: batch {b}/" in progress and "paused" in progress
        assert at.button(key="step").help.startswith(f"Finish epoch {n + 1} (paused at batch {b}/")
        assert f"**Step** will finish epoch {n + 1}" in texts(at.caption)
        at.button(key="step").click().run()
        at = wait_for(at, lambda a: a.session_state["runs"][-1].status == "paused" and active_run(a).epochs_done
                      == n + 1)
        assert active_run(at).progress.batch == 0  # it finished that epoch and stopped at its end
        assert at.button(key="step").help == f"Train epoch {n + 2}, then pause."
    finally:
        active_run(at).stop()
        active_run(at).join(30)


def test_choosing_the_same_preset_again_reloads_it():
    """Item 6: with keras-mlp edited, choosing keras-mlp loads it again."""
    at = set_fields(new_app(), preset="keras-mlp")
    at = set_fields(at, learning_rate=0.05)
    assert at.selectbox(key="preset").value == "custom"
    assert "Custom (edited keras-mlp)" in at.selectbox(key="preset").options
    at = set_fields(at, preset="keras-mlp")
    assert at.session_state["config"] == PRESETS["keras-mlp"].config
    assert at.number_input(key="learning_rate").value == 0.001


def test_runs_are_named_by_preset_and_differences_and_the_table_is_complete():
    """Item 8: run names say what differs from the preset; the Compare table has every setting, one format per
    column, '—' for nothing, test accuracy among the first columns, and room for more than ten runs."""
    at = short_run_app(dropout=0.3, epochs=1)
    at.button(key="train").click().run()
    at = wait_for(at, lambda a: not active_run(a).in_progress)
    run = active_run(at)
    assert run.name == (f"{run.short_id} notebook-mse · dataset digits, hidden 32, activation relu, output softmax, "
                        "loss cross_entropy, lr 0.1, batch 32, epochs 1, init he, dropout 0.3")
    at.switch_page("pages/compare.py").run()
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["run", "test acc", "train acc"]
    for column in ("dropout", "L2", "val split", "subset", "seed", "input scaling"):
        assert column in table.columns
    row = table.iloc[0]
    assert row["dropout"] == "0.3" and row["subset"] == "all" and row["input scaling"] == "unit"
    assert "None" not in table.to_string() and "nan" not in table.to_string()
    from ui.text import table_height

    assert table_height(12) >= 13 * 35 and table_height(100) == table_height(20)  # 20 runs show, then it scrolls


def test_more_options_remember_whether_they_are_open():
    """Item 12: the expander's state lives in the session, so neither a run nor a page change folds it."""
    at = short_run_app(epochs=1)
    at.session_state["more_options_open"] = True  # as the expander's on_change callback records it
    at.button(key="train").click().run()
    at = wait_for(at, lambda a: not active_run(a).in_progress)
    more = next(e for e in at.sidebar.expander if e.label == "More options")
    assert more.proto.expanded is True


def test_a_mistake_shows_its_ten_outputs():
    """Also expected: choosing a mistake draws its output probabilities."""
    at = short_run_app(epochs=1, learning_rate=0.01)
    at.button(key="train").click().run()
    at = wait_for(at, lambda a: not active_run(a).in_progress)
    at.switch_page("pages/results.py").run()
    charts = len(at.get("vega_lite_chart"))
    pick = at.selectbox(key="mistake_pick")
    image = int(pick.options[0].split()[2].rstrip(":"))  # "test image 123: predicted ..."
    pick.set_value(image).run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == charts + 1
    bars = next(c for c in at.get("vega_lite_chart") if '"bar"' in c.proto.spec)
    values = chart_data(bars)
    probs = active_run(at).test_predictions(__import__("engine").load_dataset("digits"))[image]
    assert [v["probability"] for v in values] == pytest.approx(probs.tolist())  # its ten outputs
    assert [v["role"] for v in values].count("predicted") == 1 and values[int(probs.argmax())]["role"] == "predicted"


def test_the_train_page_draws_the_batch_losses_of_the_epoch_in_progress():
    """Also expected: the loss of each batch of the current epoch, where the engine reports it."""
    from ui.runs import RUNNING, TrainingRun

    at = new_app()
    run = TrainingRun(PRESETS["twolayernet"].config)
    run.status = RUNNING
    run.progress.batch, run.progress.n_batches = 3, 600
    for done, loss in enumerate([2.3, 2.1, 1.9], 1):
        run._on_batch(done, 600, loss)
    run._on_batch(4, 600)  # a backend that does not read the loss back: progress only
    at.session_state["runs"] = [run]
    at.session_state["active_run"] = run.id
    at.run()
    chart = at.get("vega_lite_chart")[-1]
    assert [v["loss"] for v in chart_data(chart)] == [2.3, 2.1, 1.9]
    assert "batch of epoch 1" in chart.proto.spec
    run.status = "stopped"


def test_the_progress_line_and_the_tile_count_the_same_epochs():
    """Item 5: in the moment the worker has recorded an epoch but not yet started the next, the progress line
    does not say "batch 469/469" of the epoch the tile already counts as done."""
    from engine import EpochResult
    from ui.runs import RUNNING, TrainingRun

    at = new_app()
    run = TrainingRun(PRESETS["twolayernet"].config, history=[EpochResult(1, 0.3, 0.9, 0.3, 0.9)])
    run.status = RUNNING
    run.progress.epoch, run.progress.batch, run.progress.n_batches = 1, 600, 600
    at.session_state["runs"] = [run]
    at.session_state["active_run"] = run.id
    at.run()
    assert at.get("progress")[0].proto.text.startswith("Epochs done 1/17 · epoch 2 next")
    assert next(m for m in at.get("metric") if m.label == "Epochs done").value == "1/17"
    run.progress.epoch, run.progress.batch = 2, 30  # the worker moved on
    at.run()
    assert at.get("progress")[0].proto.text.startswith("Epochs done 1/17 · training epoch 2: batch 30/600")
    run.status = "stopped"


def test_change_one_thing_forks_a_run_from_the_same_weights_and_overlays_the_two():
    """Compare's 'Change one thing' puts a run's setup in the sidebar; a changed learning rate trains from the
    parent's initial weights and batches; the two are overlaid with only the differing setting shown."""
    at = short_run_app(epochs=2)
    at.button(key="train").click().run()
    wait_for(at, lambda a: not active_run(a).in_progress)
    parent = active_run(at)
    at.session_state["fork_parent"] = parent.id  # what the button does (AppTest draws no sidebar after a switch)
    at = set_fields(at, learning_rate=0.03)
    assert "Starts from the parent's initial weights" in texts(at.info) and "learning rate 0.1 → 0.03" in texts(at.info)
    at.button(key="train").click().run()
    wait_for(at, lambda a: not active_run(a).in_progress)
    child = active_run(at)
    assert child.name.endswith(f"fork of {parent.short_id}: learning rate 0.1 → 0.03")
    assert all(np.array_equal(a, b) for a, b in zip(child.snapshots.get(0), parent.snapshots.get(0)))  # same start
    at.switch_page("pages/compare.py").run()
    assert at.session_state["compare_runs"] == [parent.id, child.id]
    diff = next(d.value for d in at.dataframe if d.value.index.name == "setting")
    assert list(diff.index) == ["Learning rate"] and list(diff.iloc[0]) == ["0.1", "0.03"]
    at.selectbox(key="fork_choice").set_value(parent.id).run()  # choosing reruns the page, as in a browser
    at.button(key="change_one_thing").click().run()  # the button: the parent's setup back, and the fork to come
    assert not at.exception and at.session_state["fork_parent"] == parent.id
    assert at.session_state["learning_rate"] == 0.1 and at.title[0].value == "Train"
