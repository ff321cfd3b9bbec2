"""What the Inside page costs: recording per epoch, and opening the page.

    python bench/inside.py --preset keras-mlp --epochs 2

Recording: for each epoch of a real training run, the time of what issue 16 added to it, measured on the
epoch's own model: the layer statistics on the probe batch (layer_stats), the confusion matrix (the test
pass with it minus MLP.evaluate without it), keeping the update ratio's weights (linear_weights) and adding
the snapshot (Snapshots.add of get_weights). Printed as a share of the epoch's seconds (medians of 5).
Opening: the Inside page through AppTest for a finished run of the preset (trained on --open-subset images:
what the page computes does not depend on it), first open (the run's network is built, the dataset's test
images are scaled, the nearest training images searched) and a rerun, in wall and CPU seconds. Prints ratios and
times, asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import PRESETS, load_dataset, train  # noqa: E402
from engine.snapshots import Snapshots  # noqa: E402
from engine.train import PROBE_ROWS, evaluate_with_confusion, layer_stats, linear_weights, make_splits  # noqa: E402


def median_seconds(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def recording(preset: str, epochs: int, backend: str) -> None:
    cfg = PRESETS[preset].config.replace(epochs=epochs, backend=backend)
    data = load_dataset(cfg.dataset)
    splits = make_splits(cfg, data)
    from engine import build_model

    model = build_model(cfg, data.n_features, data.n_classes)
    before = linear_weights(model)
    store = Snapshots()
    print(f"{preset} ({backend}): what recording adds to an epoch")
    print(f"{'epoch':>5} {'epoch s':>8} {'stats s':>8} {'confusion s':>12} {'snapshot s':>11} {'added':>7}")
    probe = splits.x_test[:PROBE_ROWS]
    for r in train(cfg, data, model=model):
        stats = median_seconds(lambda before=before: layer_stats(model, probe, before))
        with_cm = median_seconds(lambda: evaluate_with_confusion(model, splits.x_test, splits.y_test))
        without = median_seconds(lambda: model.evaluate(splits.x_test, splits.y_test))
        snapshot = median_seconds(lambda e=r.epoch: (linear_weights(model), store.add(e, model.get_weights())))
        confusion = max(with_cm - without, 0.0)
        added = (stats + confusion + snapshot) / r.seconds
        print(f"{r.epoch:>5} {r.seconds:>8.3f} {stats:>8.4f} {confusion:>12.4f} {snapshot:>11.4f} {added:>7.1%}")
        before = linear_weights(model)


def page_open(preset: str, subset: int, repeats: int) -> None:
    from streamlit.testing.v1 import AppTest

    from ui.runs import TrainingRun

    cfg = PRESETS[preset].config.replace(train_limit=subset)
    data = load_dataset(cfg.dataset)
    firsts, reruns = [], []
    for _ in range(repeats):
        run = TrainingRun(cfg)  # a new run each time: nothing of it is cached yet
        run.start(data, threading.BoundedSemaphore(1))
        run.join()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["follow_seconds"] = 0
        at.session_state["runs"] = [run]
        at.run()
        at.switch_page("pages/results.py").run()  # the dataset loaded, as when a learner comes from Results
        t0, c0 = time.perf_counter(), time.process_time()
        at.switch_page("pages/inside.py").run()
        firsts.append((time.perf_counter() - t0, time.process_time() - c0))
        t0, c0 = time.perf_counter(), time.process_time()
        at.run()
        reruns.append((time.perf_counter() - t0, time.process_time() - c0))
        assert not at.exception, at.exception

    def text(times: list[tuple[float, float]]) -> str:
        wall, cpu = zip(*times)
        return (f"{statistics.median(wall):.2f} s wall, {statistics.median(cpu):.2f} s CPU "
                f"(wall: {', '.join(f'{s:.2f}' for s in wall)})")

    print(f"Inside page, finished {preset} run ({cfg.epochs} epochs, {len(run.snapshots.epochs)} snapshots): "
          f"opens in {text(firsts)}; reruns in {text(reruns)}")
    print("CPU: the process's CPU seconds, a busy machine's waiting for a core left out (its BLAS may use more "
          "than one core, so CPU can exceed wall on an idle machine)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="keras-mlp")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the recording measurement")
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--open-subset", type=int, default=2000)
    parser.add_argument("--open-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    recording(args.preset, args.epochs, args.backend)
    page_open(args.preset, args.open_subset, args.open_repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
