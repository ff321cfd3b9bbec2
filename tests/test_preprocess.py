"""MNIST-style preprocessing, step by step, against references computed another way (Pillow, SciPy, MNIST itself)."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from engine.preprocess import (
    MAX_PIXELS,
    ImageError,
    center_of_mass,
    crop_to_ink,
    decode_image,
    digits_bitmap,
    fit_in_box,
    place_by_mass,
    preprocess,
    squash,
    to_grayscale,
    to_ink,
)


def png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def paper_with_bar(top=30, left=50, h=60, w=12, size=(140, 120), paper=255, ink=0) -> np.ndarray:
    """A uint8 (H, W) picture: one dark bar on light paper."""
    a = np.full(size, paper, dtype=np.uint8)
    a[top:top + h, left:left + w] = ink
    return a


def test_grayscale_is_pillows_luminance_and_transparency_is_paper():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    reference = np.asarray(Image.fromarray(rgb).convert("L"), dtype=float)  # Pillow rounds to integers
    assert np.abs(to_grayscale(rgb) - reference).max() <= 0.51
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # black but fully transparent: white paper
    rgba[0, 0] = (0, 0, 0, 255)
    gray = to_grayscale(rgba)
    assert gray[0, 0] == 0 and np.all(gray.ravel()[1:] == 255)


def test_ink_is_inverted_on_light_paper_and_not_on_dark():
    light = paper_with_bar().astype(float)
    ink = to_ink(light)
    assert ink[40, 55] == 1 and ink[0, 0] == 0
    dark = 255 - light
    assert np.array_equal(to_ink(dark), ink)
    grey_paper = paper_with_bar(paper=200, ink=80).astype(float)  # grey on grey: the strongest ink is 1
    assert np.array_equal(to_ink(grey_paper), ink)


def test_crop_keeps_exactly_the_inked_rectangle():
    ink = to_ink(paper_with_bar(top=30, left=50, h=60, w=12).astype(float))
    assert crop_to_ink(ink).shape == (60, 12)


def test_fit_in_box_scales_the_longest_side_to_20_keeping_the_aspect():
    assert fit_in_box(np.ones((60, 12))).shape == (20, 4)
    assert fit_in_box(np.ones((9, 45))).shape == (4, 20)
    small = fit_in_box(np.ones((5, 5)))  # too small: scaled up
    assert small.shape == (20, 20) and small.min() > 0.99 and small.max() <= 1


def test_placing_by_mass_puts_the_centre_of_mass_at_mnists():
    """MNIST's own digits have their centre of mass at (14, 14) on average; ours land within half a pixel."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        blob = rng.random((rng.integers(5, 21), rng.integers(5, 21))) ** 3
        field = place_by_mass(blob)
        assert field.shape == (28, 28) and np.isclose(field.sum(), blob.sum())
        cy, cx = ndimage.center_of_mass(field)  # SciPy's, not ours
        assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5
    assert np.allclose(center_of_mass(blob), ndimage.center_of_mass(blob))


def test_mnist_centres_are_at_14(mnist):
    x = mnist.x_train[:2000].reshape(-1, 28, 28).astype(float)
    centres = np.array([ndimage.center_of_mass(a) for a in x])
    assert np.allclose(centres.mean(axis=0), 14, atol=0.1)


def test_an_mnist_digit_drawn_big_off_centre_on_white_comes_back_as_itself(mnist):
    """Undo MNIST's making: enlarge a test digit 6x, dark on white paper, off-centre; preprocess -> the same digit,
    give or take the one-pixel shift that rounding the centre of mass can make."""
    for i in range(10):
        digit = mnist.x_test[i].reshape(28, 28).astype(float)
        big = np.asarray(Image.fromarray(digit.astype(np.uint8)).resize((168, 168), Image.Resampling.BICUBIC))
        paper = np.full((300, 260), 255, dtype=np.uint8)
        paper[20:188, 70:238] = 255 - big
        out = preprocess(paper).pixels.reshape(28, 28).astype(float)
        best = max(np.corrcoef(np.roll(out, (dy, dx), (0, 1)).ravel(), digit.ravel())[0, 1]
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        assert best > 0.9


def test_preprocess_rgba_canvas_to_28x28_row():
    canvas = np.zeros((280, 280, 4), dtype=np.uint8)
    canvas[..., :3], canvas[..., 3] = 255, 255
    canvas[40:240, 120:150, :3] = 0  # a thick "1"
    p = preprocess(canvas)
    assert p.pixels.shape == (784,) and p.pixels.dtype == np.uint8 and p.image_shape == (28, 28)
    img = p.pixels.reshape(28, 28)
    rows = np.flatnonzero(img.any(axis=1))
    assert rows[-1] - rows[0] + 1 in (20, 21)  # 20 px tall, maybe one row of anti-aliasing
    assert img.max() == 255


def test_digits_preprocessing_gives_sklearns_0_to_16_grid_as_stored(digits):
    """An 8x8 digit from scikit-learn, enlarged on white paper, comes back close to itself (stored as 0..255)."""
    matches = []
    for i in range(20):
        d = digits.x_test[i].reshape(8, 8)
        big = np.kron(d, np.ones((16, 16)))  # 128x128, blocks
        paper = np.full((160, 160), 255.0)
        paper[16:144, 16:144] = 255 - big
        out = preprocess(paper.astype(np.uint8), "digits")
        assert out.pixels.shape == (64,) and out.image_shape == (8, 8)
        assert set(np.unique(out.pixels)) <= set(np.rint(np.arange(17) * 255 / 16).astype(int))
        matches.append(np.corrcoef(out.pixels.astype(float), d.ravel().astype(float))[0, 1])
    assert np.median(matches) > 0.8


def test_digits_bitmap_counts_blocks():
    assert np.array_equal(digits_bitmap(np.ones((32, 32))), np.full((8, 8), 16))
    half = digits_bitmap(np.ones((32, 16)))  # fitted to 32 tall, 16 wide, centred: columns 8..23
    assert np.array_equal(half[:, 2:6], np.full((8, 4), 16)) and half[:, :2].sum() == 0


def test_decode_png_and_jpeg():
    img = Image.fromarray(paper_with_bar())
    assert decode_image(png_bytes(img)).shape == (140, 120, 4)
    assert decode_image(png_bytes(img.convert("RGB"), "JPEG")).shape == (140, 120, 4)


@pytest.mark.parametrize("raw, message", [
    (b"", "empty"),
    (b"hello, not a picture", "not an image"),
    (png_bytes(Image.new("RGB", (4, 4)), "GIF"), "upload a PNG or a JPEG"),
    (png_bytes(Image.new("L", (64, 64)))[:60], "damaged"),
])
def test_bad_files_are_clear_errors(raw, message):
    with pytest.raises(ImageError, match=message):
        decode_image(raw)


@pytest.mark.parametrize("side, message", [(5000, "million pixels"), (60000, "too large to decode")])
def test_a_decompression_bomb_is_refused_before_decoding(side, message):
    """A few hundred bytes of PNG claiming side x side pixels: refused from the header (ours, or Pillow's own cap)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
    raw = b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    assert side * side > MAX_PIXELS
    with pytest.raises(ImageError, match=message):
        decode_image(raw)


def test_an_empty_canvas_is_a_clear_error():
    with pytest.raises(ImageError, match="no digit"):
        preprocess(np.full((280, 280, 4), 255, dtype=np.uint8))


def test_squash_keeps_the_whole_picture_and_only_inverts_when_asked():
    paper = paper_with_bar(top=10, left=10, h=120, w=50, size=(140, 120))  # a bar on the left, on white paper
    raw = squash(paper).reshape(28, 28)
    assert raw[6:22, 4:10].max() < 10 and raw[:, 18:].min() > 245  # dark ink, white paper, squashed to 28x28
    ink = squash(paper, ink=True).reshape(28, 28)
    assert ink[6:22, 4:10].min() > 245 and ink[:, 18:].max() < 10
    assert squash(paper, "digits").shape == (64,)
