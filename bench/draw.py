"""What MNIST-style preprocessing gains on digits drawn the way learners draw them.

    python bench/draw.py                      # keras-mlp 3 epochs, notebook-mse 10 epochs (shortened)
    python bench/draw.py --full               # the presets' own epochs (10 and 30)

Makes a labelled set of hand-drawn-like digits with Pillow: each digit in several fonts (DejaVu's when
installed, and Pillow's built-in font), stroke widths, sizes from too small to too large, off-centre,
slightly rotated, on light paper or dark, on a 280x280 canvas like the Draw page's. Trains each preset
and prints its accuracy on the set fed three ways: squashed whole to 28x28 as the grey levels are,
squashed after turning it into ink (inverted where the paper is light), and through MNIST's recipe
(engine/preprocess.py: cropped, 20 px box, centre of mass). Accuracies, not assertions.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import PRESETS, build_model, load_dataset, train  # noqa: E402
from engine.preprocess import preprocess, squash  # noqa: E402

CANVAS = 280
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
DEJAVU = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf",
          "DejaVuSans-Oblique.ttf", "DejaVuSansCondensed.ttf", "DejaVuSerif-Bold.ttf")
SHORT_EPOCHS = {"keras-mlp": 3, "notebook-mse": 10}
# font size as a share of the canvas (a digit is about 0.7 of its font size): "too large" touches the edges
SIZES = {"small": 0.2, "medium": 0.6, "large": 1.0, "too large": 1.35}


@functools.cache
def fonts(size: int) -> list[ImageFont.FreeTypeFont]:
    """DejaVu's faces that are installed, and Pillow's built-in font, at `size` pixels."""
    found = [ImageFont.truetype(str(FONT_DIR / name), size) for name in DEJAVU if (FONT_DIR / name).exists()]
    return [*found, ImageFont.load_default(size=size)]


def draw_digit(digit: int, font_index: int, size_name: str, stroke: int, rng: np.random.Generator,
               dark_paper: bool) -> np.ndarray:
    """One (CANVAS, CANVAS, 3) uint8 picture of `digit`, placed off-centre, rotated a little, blurred a little."""
    height = int(SIZES[size_name] * CANVAS)
    font = fonts(height)[font_index]
    paper = int(rng.integers(20, 60)) if dark_paper else int(rng.integers(200, 256))
    ink = int(rng.integers(200, 256)) if dark_paper else int(rng.integers(0, 70))
    glyph = Image.new("L", (2 * CANVAS, 2 * CANVAS), 0)
    ImageDraw.Draw(glyph).text((CANVAS, CANVAS), str(digit), fill=255, font=font, anchor="mm", stroke_width=stroke,
                               stroke_fill=255)
    glyph = glyph.rotate(float(rng.uniform(-12, 12)), resample=Image.Resampling.BILINEAR)
    box = glyph.getbbox()
    glyph = glyph.crop(box)
    w, h = glyph.size
    room_x, room_y = CANVAS - w, CANVAS - h  # negative when too large: the digit is cut at the edges
    left = int(rng.integers(min(0, room_x), max(0, room_x) + 1))
    top = int(rng.integers(min(0, room_y), max(0, room_y) + 1))
    alpha = Image.new("L", (CANVAS, CANVAS), 0)
    alpha.paste(glyph, (left, top))
    alpha = alpha.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.5))))
    a = np.asarray(alpha, dtype=np.float64) / 255
    picture = paper * (1 - a) + ink * a
    return np.repeat(np.rint(picture).astype(np.uint8)[..., None], 3, axis=2)


def digit_set(seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """The pictures, their labels, and what each tests (its size), for every digit, font, size and stroke."""
    rng = np.random.default_rng(seed)
    pictures, labels, kinds = [], [], []
    n_fonts = len(fonts(20))
    for digit in range(10):
        for font_index in range(n_fonts):
            for size_name in SIZES:
                for stroke in (0, 3, 8):
                    dark = bool(rng.random() < 0.2)
                    pictures.append(draw_digit(digit, font_index, size_name, stroke, rng, dark))
                    labels.append(digit)
                    kinds.append(size_name)
    return pictures, np.array(labels), kinds


def accuracy(model, rows: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(model.predict_proba(rows).argmax(axis=1) == labels))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="train the presets for their own epochs")
    parser.add_argument("--presets", default="keras-mlp,notebook-mse")
    parser.add_argument("--seed", type=int, default=0, help="the digit set's seed (training keeps the presets')")
    parser.add_argument("--save", metavar="PNG", help="also save a sheet of some of the digits drawn")
    args = parser.parse_args(argv)
    pictures, labels, kinds = digit_set(args.seed)
    ways = {
        "squashed as drawn": np.array([squash(p) for p in pictures]),
        "squashed, as ink": np.array([squash(p, ink=True) for p in pictures]),
        "MNIST's recipe": np.array([preprocess(p).pixels for p in pictures]),
    }
    if args.save:
        shown = np.sort(np.random.default_rng(args.seed).choice(len(pictures), 40, replace=False))
        sheet = Image.new("L", (10 * 70, 4 * 70), 255)
        for i, p in enumerate(pictures[j] for j in shown):
            sheet.paste(Image.fromarray(p).convert("L").resize((70, 70)), (70 * (i % 10), 70 * (i // 10)))
        sheet.save(args.save)
    print(f"{len(labels)} drawn digits: {len(fonts(20))} fonts x {len(SIZES)} sizes ({', '.join(SIZES)}) x 3 stroke "
          f"widths x 10 digits, off-centre, rotated up to 12 degrees, a fifth on dark paper.\n")
    data = load_dataset("mnist")
    print("| preset | epochs | MNIST test | " + " | ".join(ways) + " |")
    print("|---|---|---|" + "---|" * len(ways))
    for name in args.presets.split(","):
        cfg = PRESETS[name].config
        if not args.full:
            cfg = cfg.replace(epochs=SHORT_EPOCHS.get(name, cfg.epochs))
        model = build_model(cfg, data.n_features, data.n_classes)
        t0 = time.perf_counter()
        history = list(train(cfg, data, model=model))
        scores = [accuracy(model, rows, labels) for rows in ways.values()]
        print(f"| {name} | {cfg.epochs} | {history[-1].test_acc:.2%} | " + " | ".join(f"{s:.1%}" for s in scores)
              + f" |   ({time.perf_counter() - t0:.0f} s)", flush=True)
        recipe = ways["MNIST's recipe"]
        by_size = ", ".join(f"{k} {accuracy(model, recipe[np.array(kinds) == k], labels[np.array(kinds) == k]):.0%}"
                            for k in SIZES)
        print(f"|   | MNIST's recipe by size: {by_size} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
