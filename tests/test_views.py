"""What the pages draw: digit mosaics whose captions stay under their own image, charts whose legends tell
splits and runs apart, confusion-matrix axes that name the classes."""

import json
from types import SimpleNamespace

import numpy as np
from PIL import ImageFont

from engine import EpochResult
from engine.data import FASHION_CLASSES
from ui.charts import class_label_expr, compare_chart, confusion_frame, confusion_matrix_chart, learning_curves_charts
from ui.mosaic import caption_lines, mosaic

CELL, PAD = 84, 4


def ink(sheet, box) -> int:
    """Pixels in box (left, top, right, bottom) that are not white."""
    a = np.asarray(sheet.crop(box).convert("L"))
    return int(np.count_nonzero(a < 250))


def blank(n: int) -> np.ndarray:
    return np.zeros((n, 28 * 28), dtype=np.uint8)  # white paper once inverted


def test_a_long_caption_wraps_and_stays_in_its_column():
    longest = f"{FASHION_CLASSES[2]} (is {FASHION_CLASSES[0]})"  # "Pullover (is T-shirt/top)"
    sheet = mosaic(blank(2), (28, 28), [longest, ""], cols=2, cell=CELL)
    one_line = mosaic(blank(2), (28, 28), ["5 (is 3)", ""], cols=2, cell=CELL)
    assert sheet.height > one_line.height  # a second caption line
    top = PAD + CELL
    assert ink(sheet, (0, top, PAD + CELL + PAD // 2, sheet.height)) > 0  # the caption is drawn...
    assert ink(sheet, (PAD + CELL + PAD // 2, top, sheet.width, sheet.height)) == 0  # ...and not into column 2


def test_caption_lines_fit_the_cell():
    font = ImageFont.load_default(size=13)
    for pred in FASHION_CLASSES:
        for true in FASHION_CLASSES:
            text = pred if pred == true else f"{pred} (is {true})"
            lines = caption_lines(text, font, CELL)
            assert 1 <= len(lines) <= 2
            assert all(font.getlength(line) <= CELL for line in lines), lines
            assert lines[0].startswith(pred[:4])  # the prediction leads
    assert caption_lines("5 (is 3)", font, CELL) == ["5 (is 3)"]  # digits stay on one line
    cut = caption_lines("Sneaker (is Ankle boot)", font, 80)  # too narrow for "(is Ankle boot)"
    assert cut[0] == "Sneaker" and cut[1].startswith("(is Ankle") and cut[1].endswith("…)")


def test_compare_chart_legend_tells_splits_and_runs_apart():
    history = [EpochResult(e, 1.0 / e, 0.8 + e / 100, 1.1 / e, 0.79 + e / 100) for e in (1, 2, 3)]
    runs = [SimpleNamespace(id=f"run-{i}", name=f"run-{i}", history=history) for i in (1, 2)]
    spec = compare_chart(runs, "accuracy").to_dict()
    enc = spec["encoding"]
    # A dash alone draws the split legend as two identical dots: the points' shape must differ too.
    assert enc["strokeDash"]["field"] == enc["shape"]["field"] == "split"
    assert enc["color"]["field"] == "run" and enc["color"]["scale"]["domain"] == ["run-1", "run-2"]
    assert len(set(enc["color"]["scale"]["range"])) == 2  # distinct hues, not the theme's two blues
    values = spec["datasets"][next(iter(spec["datasets"]))]
    assert {(v["run"], v["split"]) for v in values} == {(r, s) for r in ("run-1", "run-2") for s in ("train", "test")}
    assert len(values) == 2 * 2 * 3


def test_confusion_matrix_axes_name_fashion_classes_and_keep_digit_indices():
    t, p = np.array([0, 6, 6, 2]), np.array([0, 2, 6, 2])
    fashion = confusion_matrix_chart(confusion_frame(t, p, FASHION_CLASSES), normalized=False).to_dict()
    x_axis = fashion["layer"][0]["encoding"]["x"]["axis"]
    names = json.loads(x_axis["labelExpr"].removesuffix("[datum.value]"))
    assert names[6] == "Shirt" and names[2] == "Pullover" and len(names) == 10  # index i is named by class i
    assert fashion["layer"][0]["encoding"]["y"]["axis"]["labelExpr"] == x_axis["labelExpr"]
    assert x_axis["labelOverlap"] is False  # otherwise Vega hides every other slanted name
    digits = tuple(str(i) for i in range(10))
    assert class_label_expr(list(digits)) is None
    plain = confusion_matrix_chart(confusion_frame(t, p, digits), normalized=False).to_dict()
    assert "labelExpr" not in plain["layer"][0]["encoding"]["x"]["axis"]


def test_learning_curves_dash_train_so_it_shows_under_the_test_curve():
    history = [EpochResult(e, 0.5, 0.9, 0.5, 0.9, 0.6, 0.8) for e in (1, 2)]  # train and test identical
    loss, accuracy = (c.to_dict() for c in learning_curves_charts(history))
    for spec, metric in ((loss, "loss"), (accuracy, "accuracy")):
        values = spec["datasets"][spec["data"]["name"]] if "data" in spec else max(spec["datasets"].values(), key=len)
        assert {v["metric"] for v in values} == {metric} and len(values) == 2 * 3  # 2 epochs x 3 splits
        assert "width" not in spec  # it fills its column instead of overflowing a narrow window
    enc = loss["encoding"]
    dash = dict(zip(enc["strokeDash"]["scale"]["domain"], enc["strokeDash"]["scale"]["range"]))
    assert set(dash) == {"train", "validation", "test"}
    assert dash["test"] == [1, 0] and dash["train"] != dash["test"] != dash["validation"]  # test solid, others not
    assert enc["color"]["legend"]["symbolType"] == "stroke"  # the legend shows each line's dash


# ---------------------------------------------------------------- issue 14

def history_at(accs: list[float], loss: float = 2.3) -> list[EpochResult]:
    return [EpochResult(e, loss, a, loss, a) for e, a in enumerate(accs, 1)]


def accuracy_layers(chart) -> tuple[dict, list[dict]]:
    spec = chart.to_dict()
    layers = spec.get("layer", [spec])
    return layers[0]["encoding"]["y"]["scale"], layers[1:]


def test_accuracy_axis_shows_chance_and_does_not_zoom_into_noise():
    """Item 4: a run stuck at 10.0-11.0% gets an axis from chance over at least 20 points, with a chance line."""
    _, stuck = learning_curves_charts(history_at([0.100, 0.104, 0.110]))
    scale, extra = accuracy_layers(stuck)
    lo, hi = scale["domain"]
    assert lo <= 0.1 and hi - lo >= 0.2 - 1e-9
    assert any(layer.get("mark", {}).get("type") == "rule" or "layer" in layer for layer in extra)
    assert "0.1" in json.dumps(stuck.to_dict()["datasets"])  # the chance line's value
    _, good = learning_curves_charts(history_at([0.95, 0.97, 0.98]))
    scale, extra = accuracy_layers(good)
    assert scale["domain"][0] > 0.5 and not extra  # a good run keeps its detail: no axis down to 10%


def test_learned_nothing_is_detected_with_causes():
    from engine import PRESETS
    from ui.diagnosis import learned_nothing, loss_is_flat, verdict

    assert learned_nothing(history_at([0.098, 0.101]), 10) and loss_is_flat(history_at([0.098, 0.101]))
    assert not learned_nothing(history_at([0.2, 0.9]), 10)
    assert verdict(history_at([0.5, 0.9]), 10, PRESETS["keras-mlp"].config) is None
    relu_mse = PRESETS["notebook-mse"].config.replace(activation="relu")
    text = verdict(history_at([0.101, 0.101]), 10, relu_mse)
    assert "learned nothing" in text and "stopped moving" in text and "He initialisation" in text
    big = verdict(history_at([0.098]), 10, PRESETS["notebook-mse"].config.replace(learning_rate=50.0))
    assert "very large" in big
    tiny_batch = verdict(history_at([0.096]), 10, PRESETS["notebook-mse"].config.replace(batch_size=1))
    assert "batch of 1" in tiny_batch


def test_run_names_say_what_differs_from_the_preset():
    """Item 8."""
    from engine import PRESETS
    from ui.naming import config_diff, run_label

    keras = PRESETS["keras-mlp"].config
    assert run_label(keras, "keras-mlp") == "keras-mlp"
    assert run_label(keras.replace(dropout=0.3), "keras-mlp") == "keras-mlp · dropout 0.3"
    assert run_label(keras.replace(seed=5, backend="torch"), "keras-mlp") == "keras-mlp"  # the learner's own fields
    assert config_diff(keras.replace(hidden_sizes=(512, 256), train_limit=5000), "keras-mlp") == [
        "hidden 512-256", "subset 5,000"]
    assert run_label(keras.replace(learning_rate=0.002)) == "keras-mlp · lr 0.002"  # no preset: the closest one


def test_compare_plot_keeps_its_height_and_tells_identical_runs_apart():
    """Item 9: the runs' legend is its own chart; the plot's height does not change with the number of runs."""
    from ui.charts import compare_legend, run_labels

    history = history_at([0.8, 0.9])
    two = [SimpleNamespace(id=f"run-{i}", name="#1 keras-mlp", history=history) for i in (1, 2)]
    nine = [SimpleNamespace(id=f"run-{i}", name=f"#{i} keras-mlp · dropout 0.{i}", history=history)
            for i in range(1, 10)]
    small, big = compare_chart(two, "accuracy").to_dict(), compare_chart(nine, "accuracy").to_dict()
    assert small["height"] == big["height"]
    assert small["encoding"]["color"]["legend"] is None
    assert len(set(run_labels(two).values())) == 2  # same name, two labels
    assert compare_legend(nine).to_dict()["height"] > compare_legend(two).to_dict()["height"]
    colors = dict(zip(*(big["encoding"]["color"]["scale"][k] for k in ("domain", "range"))))
    legend = compare_legend(nine).to_dict()["layer"][0]["encoding"]["color"]["scale"]
    assert dict(zip(legend["domain"], legend["range"])) == colors  # the legend's colours are the plot's


def test_confusion_matrix_has_its_own_scale_for_mistakes():
    """Item 11: off-diagonal cells are coloured from 0 to the largest mistake count, not to the diagonal's."""
    t = np.array([9] * 33 + [4] * 980 + [9] * 900)
    p = np.array([4] * 33 + [4] * 980 + [9] * 900)
    spec = confusion_matrix_chart(confusion_frame(t, p, tuple(str(i) for i in range(10))), False).to_dict()
    scales = [layer["encoding"]["color"]["scale"] for layer in spec["layer"][:2]]
    assert scales[0]["scheme"] != scales[1]["scheme"]
    assert scales[1]["domain"] == [0, 33.0]


def test_small_words():
    """Item 13: "images" for non-digit classes; no "?." at the end of an upload error."""
    import io
    import zipfile

    from ui.runs import run_from_zip
    from ui.text import images_word, upload_error

    assert images_word(FASHION_CLASSES) == "images" and images_word(tuple(str(i) for i in range(10))) == "digits"
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    try:
        run_from_zip(empty.getvalue())
    except ValueError as err:
        message = upload_error("run.zip", err)
    assert "from MLP Lab?" in message and "?." not in message and message.endswith("? Your runs are unchanged.")
    assert upload_error("x.zip", ValueError("this file is not a zip archive")) == (
        "x.zip could not be loaded: this file is not a zip archive. Your runs are unchanged.")


def test_runs_table_formats():
    """Item 8: one format per column, '—' where there is nothing yet."""
    from engine import TrainConfig
    from ui.runs import TrainingRun
    from ui.text import runs_table

    done = TrainingRun(TrainConfig(dataset="digits"), history=history_at([0.98, 0.9807]))
    fresh = TrainingRun(TrainConfig(dataset="digits"))
    table = runs_table([done, fresh])
    assert list(table["test acc"]) == ["98.07%", "—"] and list(table["train acc"]) == ["98.07%", "—"]
    assert table.loc[1, "s / epoch"] == "—" and table.loc[0, "epochs"] == "2/30"
