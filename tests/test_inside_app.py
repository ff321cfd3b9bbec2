"""The Inside page through AppTest: a finished, a training, an uploaded, a torch and a Fashion-MNIST run; the
scrubber, play, a digit sent from Results; the functions Results and Compare call; how fast it opens."""

import threading
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine import PRESETS, TrainConfig
from ui.runs import TrainingRun, run_from_zip, run_to_zip

APP = "../app.py"
INSIDE = "pages/inside.py"
SMALL = TrainConfig(dataset="digits", hidden_sizes=(16, 12), activation="tanh", output="softmax",
                    loss="cross_entropy", learning_rate=0.1, batch_size=32, epochs=4, init="xavier")


def trained(cfg: TrainConfig, data) -> TrainingRun:
    run = TrainingRun(cfg)
    run.start(data, threading.BoundedSemaphore(1))
    run.join(300)
    assert run.status == "finished", run.message
    return run


def inside_app(*runs, **state) -> AppTest:
    """The app with these runs in its session, opened on the Inside page."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["follow_seconds"] = 0
    at.session_state["runs"] = list(runs)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    return at.switch_page(INSIDE).run()


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


@pytest.fixture(scope="module")
def small_run(digits):
    return trained(SMALL, digits)


def test_a_finished_run_is_drawn_at_every_epoch(small_run):
    at = inside_app(small_run)
    assert not at.exception
    scrubber = at.select_slider(key="inside_epoch")
    assert scrubber.options == ["0", "1", "2", "3", "4"] and scrubber.value == 4
    assert "Every epoch is kept" in texts(at.caption)
    n_charts = len(at.get("vega_lite_chart"))
    assert n_charts >= 8  # output bars, the diagram, six statistics, per-class accuracy, MSE vs CE
    scrubber.set_value(0).run()
    assert not at.exception and at.select_slider(key="inside_epoch").value == 0
    at.selectbox(key="inside_unit").set_value(5).run()
    assert "unit 5" in texts(at.markdown)
    at.radio(key="inside_sort").set_value("by unit number").run()
    assert at.selectbox(key="inside_unit").options[:3] == ["unit 0", "unit 1", "unit 2"]
    at.radio(key="inside_source").set_value("by index").run()
    at.number_input(key="inside_index").set_value(17).run()
    at.selectbox(key="inside_class").set_value(3).run()
    assert "Test image **17**" in texts(at.markdown) and "the score of **3**" in texts(at.markdown)
    assert not at.exception


def test_play_goes_through_the_epochs_and_stops_on_the_last(small_run, monkeypatch):
    at = inside_app(small_run)
    at.select_slider(key="inside_epoch").set_value(1).run()
    at.button(key="inside_play").click().run()
    assert not at.exception
    assert at.session_state["inside_play_at"] == 4 and not at.session_state["inside_playing"]
    assert at.select_slider(key="inside_epoch").value == 4


def test_a_digit_chosen_on_results_starts_the_journey(small_run):
    at = inside_app(small_run, inside_digit=42, inside_source="from Results")
    assert not at.exception
    assert "Test image **42**" in texts(at.markdown) and "chosen on Results" in texts(at.caption)


def test_a_drawing_sent_from_draw_starts_the_journey(small_run, digits):
    """The Draw page's preprocessed drawing is the journey's input: its outputs are the network's for those pixels."""
    from engine.preprocess import preprocess

    canvas = np.zeros((200, 200), np.uint8)
    canvas[40:160, 95:110] = 255  # a vertical stroke: a 1
    pixels = preprocess(canvas, "digits").pixels
    at = inside_app(small_run, inside_drawn=("digits", pixels), inside_source="your drawing")
    assert not at.exception
    said = texts(at.markdown)
    probs = small_run.model.predict_proba(pixels[None])[0]
    assert f"Your drawing: the network says **{int(probs.argmax())}** ({probs.max():.0%})" in said
    assert "wrong" not in said and "right" not in said.split("Your drawing")[1][:80]  # no true label to judge by


def test_a_training_run_grows_the_scrubber(digits):
    run = TrainingRun(SMALL.replace(epochs=50))
    run.pause_after_epoch = True  # paused after each epoch: still in progress, and stepped by the test
    run.start(digits, threading.BoundedSemaphore(1))
    try:
        wait(lambda: run.status == "paused")
        at = inside_app(run)
        assert not at.exception and "Still training" in texts(at.caption)
        assert at.select_slider(key="inside_epoch").options == ["0", "1"]
        assert at.select_slider(key="inside_epoch").value == 1
        run.step()
        wait(lambda: run.status == "paused" and run.epochs_done == 2)
        at.run()
        grown = at.select_slider(key="inside_epoch")
        assert grown.options == ["0", "1", "2"] and grown.value == 2  # it follows the latest epoch
        grown.set_value(0).run()
        run.step()
        wait(lambda: run.status == "paused" and run.epochs_done == 3)
        at.run()
        assert at.select_slider(key="inside_epoch").value == 0  # unless the learner moved it
        assert not at.exception
    finally:
        run.stop()
        run.join(30)


def wait(done, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_an_uploaded_run_keeps_its_snapshots_and_statistics(small_run):
    back = run_from_zip(run_to_zip(small_run))
    assert back.snapshots.epochs == [0, 1, 2, 3, 4]
    assert [r.layer_stats for r in back.history] == [r.layer_stats for r in small_run.history]
    assert [r.test_confusion for r in back.history] == [r.test_confusion for r in small_run.history]
    at = inside_app(back)
    assert not at.exception and at.select_slider(key="inside_epoch").options == ["0", "1", "2", "3", "4"]


def test_the_snapshot_of_an_epoch_gives_that_epochs_confusion_matrix(small_run, digits):
    """Results' epoch scrubber: the matrix recorded at each epoch, and the predictions from that epoch's
    snapshot, agree (the snapshots are the weights after each epoch)."""
    from ui.inside import confusion_at_epoch, confusion_frame_at_epoch, predictions_at_epoch

    for epoch in (1, 3, 4):
        counts = confusion_at_epoch(small_run, epoch)
        pred = predictions_at_epoch(small_run, digits, epoch).argmax(1)
        by_hand = np.zeros((10, 10), int)
        np.add.at(by_hand, (digits.y_test, pred), 1)
        assert np.array_equal(counts, by_hand)
        frame = confusion_frame_at_epoch(small_run, epoch, digits.class_names)
        assert frame["count"].to_numpy().reshape(10, 10).tolist() == by_hand.tolist()
    assert confusion_at_epoch(small_run, 0) is None and confusion_at_epoch(small_run, 9) is None


def test_the_torch_backend_and_fashion_mnist_without_a_hidden_layer(digits):
    pytest.importorskip("torch")
    from engine import load_dataset

    run = trained(SMALL.replace(backend="torch", device="cpu", epochs=2), digits)
    fashion = trained(TrainConfig(dataset="fashion-mnist", hidden_sizes=(), output="sigmoid", loss="mse",
                                  learning_rate=0.5, epochs=2, train_limit=500, init="small"),
                      load_dataset("fashion-mnist"))
    at = inside_app(run, fashion, inside_run=run.id)
    assert not at.exception and at.select_slider(key="inside_epoch").options == ["0", "1", "2"]
    at.selectbox(key="inside_run").set_value(fashion.id).run()
    assert not at.exception
    assert at.selectbox(key="inside_unit").options[0].endswith(")") and "Ankle boot (output 9)" in \
        at.selectbox(key="inside_unit").options
    assert "Why cross-entropy learns faster than MSE" in texts(at.subheader)
    assert "Saturated share (sigmoid / tanh)" in texts(at.markdown)  # the sigmoid output's


def test_no_runs_yet_says_what_to_do():
    at = inside_app()
    assert not at.exception and "Nothing to look inside yet" in texts(at.info)


def test_the_page_opens_quickly_for_a_finished_keras_mlp_run(mnist):
    """Issue 16's quality bar: under 1 s for keras-mlp (1000 units, 10 epochs of snapshots). Trained on a subset
    to keep the test short: what the page computes does not depend on it. bench/inside.py prints the time too."""
    run = trained(PRESETS["keras-mlp"].config.replace(train_limit=2000), mnist)
    assert run.snapshots.epochs == list(range(11))
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["follow_seconds"] = 0
    at.session_state["runs"] = [run]
    at.run()
    at.switch_page("pages/results.py").run()  # the app and the dataset warm, as when a learner arrives from Results
    t0, c0 = time.perf_counter(), time.process_time()
    at.switch_page(INSIDE).run()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"\nInside page opened for a finished keras-mlp run in {seconds:.2f} s ({cpu:.2f} s of CPU)")
    assert not at.exception
    assert min(seconds, cpu) < 1.0  # wall time on an idle machine; CPU time where other work holds the cores


def compare_script(runs):
    from engine import load_dataset
    from ui.inside import mse_vs_ce_view

    mse_vs_ce_view(runs, load_dataset)


def results_script(run):
    import streamlit as st

    from engine import load_dataset
    from ui.inside import confusion_epoch_widget, confusion_frame_at_epoch

    chosen = confusion_epoch_widget(run)
    st.session_state["shown"] = confusion_frame_at_epoch(run, chosen, load_dataset("digits").class_names)


def test_compare_shows_mse_and_cross_entropy_gradients_side_by_side(small_run, digits):
    mse = trained(SMALL.replace(output="sigmoid", loss="mse", learning_rate=1.0, epochs=1), digits)
    linear = trained(SMALL.replace(output="linear", loss="mse", learning_rate=0.01, epochs=1), digits)
    at = AppTest.from_function(compare_script, kwargs={"runs": [mse, small_run, linear]}, default_timeout=60).run()
    assert not at.exception
    assert "Why cross-entropy learns faster than MSE" in texts(at.subheader)
    assert len(at.get("vega_lite_chart")) == 2  # the linear-output run has no cross-entropy to compare with
    assert "trained with mean squared error" in texts(at.caption) and "trained with cross-entropy" in texts(at.caption)


def test_results_confusion_matrix_scrubber(small_run):
    at = AppTest.from_function(results_script, kwargs={"run": small_run}, default_timeout=60).run()
    slider = at.select_slider(key="cm_epoch")
    assert slider.options == ["1", "2", "3", "4"] and slider.value == 4
    slider.set_value(2).run()
    counts = at.session_state["shown"]["count"].to_numpy().reshape(10, 10)
    assert counts.tolist() == [list(row) for row in small_run.history[1].test_confusion]


def test_a_zip_from_before_snapshots_shows_its_final_weights(small_run):
    import io
    import zipfile

    old = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(run_to_zip(small_run))) as z, zipfile.ZipFile(old, "w") as out:
        for name in z.namelist():
            if name not in ("snapshots.npz", "epochs.json"):
                out.writestr(name, z.read(name))
    back = run_from_zip(old.getvalue())
    assert back.snapshots.epochs == [] and back.history[-1].layer_stats == ()
    at = inside_app(back)
    assert not at.exception
    assert "Only the weights after epoch 4 are available" in texts(at.caption)
    assert "saved before MLP Lab recorded them" in texts(at.info)
