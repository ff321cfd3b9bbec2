"""When does the multi-threaded NumPy step pay? Parallel / serial epoch time for a set of models.

    python bench/parallel.py                       # what the step planner's parallel candidate gains
    python bench/parallel.py --epochs 3 --rows 30000

Epochs of the serial step (workers=1) and the shared step (workers = this machine's cores) run
alternately in one process; the first epoch of each warms up and is not counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import interleaved_epoch_times  # noqa: E402
from engine import PRESETS, load_dataset  # noqa: E402
from engine.backends.numpy_backend import numpy_train  # noqa: E402
from engine.config import n_parameters  # noqa: E402
from engine.fast.parallel import available_cores  # noqa: E402

CASES = [  # hidden sizes, batch size, optimizer
    ((1000,), 32, "adam"), ((1000,), 100, "adam"), ((1000,), 256, "adam"), ((1000, 1000), 100, "adam"),
    ((512,), 100, "adam"), ((256,), 100, "adam"), ((1000,), 100, "sgd"), ((512,), 64, "sgd"),
    ((128, 64), 64, "sgd"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per case (one more warms up)")
    parser.add_argument("--rows", type=int, default=30000, help="training rows per epoch")
    args = parser.parse_args(argv)
    workers = available_cores()
    if workers < 2:
        print("One core: nothing to share.")
        return 0
    data = load_dataset("mnist")
    print(f"| hidden | batch | optimizer | parameters | serial s/epoch | {workers} threads s/epoch | ratio |")
    print("|---|---|---|---|---|---|---|")
    for hidden, batch, optimizer in CASES:
        cfg = PRESETS["keras-mlp"].config.replace(hidden_sizes=hidden, batch_size=batch, optimizer=optimizer,
                                                  learning_rate=1e-3 if optimizer == "adam" else 0.01,
                                                  train_limit=args.rows)
        run_fns = {n: lambda c, d, n=n: numpy_train(c, d, workers=n) for n in (1, workers)}
        times = interleaved_epoch_times(cfg, run_fns, data, args.epochs)
        serial, shared = (statistics.median(times[n]) for n in (1, workers))
        print(f"| {','.join(map(str, hidden))} | {batch} | {optimizer} | {n_parameters(hidden):,} | {serial:.3f} "
              f"| {shared:.3f} | {shared / serial:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
