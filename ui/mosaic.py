"""Image grids: many small digits as one crisp Pillow mosaic, with a caption under each."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WRONG = (214, 39, 40)
RIGHT = (60, 60, 60)


def mosaic(pixels: np.ndarray, image_shape: tuple[int, int], captions: list[str] | None = None,
           wrong: np.ndarray | None = None, cols: int = 5, cell: int = 84) -> Image.Image:
    """Digits (n, h*w uint8) in a grid; each scaled to `cell` pixels with nearest-neighbour, red frame if wrong."""
    n = len(pixels)
    rows = max(1, -(-n // cols))
    caption_h = 18 if captions else 0
    pad = 4
    width, height = cols * (cell + pad) + pad, rows * (cell + caption_h + pad) + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=13)
    h, w = image_shape
    for i in range(n):
        r, c = divmod(i, cols)
        x0, y0 = pad + c * (cell + pad), pad + r * (cell + caption_h + pad)
        digit = Image.fromarray(255 - pixels[i].reshape(h, w), mode="L")  # ink dark on paper
        sheet.paste(digit.resize((cell, cell), Image.Resampling.NEAREST), (x0, y0))
        is_wrong = wrong is not None and bool(wrong[i])
        if is_wrong:
            draw.rectangle([x0 - 2, y0 - 2, x0 + cell + 1, y0 + cell + 1], outline=WRONG, width=3)
        if captions:
            draw.text((x0 + 2, y0 + cell + 2), captions[i], fill=WRONG if is_wrong else RIGHT, font=font)
    return sheet
