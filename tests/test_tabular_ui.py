"""The Data page through AppTest (a built-in table, a CSV upload with its label column, a bad file's sentence, a run
started on the upload) and ui/tabular.py's and ui/overfit.py's frames and charts."""

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine import EpochResult, TrainConfig, build_model, load_dataset
from engine import config as config_module
from engine import data as data_module
from ui import state
from ui.overfit import early_stopping_frame, with_early_stopping
from ui.tabular import class_counts, feature_weights_chart, input_frame, mistakes_frame, rows_frame

APP = "../app.py"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLP_LAB_CACHE", str(tmp_path))
    datasets, choices = dict(data_module.DATASETS), dict(config_module.DATASET_CHOICES)
    yield tmp_path
    for registry, before in ((data_module.DATASETS, datasets), (config_module.DATASET_CHOICES, choices)):
        registry.clear()
        registry.update(before)
    load_dataset.cache_clear()


def data_page(**session) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["follow_seconds"] = 0
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    return at.switch_page("pages/data.py").run()


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def fruit_csv(n: int = 60) -> bytes:
    rows = ["weight,diameter,colour code,fruit"]
    rows += [f"{100 + 50 * (i % 3) + i % 7},{5 + 2 * (i % 3)},{i % 3},{['apple', 'melon', 'plum'][i % 3]}"
             for i in range(n)]
    rows[5] = "NA,6,1,melon"
    return "\n".join(rows).encode()


def test_the_data_page_shows_a_built_in_table_and_trains_on_it():
    at = data_page()
    assert not at.exception and at.title[0].value == "Data"
    at.selectbox(key=state.DATA_TABLE).set_value("iris").run()
    assert "105 training rows and 45 test rows" in texts(at.markdown)
    assert at.dataframe and "sepal length (cm)" in at.dataframe[-1].value.columns
    at.button(key=state.DATA_TRAIN).click().run()
    assert not at.exception
    run = at.session_state["runs"][-1]
    assert run.config.dataset == "iris" and run.config.input_scaling == "minmax"  # not the sidebar's pixels / 255
    run.join(timeout=120)
    assert run.history, run.message


def test_a_csv_upload_becomes_a_dataset_with_its_label_column_and_missing_rows_counted(cache):
    at = data_page(**{state.DATA_CSV: ("fruit.csv", fruit_csv())})
    assert not at.exception
    assert at.selectbox(key=state.DATA_LABEL).value == "fruit"  # the last column unless one is called quality
    at.button(key=state.DATA_REGISTER).click().run()
    assert not at.exception
    success = texts(at.success)
    assert "fruit.csv is a dataset now: 59 rows, 3 features, classes apple, melon, plum" in success
    assert "1 rows with missing values were left out" in success
    at.run()  # a rerun keeps it
    assert "fruit.csv is a dataset now" in texts(at.success)
    at.button(key=state.DATA_TRAIN_UPLOAD).click().run()
    run = at.session_state["runs"][-1]
    assert run.config.dataset.startswith("csv-") and not at.exception
    run.join(timeout=120)
    assert run.history, run.message
    at.selectbox(key=state.DATA_LABEL).set_value("weight").run()  # another label: not registered yet
    assert "is a dataset now" not in texts(at.success)
    at.button(key=state.DATA_REGISTER).click().run()
    assert "these columns hold text: fruit" in texts(at.error) and not at.exception


@pytest.mark.parametrize("raw, message", [(b"", "The file is empty"),
                                          (b"only\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n", "one column")])
def test_a_bad_upload_gets_its_sentence_and_no_traceback(cache, raw, message):
    at = data_page(**{state.DATA_CSV: ("bad.csv", raw)})
    if at.button and any(b.key == state.DATA_REGISTER for b in at.button):
        at.button(key=state.DATA_REGISTER).click().run()
    assert message in texts(at.error) and not at.exception


def test_tabular_frames_name_the_classes_and_features():
    data = load_dataset("wine")
    probs = np.full((len(data.y_test), 3), 0.1)
    probs[np.arange(len(probs)), (data.y_test + 1) % 3] = 0.8  # every answer wrong, with 80%
    probs[:5] = 0.1
    probs[np.arange(5), data.y_test[:5]] = 0.8  # the first five right
    df = rows_frame(data, np.arange(8), probs)
    assert list(df.columns[:4]) == ["class", "predicted", "probability", "right"] and "alcohol" in df.columns
    assert df["right"].tolist() == [True] * 5 + [False] * 3 and set(df["class"]) <= set(data.class_names)
    mistakes = mistakes_frame(data, probs)
    assert len(mistakes) == min(50, len(data.y_test) - 5) and not mistakes["right"].any()
    counts = class_counts(data)
    assert counts["training rows"].sum() == len(data.y_train) and list(counts.index) == list(data.class_names)
    cfg = TrainConfig(dataset="wine", input_scaling="minmax", hidden_sizes=(6,))
    inputs = input_frame(data, cfg, 0)
    np.testing.assert_allclose(inputs["network input"], data.scale(data.x_test[:1], "minmax")[0], rtol=1e-6)
    W = build_model(cfg, data.n_features, data.n_classes).linears[0].params["W"]
    chart = feature_weights_chart(W, data.feature_names).to_dict()
    assert chart["mark"]["type"] == "rect"


def test_the_curves_mark_where_early_stopping_stopped_and_which_epoch_it_kept():
    history = [EpochResult(e, 1 / e, 0.9, 0.5, 0.8, 0.4 + abs(e - 4) / 10, 0.8) for e in range(1, 7)]
    assert early_stopping_frame(history).empty
    history[-1] = EpochResult(6, 1 / 6, 0.9, 0.5, 0.8, 0.6, 0.8, kept_epoch=4)
    df = early_stopping_frame(history)
    assert df.epoch.tolist() == [4, 6] and df.event.tolist() == ["kept", "stopped"]
    from ui.charts import learning_curves_charts

    loss, _ = learning_curves_charts(history)
    layered = with_early_stopping(loss, history).to_dict()
    assert len(layered["layer"]) == 4  # the curves, the rules, two labels
    assert with_early_stopping(loss, history[:-1]) is loss


def test_results_and_inside_show_a_tabular_run_with_its_own_accuracy():
    """A table's rows are floats: Results must scale them as training did, or it reports another model's accuracy."""
    import threading

    from ui.runs import TrainingRun

    cfg = TrainConfig(dataset="wine", hidden_sizes=(16,), activation="relu", output="softmax", loss="cross_entropy",
                      optimizer="adam", learning_rate=0.01, batch_size=16, epochs=15, input_scaling="minmax",
                      init="he")
    run = TrainingRun(cfg)
    data = load_dataset("wine")
    run.start(data, threading.BoundedSemaphore(1))
    run.join(120)
    assert run.status == "finished", run.message
    probs = run.test_predictions(data)
    assert np.mean(probs.argmax(axis=1) == data.y_test) == run.last.test_acc > 0.8
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["follow_seconds"] = 0
    at.session_state["runs"] = [run]
    at.run()
    at.switch_page("pages/results.py").run()
    assert not at.exception
    assert f"({run.last.test_acc:.2%} accuracy)" in texts(at.markdown)
    at.switch_page("pages/inside.py").run()
    assert not at.exception
