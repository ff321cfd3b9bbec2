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
    runs = [SimpleNamespace(name=f"run-{i}", history=history) for i in (1, 2)]
    spec = compare_chart(runs, "accuracy").to_dict()
    enc = spec["encoding"]
    # A dash alone draws the split legend as two identical dots: the points' shape must differ too.
    assert enc["strokeDash"]["field"] == enc["shape"]["field"] == "split"
    assert enc["color"]["field"] == "run" and enc["color"]["scale"]["scheme"] == "tableau10"
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
        values = spec["datasets"][spec["data"]["name"]]
        assert {v["metric"] for v in values} == {metric} and len(values) == 2 * 3  # 2 epochs x 3 splits
        assert "width" not in spec  # it fills its column instead of overflowing a narrow window
    enc = loss["encoding"]
    dash = dict(zip(enc["strokeDash"]["scale"]["domain"], enc["strokeDash"]["scale"]["range"]))
    assert set(dash) == {"train", "validation", "test"}
    assert dash["test"] == [1, 0] and dash["train"] != dash["test"] != dash["validation"]  # test solid, others not
    assert enc["color"]["legend"]["symbolType"] == "stroke"  # the legend shows each line's dash
