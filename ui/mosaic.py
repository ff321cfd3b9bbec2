"""Image grids: many small digits as one crisp Pillow mosaic, with a caption under each."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WRONG = (214, 39, 40)
RIGHT = (60, 60, 60)
LINE_H = 15  # caption line height at font size 13


def caption_lines(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """A caption as lines that fit `width` pixels: "Shirt (is Pullover)" breaks before the bracket,
    and a line still too wide (a long class name) is cut with an ellipsis."""
    if font.getlength(text) <= width:
        return [text]
    head, sep, tail = text.partition(" (")
    lines = [head, "(" + tail] if sep else [text]
    return [_cut(line, font, width) for line in lines]


def _cut(line: str, font: ImageFont.ImageFont, width: int) -> str:
    if font.getlength(line) <= width:
        return line
    closing = ")" if line.endswith(")") else ""
    body = line[:-1] if closing else line
    while body and font.getlength(body + "…" + closing) > width:
        body = body[:-1]
    return body + "…" + closing


def mosaic(pixels: np.ndarray, image_shape: tuple[int, int], captions: list[str] | None = None,
           wrong: np.ndarray | None = None, cols: int = 5, cell: int = 84) -> Image.Image:
    """Digits (n, h*w uint8) in a grid; each scaled to `cell` pixels with nearest-neighbour, red frame if wrong.

    Each caption stays under its own image: wrapped to two lines, or shortened, where it is wider.
    """
    n = len(pixels)
    rows = max(1, -(-n // cols))
    font = ImageFont.load_default(size=13)
    pad = 4
    lines = [caption_lines(c, font, cell + pad - 2) for c in captions] if captions else None
    caption_h = LINE_H * max(len(ls) for ls in lines) + 3 if lines else 0
    width, height = cols * (cell + pad) + pad, rows * (cell + caption_h + pad) + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    h, w = image_shape
    for i in range(n):
        r, c = divmod(i, cols)
        x0, y0 = pad + c * (cell + pad), pad + r * (cell + caption_h + pad)
        digit = Image.fromarray(255 - pixels[i].reshape(h, w), mode="L")  # ink dark on paper
        sheet.paste(digit.resize((cell, cell), Image.Resampling.NEAREST), (x0, y0))
        is_wrong = wrong is not None and bool(wrong[i])
        if is_wrong:
            draw.rectangle([x0 - 2, y0 - 2, x0 + cell + 1, y0 + cell + 1], outline=WRONG, width=3)
        for k, line in enumerate(lines[i] if lines else []):
            draw.text((x0 + 1, y0 + cell + 2 + k * LINE_H), line, fill=WRONG if is_wrong else RIGHT, font=font)
    return sheet
