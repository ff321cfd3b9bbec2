"""The app through Streamlit's AppTest: pages render, the sidebar builds configs, runs train, stop, step."""

import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine import PRESETS, TrainConfig

APP = "../app.py"
PAGES = ("pages/train.py", "pages/results.py", "pages/compare.py")


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


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


def active_run(at: AppTest):
    return next(r for r in at.session_state["runs"] if r.id == at.session_state["active_run"])


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(page):
    at = new_app()
    at.switch_page(page).run()
    assert not at.exception
    assert at.title[0].value in ("Train", "Results", "Compare")


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
    assert "keras-mlp** (modified)" in texts(at.sidebar.caption)


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
    assert "Finished: 3/3 epochs, test accuracy" in texts(at.success)
    run = active_run(at)
    assert [r.epoch for r in run.history] == [1, 2, 3] and run.history[-1].test_acc > 0.6  # chance is 0.1
    assert " · notebook-mse (modified) · digits " in run.name  # the default preset, edited
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
    assert table.loc[0, "test acc"] == pytest.approx(run.history[-1].test_acc)


def test_stop_keeps_the_history_so_far():
    at = short_run_app(epochs=200, batch_size=8)
    at.button(key="train").click().run()
    at = wait_for(at, lambda a: len(active_run(a).history) >= 1)
    at.button(key="stop").click().run()
    at = wait_for(at, lambda a: not active_run(a).in_progress)
    run = active_run(at)
    assert run.status == "stopped" and 1 <= len(run.history) < 200
    assert f"Stopped at {len(run.history)}/200" in texts(at.warning)


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

    import engine.parallel as parallel
    from engine.parallel import CpuShare
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
    assert alone.status == "finished" and workers_seen == [2]

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
    assert all(run.status == "stopped" for run in long_runs)
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
    assert "Finished: 3/3 epochs" in texts(at.success)


def test_the_notebook_experiment_starts_both_runs_and_overlays_them():
    at = new_app()
    at.switch_page("pages/compare.py").run()
    at.button(key="notebook_experiment").click().run()
    runs = at.session_state["runs"]
    try:
        assert [r.config for r in runs] == [PRESETS["notebook-mse"].config, PRESETS["notebook-ce"].config]
        assert at.multiselect(key="compare_runs").value == [r.id for r in runs]
        wait_for(at, lambda a: all(len(r.history) >= 1 for r in runs))
        assert not at.exception and len(at.get("vega_lite_chart")) == 1
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
