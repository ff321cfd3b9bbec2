"""ui/cnn.py: the first filters and a digit's feature maps (Inside), the CNN-vs-MLP table and button (Compare)."""

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine import PRESETS, EpochResult, build_model
from ui import cnn
from ui.runs import TrainingRun


def test_first_filters_are_the_first_convolution_s_weights_as_gray_images():
    model = build_model(PRESETS["keras-cnn"].config, 784, 10)
    filters = cnn.first_filters(model)
    W = model.layers[1].params["W"][:, 0]  # (32, 5, 5)
    assert filters.shape == (32, 5, 5) and filters.dtype == np.uint8
    for f, w in zip(filters, W):
        assert f.min() == 0 and f.max() == 255
        assert f.flat[w.argmax()] == 255 and f.flat[w.argmin()] == 0
    assert isinstance(cnn.filters_image(model), Image.Image)


def test_feature_maps_are_each_conv_layer_s_activations(mnist):
    model = build_model(PRESETS["keras-cnn"].config, 784, 10)
    digit = mnist.x_test[0]
    maps = cnn.feature_maps(model, digit)
    assert [m.shape for m in maps] == [(32, 28, 28), (64, 14, 14)]
    x = digit.reshape(1, 1, 28, 28) / np.float32(255)
    first = np.maximum(model.layers[1].forward(x.astype(np.float32), train=False), 0)[0]
    np.testing.assert_allclose(maps[0], first, rtol=1e-5, atol=1e-6)
    assert all(m.min() >= 0 for m in maps)  # after the ReLU
    assert [im.size[0] for im in cnn.feature_map_images(model, digit)] == [8 * 60 + 4] * 2


def _finished(name: str, acc: float, seconds: float) -> TrainingRun:
    run = TrainingRun(PRESETS[name].config, name=name)
    run.history = [EpochResult(1, 0.1, acc, 0.1, acc, seconds=seconds)]
    return run


def test_the_table_and_sentence_carry_the_runs_own_numbers():
    rows, sentence = cnn.cnn_vs_mlp(_finished("keras-mlp", 0.9811, 20.0), _finished("keras-cnn", 0.9904, 95.0))
    assert [r["parameters"] for r in rows] == [795_010, 3_156_098]  # as Keras' model.summary() counts them
    assert [r["test accuracy"] for r in rows] == [0.9811, 0.9904]
    for text in ("99.04%", "98.11%", "2.0 times fewer", "3,156,098", "795,010", "9,088", "95 s", "20 s"):
        assert text in sentence, text
    _, waiting = cnn.cnn_vs_mlp(TrainingRun(PRESETS["keras-mlp"].config), _finished("keras-cnn", 0.99, 1.0))
    assert "once both runs" in waiting


def test_the_button_starts_keras_mlp_and_keras_cnn_with_the_sidebar_s_seed(monkeypatch):
    from ui import resources

    started = []
    monkeypatch.setattr(resources, "start_run", started.append)

    def script():
        import streamlit as st

        from engine import TrainConfig
        from ui import cnn, state

        st.session_state.setdefault(state.RUNS, [])
        st.session_state[state.CONFIG] = TrainConfig(seed=7)
        st.button("CNN vs MLP", key="cnn_vs_mlp", on_click=cnn.start_cnn_vs_mlp)

    at = AppTest.from_function(script).run()
    at.button(key="cnn_vs_mlp").click().run()
    assert not at.exception
    assert [r.config.hidden_sizes for r in started] == [(1000,), ("c32k5", "p2", "c64k2", "p2", "d.25", 1000)]
    assert all(r.config.seed == 7 for r in started)
    assert at.session_state["compare_pending"] == [r.id for r in started]


def test_a_cnn_run_still_training_is_shown_with_its_last_epochs_weights(digits):
    """Results reads a training run through a copy of its last epoch's weights: a CNN's first layer is no Linear."""
    import threading
    import time

    from engine import TrainConfig
    from ui.runs import TrainingRun

    cfg = TrainConfig(dataset="digits", hidden_sizes=("c4k3", "p2", 16), activation="relu", output="softmax",
                      loss="cross_entropy", optimizer="adam", learning_rate=0.01, batch_size=16, epochs=200,
                      init="he")
    run = TrainingRun(cfg)
    run.start(digits, threading.BoundedSemaphore(1))
    try:
        deadline = time.monotonic() + 120
        while not run.history and time.monotonic() < deadline:
            time.sleep(0.05)
        assert run.in_progress and run.io_sizes == (64, 10)
        for _ in range(20):  # an epoch may end while the predictions are made: read again then
            n = run.epochs_done
            probs = run.test_predictions(digits)
            if run.epochs_done == n:
                break
        assert np.mean(probs.argmax(axis=1) == digits.y_test) == run.history[n - 1].test_acc
    finally:
        run.stop()
        run.join(60)


def test_inside_shows_a_cnns_filters_and_feature_maps_and_compare_sets_it_beside_an_mlp(digits):
    import threading

    from engine import TrainConfig

    def trained(cfg):
        run = TrainingRun(cfg)
        run.start(digits, threading.BoundedSemaphore(1))
        run.join(300)
        assert run.status == "finished", run.message
        return run

    base = dict(dataset="digits", activation="relu", output="softmax", loss="cross_entropy", optimizer="adam",
                learning_rate=0.01, batch_size=32, epochs=2, init="xavier")
    mlp = trained(TrainConfig(hidden_sizes=(32,), **base))
    conv = trained(TrainConfig(hidden_sizes=("c6k3", "p2", 16), **base))
    at = AppTest.from_file("../app.py", default_timeout=120)
    at.session_state["follow_seconds"] = 0
    at.session_state["runs"] = [mlp, conv]
    at.session_state["inside_run"] = conv.id
    at.session_state["cnn_vs_mlp_runs"] = [mlp.id, conv.id]
    at.run()
    at.switch_page("pages/inside.py").run()
    assert not at.exception
    assert "What the first convolution looks for" in [s.value for s in at.subheader]
    assert len(at.get("image")) >= 3  # the filters, the input and one feature-map mosaic
    at.switch_page("pages/compare.py").run()
    assert not at.exception
    assert "MLP vs CNN" in [s.value for s in at.subheader]
    assert "times" in " ".join(m.value for m in at.markdown) and "parameters against" in " ".join(
        m.value for m in at.markdown)
