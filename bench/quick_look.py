"""The quick look's feedback time: from Train to the first epoch's result, for a preset in quick look.

    python bench/quick_look.py --preset notebook-mse --repeats 5

Starts the app's own TrainingRun (ui.runs) on the quick look's config (ui.sidebar.quick_look: 10,000 images, at most 3
epochs) and times start() to the first EpochResult in its history: building the model, waiting for a training slot,
one epoch and its evaluation (train, test). The browser adds the Train page's redraw tick (up to 1 s) and drawing the
chart; tests/test_browser_sidebar.py measures the whole way, click to curve. Prints seconds and the machine's load;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import PRESETS, load_dataset  # noqa: E402
from ui.runs import TrainingRun  # noqa: E402
from ui.sidebar import quick_look  # noqa: E402


def first_epoch_seconds(cfg, data) -> float:
    run = TrainingRun(cfg)
    t0 = time.perf_counter()
    run.start(data, threading.BoundedSemaphore(1))
    while not run.history:
        if not run.in_progress:
            raise RuntimeError(run.summary())
        time.sleep(0.005)
    seconds = time.perf_counter() - t0
    run.stop()
    run.join()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="notebook-mse", choices=list(PRESETS))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    cfg = quick_look(PRESETS[args.preset].config)
    data = load_dataset(cfg.dataset)
    first_epoch_seconds(cfg, data)  # warm-up: imports, BLAS, the fast path's choice
    times = [first_epoch_seconds(cfg, data) for _ in range(args.repeats)]
    print(f"{args.preset}, quick look ({cfg.train_limit:,} images, {cfg.epochs} epochs): Train to the first epoch "
          f"{statistics.median(times):.2f} s median of {args.repeats} (min {min(times):.2f}, max {max(times):.2f}); "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
