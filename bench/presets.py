"""Run every tutorial preset to the end for several seeds and compare with what each tutorial reported.

    python bench/presets.py --seeds 0,1,2 --jobs 3        # the README's table
    python bench/presets.py --presets notebook-mse --backend torch --device cuda --seeds 0

Prints a Markdown table (mean and spread of the final test accuracy, wall seconds per run);
--json prints one object per run instead.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import PRESETS, load_dataset, train  # noqa: E402


def run_one(name: str, seed: int, backend: str, device: str) -> dict:
    cfg = PRESETS[name].config.replace(seed=seed, backend=backend, device=device)
    data = load_dataset(cfg.dataset)
    t0 = time.perf_counter()
    history = list(train(cfg, data))
    wall = time.perf_counter() - t0
    last = history[-1]
    return dict(preset=name, seed=seed, backend=backend, device=device, epochs=last.epoch,
                test_acc=last.test_acc, train_acc=last.train_acc, test_loss=last.test_loss, wall_s=wall,
                best_test_acc=max(r.test_acc for r in history))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tutorials = [n for n, p in PRESETS.items() if p.config.dataset == "mnist" and not n.startswith("overfit")]
    parser.add_argument("--presets", default=",".join(tutorials),
                        help="the MNIST tutorials by default (bench/overfit.py runs the overfitting presets)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    names = [n for n in args.presets.split(",") if n]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    jobs = [(n, s, args.backend, args.device) for n in names for s in seeds]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            runs = list(pool.map(run_one, *zip(*jobs)))
    else:
        runs = [run_one(*job) for job in jobs]
    if args.json:
        for r in runs:
            print(json.dumps(r))
        return 0
    print(f"| preset | setup | reported | ours: test accuracy, mean of seeds {args.seeds} (min-max) | wall s/run |")
    print("|---|---|---|---|---|")
    for name in names:
        rs = [r for r in runs if r["preset"] == name]
        accs = [100 * r["test_acc"] for r in rs]
        cfg = PRESETS[name].config
        setup = (f"{cfg.layers_text()} {cfg.output}/{cfg.loss}, {cfg.optimizer} lr {cfg.learning_rate:g}, "
                 f"{cfg.epochs} epochs")
        print(f"| `{name}` | {setup} | {PRESETS[name].reported} | {statistics.mean(accs):.2f}% "
              f"({min(accs):.2f}-{max(accs):.2f}) | {statistics.median(r['wall_s'] for r in rs):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
