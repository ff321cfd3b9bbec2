"""The Draw and Gradient check pages, and what they add to Results, through Streamlit's AppTest."""

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from engine import TrainConfig, build_model, train
from engine.export import export_script
from engine.preprocess import preprocess
from ui.runs import FINISHED, TrainingRun

APP = "../app.py"


def finished_run(mnist_like, cfg: TrainConfig) -> TrainingRun:
    model = build_model(cfg, mnist_like.n_features, mnist_like.n_classes)
    history = list(train(cfg, mnist_like, model=model))
    return TrainingRun(cfg, status=FINISHED, history=history, model=model)


@pytest.fixture(scope="module")
def mnist_run(mnist):
    cfg = TrainConfig(hidden_sizes=(32,), activation="relu", output="softmax", loss="cross_entropy", init="he",
                      learning_rate=0.1, batch_size=50, epochs=2, train_limit=3000)
    return finished_run(mnist, cfg)


def drawn(digit: np.ndarray) -> np.ndarray:
    """An MNIST digit as a learner might draw it: big, dark on white, off-centre, RGBA like the canvas."""
    big = np.asarray(Image.fromarray(digit.reshape(28, 28)).resize((168, 168), Image.Resampling.BICUBIC))
    paper = np.full((280, 280), 255, dtype=np.uint8)
    paper[90:258, 10:178] = 255 - big
    return np.asarray(Image.fromarray(paper).convert("RGBA"))


def kept(mnist, n: int = 6) -> list[dict]:
    pictures = [drawn(mnist.x_test[i]) for i in range(n)]
    return [{"label": int(mnist.y_test[i]), "mnist": preprocess(p).pixels, "digits": preprocess(p, "digits").pixels}
            for i, p in enumerate(pictures)]


def app_with(runs=(), my_digits=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["runs"] = list(runs)
    at.session_state["follow_seconds"] = 0
    if my_digits is not None:
        at.session_state["my_digits"] = my_digits
    return at.run()


def test_draw_page_without_runs_explains_what_to_do():
    at = app_with()
    at.switch_page("pages/draw.py").run()
    assert not at.exception
    assert at.title[0].value == "Draw"
    assert any("No trained network yet" in i.value for i in at.info)


def test_my_digits_are_scored_on_draw_and_beside_the_test_accuracy_on_results(mnist, mnist_run):
    digits = kept(mnist)
    x = np.array([d["mnist"] for d in digits])
    expected = np.mean(mnist_run.model.predict_proba(x).argmax(axis=1) == [d["label"] for d in digits])
    at = app_with([mnist_run], digits)
    at.switch_page("pages/draw.py").run()
    assert not at.exception
    assert any(f"of {len(digits)}** right" in m.value for m in at.markdown)
    at.switch_page("pages/results.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics[f"My digits ({len(digits)} drawn)"] == f"{expected:.2%}"
    assert metrics["Test accuracy (mnist)"] == f"{mnist_run.last.test_acc:.2%}"
    assert "Take the code away" in [s.value for s in at.subheader]


def test_a_digits_run_reads_the_8x8_drawings_and_results_names_what_it_cannot_export(mnist, digits):
    cfg = TrainConfig(dataset="digits", hidden_sizes=(16,), epochs=1, learning_rate=0.5)
    run = finished_run(digits, cfg)
    kept_digits = kept(mnist, 4)
    expected = np.mean(run.model.predict_proba(np.array([d["digits"] for d in kept_digits])).argmax(axis=1)
                       == [d["label"] for d in kept_digits])
    at = app_with([run], kept_digits)
    at.switch_page("pages/draw.py").run()
    assert not at.exception
    assert any(f"of 4** right ({expected:.0%})" in m.value for m in at.markdown)
    at.switch_page("pages/results.py").run()
    assert not at.exception
    assert any("cannot be exported" in i.value and "digits" in i.value for i in at.info)
    assert export_script(TrainConfig(), "numpy")  # the MNIST default does export (its buttons: the browser test)


def test_gradient_check_page_passes_then_catches_a_planted_bug_and_shows_the_damage():
    at = app_with()
    at.switch_page("pages/gradient_check.py").run()
    assert not at.exception
    assert at.success and "agrees" in at.success[0].value
    table = at.dataframe[0].value
    assert len(table) == 6 and (table["relative error"] < 1e-6).all()
    assert len(at.metric) == 4 and at.metric[1].label == "One numerical gradient"

    at.selectbox(key="gc_bug").set_value("bias_gradient").run()
    assert at.error and "biases" in at.error[0].value and "weights" not in at.error[0].value
    table = at.dataframe[0].value
    assert list(table["verdict"]) == ["✓ agrees", "✗ WRONG"] * 3
    at.number_input(key="gc_steps").set_value(100).run()
    at.button(key="gc_train").click().run()
    assert not at.exception
    assert any("After 100 steps" in m.value for m in at.markdown)


def test_gradient_check_without_hidden_layers_offers_only_the_bugs_it_has():
    at = app_with()
    at.selectbox(key="preset").set_value("softmax-regression").run()
    at.switch_page("pages/gradient_check.py").run()
    assert not at.exception
    options = at.selectbox(key="gc_bug").options
    assert len(options) == 4 and not any("activation" in o for o in options)
