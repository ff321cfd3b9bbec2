"""The overfitting presets (overfit-mnist and its dropout, L2, batch-norm and early-stopping variants), each over a
few seeds, as the README's table: best validation accuracy, final test accuracy, the epoch early stopping chose
(for the others: the epoch of the lowest validation loss, the one it would choose), and the train-test gaps.

    python bench/overfit.py                           # every variant, seeds 0 1 2
    python bench/overfit.py --variants overfit-mnist,overfit-mnist-early --seeds 0 --epochs 10
    python bench/overfit.py --json runs.json          # also each run's numbers

"Final" is the model a run ends with: its last epoch, or the epoch early stopping kept. Gaps are train minus test
accuracy (points) and test minus train loss, at that epoch. Each row is the median over the seeds, with the range.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import PRESETS, load_dataset, train  # noqa: E402
from engine.config import OVERFIT_VARIANTS  # noqa: E402

COLUMNS = ("best val acc", "final test acc", "epoch kept", "train-test acc gap", "test-train loss gap")


def run_once(name: str, seed: int, epochs: int | None) -> dict:
    """One training of preset `name` with `seed`: the numbers of the table's row, and its seconds."""
    cfg = PRESETS[name].config.replace(seed=seed)
    if epochs is not None:
        cfg = cfg.replace(epochs=epochs)
    started = time.perf_counter()
    history = list(train(cfg, load_dataset(cfg.dataset)))
    kept = history[-1].kept_epoch
    final = history[kept - 1] if kept is not None else history[-1]
    best_val = min(history, key=lambda r: r.val_loss)
    return {"variant": name, "seed": seed, "epochs_run": len(history), "seconds": time.perf_counter() - started,
            "best val acc": max(r.val_acc for r in history), "final test acc": final.test_acc,
            "epoch kept": kept if kept is not None else best_val.epoch, "stopped early": kept is not None,
            "train-test acc gap": final.train_acc - final.test_acc,
            "test-train loss gap": final.test_loss - final.train_loss,
            "curve": [(r.epoch, r.train_acc, r.val_acc, r.test_acc, r.train_loss, r.val_loss, r.test_loss)
                      for r in history]}


def table(runs: list[dict]) -> str:
    """Markdown: one row per variant, the median over its seeds (min-max in brackets)."""
    lines = ["| variant | seeds | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 2) + "|"]
    for name in dict.fromkeys(r["variant"] for r in runs):
        rows = [r for r in runs if r["variant"] == name]
        cells = []
        for column in COLUMNS:
            values = [r[column] for r in rows]
            if column == "epoch kept":  # "12*": early stopping kept it; "12": the lowest validation loss was there
                cells.append(", ".join(f"{r[column]}{'*' * r['stopped early']}" for r in rows))
            elif "acc" in column:
                low, mid, high = (100 * v for v in (min(values), statistics.median(values), max(values)))
                cells.append(f"{mid:.1f}% ({low:.1f}-{high:.1f})")
            else:
                cells.append(f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})")
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(name for name, _, _ in OVERFIT_VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="override the presets' epochs (a quick look)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's numbers here")
    args = parser.parse_args(argv)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        parser.error(f"unknown preset(s): {', '.join(unknown)}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, backend "
          f"{PRESETS[names[0]].config.backend}", flush=True)
    runs = []
    for name in names:
        for seed in args.seeds:
            runs.append(run_once(name, seed, args.epochs))
            r = runs[-1]
            print(f"{name} seed {seed}: {r['epochs_run']} epochs in {r['seconds']:.0f} s, final test "
                  f"{100 * r['final test acc']:.1f}%", flush=True)
            if args.json:
                args.json.write_text(json.dumps(runs))
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
