"""What a sweep costs where it runs: a 12-point grid with 1 and 2 local worker processes and on a local Ray head.

    python bench/sweep.py                                  # MNIST, 5,000 training images, 3 epochs a point
    python bench/sweep.py --dataset digits --epochs 20 --no-ray

Per mode: the sweep's wall time (from the start to the last point's end, worker start-up included),
points per minute, the speed-up over one worker, and the overhead per point: a slot's time per point
(wall x slots / points) less the point's own training and evaluation time (its epochs' seconds), i.e.
what starting workers, loading or shipping the data and scheduling cost each point. Ray runs on
`ray start --head --num-cpus 2` bound to 127.0.0.1, twice: cold (its worker processes start and
import the engine) and warm (they are reused, as on a cluster that has been up a while). Connecting
to the head is timed apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import PRESETS  # noqa: E402
from engine.sweep import (  # noqa: E402
    EPOCH,
    FINISHED,
    connect_ray,
    expand,
    local_ray_head,
    parse_grid,
    ray_available,
    run_sweep,
)

GRID = ["lr=0.1,0.3,1,3", "hidden=32;64;128"]  # 12 points


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_sweep(points, slots: int, workers: int | None = None, address: str | None = None) -> dict:
    """Run the sweep; its wall time, points per minute and overhead per point."""
    compute = {p.index: 0.0 for p in points}
    ended = []
    started = time.perf_counter()
    for event in run_sweep(points, workers=workers, ray_address=address, stop=threading.Event()):
        if event.kind == EPOCH:
            compute[event.index] += event.result.seconds
        elif event.ended:
            ended.append(event.kind)
    wall = time.perf_counter() - started
    if ended.count(FINISHED) != len(points):
        raise SystemExit(f"not every point finished: {ended}")
    per_point = sum(compute.values()) / len(points)
    return {"wall_s": round(wall, 2), "points_per_min": round(60 * len(points) / wall, 1),
            "train_s_per_point": round(per_point, 3), "overhead_s_per_point": round(wall * slots / len(points)
                                                                                    - per_point, 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "digits"])
    parser.add_argument("--train-limit", type=int, default=5000, help="training images per point (0: all)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true", help="local workers only")
    parser.add_argument("--json", action="store_true", help="one JSON object per mode")
    args = parser.parse_args(argv)
    base = PRESETS["notebook-ce"].config.replace(dataset=args.dataset, epochs=args.epochs,
                                                  train_limit=args.train_limit or None)
    points = expand(base, parse_grid(GRID))
    rows = []

    def report(mode: str, row: dict) -> None:
        row = {"mode": mode, **row}
        if rows:
            row["speedup_vs_1"] = round(rows[0]["wall_s"] / row["wall_s"], 2)
        rows.append(row)
        print(json.dumps(row) if args.json else
              f"{mode:22} {row['wall_s']:7.2f} s  {row['points_per_min']:6.1f} points/min  "
              f"x{row.get('speedup_vs_1', 1.0):.2f}  training {row['train_s_per_point']:.3f} s/point, "
              f"overhead {row['overhead_s_per_point']:+.3f} s/point", flush=True)

    if not args.json:
        print(f"{len(points)} points: {base.dataset} ({args.train_limit or 'all'} training images), "
              f"{base.layers_text('in', 'out')} {base.epochs} epochs, grid {' x '.join(GRID)}; "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}")
    report("local, 1 worker", timed_sweep(points, 1, workers=1))
    report("local, 2 workers", timed_sweep(points, 2, workers=2))
    if args.no_ray:
        return 0
    if not ray_available():
        print('Ray is not installed: pip install "ray[default]==2.60.0" (or --no-ray)', file=sys.stderr)
        return 1
    with local_ray_head(num_cpus=2, port=free_port()) as address:
        t0 = time.perf_counter()
        connect_ray(address)
        if not args.json:
            print(f"connected to the Ray head at {address} in {time.perf_counter() - t0:.2f} s")
        report("ray 2 CPUs, cold", timed_sweep(points, 2, address=address))
        report("ray 2 CPUs, warm", timed_sweep(points, 2, address=address))
    pool = rows[1]["overhead_s_per_point"]
    extra = {r["mode"]: round(r["overhead_s_per_point"] - pool, 3) for r in rows[2:]}
    print(json.dumps({"ray_overhead_vs_local_pool_s_per_point": extra}) if args.json else
          "Ray's overhead per point over the local pool's: " + ", ".join(f"{m} {v:+.3f} s" for m, v in extra.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
