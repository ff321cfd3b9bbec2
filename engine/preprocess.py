"""A drawn or photographed digit made into the network's input the way MNIST's digits were made.

MNIST's recipe (LeCun et al.): the ink, anti-aliased into a 20x20 box keeping its aspect ratio, then
placed in a 28x28 field so that its centre of mass sits at the field's centre. scikit-learn's 8x8
`digits` were made another way: a 32x32 black-and-white bitmap cut into 4x4 blocks, each block's
count of ink pixels (0..16) being one pixel. Each step is a function here; `preprocess` runs them.
NumPy and Pillow only.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_UPLOAD_BYTES = 5_000_000  # an upload larger than this is refused unread
MAX_PIXELS = 16_000_000  # width x height checked from the header, before anything is decoded
FORMATS = ("PNG", "JPEG")
INK_THRESHOLD = 0.1  # on the 0..1 ink scale: fainter than this is paper (noise, JPEG artefacts)
MNIST_BOX, MNIST_SIZE = 20, 28
DIGITS_BITMAP, DIGITS_BLOCK = 32, 4  # digits: a 32x32 bitmap summed in 4x4 blocks -> 8x8 of 0..16


class ImageError(ValueError):
    """An image that cannot become a digit, with a sentence the learner can act on."""


def decode_image(raw: bytes) -> np.ndarray:
    """PNG or JPEG bytes -> (h, w, 4) uint8 RGBA; sizes are checked before the pixels are decoded."""
    if not raw:
        raise ImageError("The file is empty.")
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ImageError(f"The file is {len(raw) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))  # reads the header only
            _check_header(img)
            return np.asarray(img.convert("RGBA"))
    except ImageError:
        raise
    except UnidentifiedImageError as err:
        raise ImageError("This file is not an image Pillow can read; upload a PNG or a JPEG.") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError("The image is too large to decode safely; scale it down and upload it again.") from err
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data behind a valid header
        raise ImageError("The image is damaged or truncated; save it again as a PNG or a JPEG.") from err


def _check_header(img: Image.Image) -> None:
    if img.format not in FORMATS:
        raise ImageError(f"This is a {img.format} image; upload a PNG or a JPEG.")
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise ImageError(f"The image is {w} x {h} pixels; the limit is {MAX_PIXELS / 1e6:.0f} million pixels. "
                         "Scale it down and upload it again.")


def to_grayscale(pixels: np.ndarray) -> np.ndarray:
    """(h, w), (h, w, 3) or (h, w, 4) uint8 -> (h, w) float64 luminance 0..255; transparency shows white paper.

    Luminance as ITU-R 601-2 (Pillow's "L"): 0.299 R + 0.587 G + 0.114 B.
    """
    a = np.asarray(pixels, dtype=np.float64)
    if a.ndim == 2:
        return a
    gray = a[..., :3] @ np.array([0.299, 0.587, 0.114])
    if a.shape[-1] == 4:
        alpha = a[..., 3] / 255
        gray = alpha * gray + (1 - alpha) * 255
    return gray


def to_ink(gray: np.ndarray) -> np.ndarray:
    """(h, w) luminance 0..255 -> (h, w) ink in [0, 1], 0 for the paper: inverted when the paper is light.

    The paper's shade is the median of the border pixels; ink is how far a pixel is from it, scaled
    so that the strongest ink is 1 (grey paper or a grey pen then look like MNIST's black and white).
    """
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    paper = float(np.median(border))
    ink = paper - gray if paper > 127.5 else gray - paper
    peak = ink.max()
    if peak <= 255 * INK_THRESHOLD:
        raise ImageError("There is no digit in this image: draw one (or upload a picture with a digit in it).")
    return np.clip(ink / peak, 0, 1)


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """(h, w) ink -> the smallest rectangle holding every pixel above INK_THRESHOLD."""
    rows, cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1)), np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    if not len(rows):
        raise ImageError("There is no digit in this image: draw one (or upload a picture with a digit in it).")
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def fit_in_box(ink: np.ndarray, box: int = MNIST_BOX) -> np.ndarray:
    """(h, w) ink -> its longest side scaled to `box` pixels, aspect kept, anti-aliased (Lanczos, clipped to [0, 1])."""
    h, w = ink.shape
    scale = box / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow: (width, height)
    resized = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float64), 0, 1)


def center_of_mass(ink: np.ndarray) -> tuple[float, float]:
    """(row, column) of the ink's centre of mass, in pixel indices."""
    rows, cols = np.indices(ink.shape)
    total = ink.sum()
    return float((rows * ink).sum() / total), float((cols * ink).sum() / total)


def place_by_mass(ink: np.ndarray, size: int = MNIST_SIZE) -> np.ndarray:
    """(h, w) ink, h and w <= size -> (size, size) with the ink's centre of mass moved to (size/2, size/2).

    MNIST's training digits have theirs at (14.0, 14.0) on average; the shift is whole pixels, as
    MNIST's was, and keeps the ink inside the field.
    """
    h, w = ink.shape
    cy, cx = center_of_mass(ink)
    top = int(np.clip(round(size / 2 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - cx), 0, size - w))
    field = np.zeros((size, size))
    field[top:top + h, left:left + w] = ink
    return field


def digits_bitmap(ink: np.ndarray) -> np.ndarray:
    """(h, w) cropped ink -> (8, 8) 0..16: fitted to 32x32 centred, made black-and-white, counted in 4x4 blocks."""
    box = fit_in_box(ink, DIGITS_BITMAP) > 0.5
    h, w = box.shape
    bitmap = np.zeros((DIGITS_BITMAP, DIGITS_BITMAP), dtype=np.int64)
    top, left = (DIGITS_BITMAP - h) // 2, (DIGITS_BITMAP - w) // 2
    bitmap[top:top + h, left:left + w] = box
    n = DIGITS_BITMAP // DIGITS_BLOCK
    return bitmap.reshape(n, DIGITS_BLOCK, n, DIGITS_BLOCK).sum(axis=(1, 3))


def to_uint8(ink: np.ndarray, full_scale: float = 1.0) -> np.ndarray:
    """Ink in [0, full_scale] -> uint8 0..255 pixels, as the datasets store them."""
    return np.rint(np.clip(ink / full_scale, 0, 1) * 255).astype(np.uint8)


@dataclass(frozen=True)
class Preprocessed:
    """Every step's picture, and `pixels`: the uint8 row (h*w,) the network takes, like a dataset's row."""

    gray: np.ndarray  # (H, W) luminance 0..255 of the picture as given
    ink: np.ndarray  # (H, W) ink in [0, 1]
    cropped: np.ndarray  # (h, w) ink cut to its bounding box
    pixels: np.ndarray  # (784,) or (64,) uint8
    image_shape: tuple[int, int]


def preprocess(picture: np.ndarray, dataset: str = "mnist") -> Preprocessed:
    """An (H, W[, 3|4]) uint8 picture of a digit -> the network's input for `dataset` (MNIST's recipe or digits')."""
    gray = to_grayscale(picture)
    ink = to_ink(gray)
    cropped = crop_to_ink(ink)
    if dataset == "digits":
        return Preprocessed(gray, ink, cropped, to_uint8(digits_bitmap(cropped), 16).reshape(-1), (8, 8))
    field = place_by_mass(fit_in_box(cropped))
    return Preprocessed(gray, ink, cropped, to_uint8(field).reshape(-1), (MNIST_SIZE, MNIST_SIZE))


def squash(picture: np.ndarray, dataset: str = "mnist", ink: bool = False) -> np.ndarray:
    """The picture without MNIST's recipe, squashed whole to the dataset's size -> uint8 row.

    `ink`: turned into ink first (inverted where the paper is light, as `to_ink`); else the grey levels as they are.
    """
    side = 8 if dataset == "digits" else MNIST_SIZE
    gray = to_grayscale(picture)
    levels = to_ink(gray) if ink else gray / 255
    small = Image.fromarray(levels.astype(np.float32)).resize((side, side), Image.Resampling.LANCZOS)
    return to_uint8(np.asarray(small)).reshape(-1)
