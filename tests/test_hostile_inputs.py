"""Hostile or clumsy input outside the app's pages: IDX files with lying headers, the CLI's --save destination."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data import parse_idx

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ("train", "--dataset", "digits", "--hidden", "8", "--epochs", "50", "--train-limit", "1000")


def idx(dims: tuple[int, ...], payload: bytes, dtype: int = 0x08) -> bytes:
    return bytes([0, 0, dtype, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims) + payload


@settings(max_examples=500, deadline=None)
@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3),
       payload=st.binary(max_size=256), magic=st.sampled_from([0x08, 0x08, 0x09, 0x0D]))
def test_a_lying_idx_header_is_a_value_error_never_a_big_allocation(dims, payload, magic):
    raw = idx(tuple(dims), payload, magic)
    try:
        a = parse_idx(raw)
    except ValueError as err:
        assert "IDX data" in str(err)
        return
    assert a.nbytes == len(payload) and a.shape == tuple(dims)  # only a header that tells the truth is read


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=64))
def test_any_bytes_are_an_array_or_a_value_error(raw):
    try:
        a = parse_idx(raw)
    except ValueError:
        return
    assert a.nbytes <= len(raw)


def test_dimensions_whose_product_overflows_64_bits_are_refused():
    """2^31 x 2^31 x 4 is 2^64 bytes, 0 in int64: the header must not pass for an empty file."""
    with pytest.raises(ValueError, match="need"):
        parse_idx(idx((2**31, 2**31, 4), b""))


def test_a_true_header_parses():
    a = parse_idx(idx((2, 3), bytes(range(6))))
    np.testing.assert_array_equal(a, np.arange(6, dtype=np.uint8).reshape(2, 3))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_save_to_a_missing_folder_fails_before_training(tmp_path):
    out = cli(*TRAIN, "--save", str(tmp_path / "missing" / "x"))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"the folder {tmp_path / 'missing'} does not exist" in out.stderr
    assert "epoch" not in out.stdout.lower()  # not one epoch was trained


def test_save_to_a_folder_is_refused(tmp_path):
    out = cli(*TRAIN, "--save", str(tmp_path))
    assert out.returncode == 2 and "that is a folder" in out.stderr
    assert not tmp_path.with_name(tmp_path.name + ".npz").exists()


def _image_bytes(fmt: str, size: tuple[int, int]) -> bytes:
    import io

    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).line([(2, 2), (size[0] - 3, size[1] - 3)], fill="black", width=2)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _width_height_offset(raw: bytes) -> int | None:
    """Where a PNG's IHDR width and height are (bytes 16-24); a JPEG's are harder to find: None."""
    return 16 if raw[:8] == b"\x89PNG\r\n\x1a\n" else None


@settings(max_examples=300, deadline=None)
@given(fmt=st.sampled_from(["PNG", "JPEG", "GIF", "BMP"]), size=st.tuples(st.integers(8, 64), st.integers(8, 64)),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
       cut=st.one_of(st.none(), st.integers(0, 10_000)),
       dims=st.one_of(st.none(), st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))),
       dataset=st.sampled_from(["mnist", "digits"]))
def test_any_uploaded_image_is_a_digit_or_a_sentence(fmt, size, flips, cut, dims, dataset):
    """Uploads on the Draw page: formats other than PNG and JPEG, flipped bytes, truncated files, and PNG headers
    declaring any width and height (decompression bombs) end as the network's input or an ImageError with a
    sentence; never another exception, never more pixels decoded than MAX_PIXELS."""
    from engine.preprocess import MAX_PIXELS, ImageError, decode_image, preprocess

    raw = bytearray(_image_bytes(fmt, size))
    at = _width_height_offset(bytes(raw))
    if dims is not None and at is not None:
        raw[at:at + 8] = dims[0].to_bytes(4, "big") + dims[1].to_bytes(4, "big")
    for where, value in flips:
        if where < len(raw):
            raw[where] = value
    if cut is not None:
        raw = raw[:cut]
    try:
        pixels = decode_image(bytes(raw))
        digit = preprocess(pixels, dataset)
    except ImageError as err:
        assert str(err).endswith(".") and "Traceback" not in str(err)
        return
    assert pixels.ndim == 3 and pixels.shape[2] == 4 and pixels.shape[0] * pixels.shape[1] <= MAX_PIXELS
    assert digit.pixels.dtype == np.uint8 and digit.pixels.shape == ((784,) if dataset == "mnist" else (64,))
