"""What the pages draw: digit mosaics whose captions stay under their own image."""

import numpy as np
from PIL import ImageFont

from engine.data import FASHION_CLASSES
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

