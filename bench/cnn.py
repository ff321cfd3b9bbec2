"""Benchmark: a NumPy CNN epoch against a PyTorch CPU epoch, same process, and where the NumPy step's time goes.

    python bench/cnn.py                                   # keras-cnn, 1 timed epoch on all 60,000 images
    python bench/cnn.py --train-limit 10000 --epochs 2    # shorter: epochs of 10,000 images
    python bench/cnn.py --profile-only                    # the per-layer profile alone

Rows: `numpy` (engine/fast: channel-last twins of engine/conv.py's layers, fused Adam), `textbook` (engine/conv.py
as a learner reads it) and `torch-cpu` (engine/backends/torch_layers.py: autograd, torch.optim, oneDNN's
convolutions), their epochs interleaved (bench/run.py's interleaved_epoch_times: the first, warming up, is not
timed); `torch-cuda` too where a GPU is. Ratios are time / torch-cpu's (median epoch training seconds). GFLOP/s
counts the products: a convolution's forward is 2 n out_h out_w filters channels k^2, its weight gradient the
same, its input gradient the same again except for the first layer; dense layers as bench/run.py counts them;
against the machine's measured float32 matmul peak (bench/run.py's matmul_peak). The profile times each layer's
forward and backward and the optimizer's step for one batch of the numpy step; then one whole step of each
backend, interleaved, against the matmul peak, all in process CPU seconds (medians): on a machine shared with
other work, wall-clock epochs measure the neighbours too. Run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
for one core each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import cpu_description, interleaved_epoch_times, matmul_peak  # noqa: E402
from engine import PRESETS, build_model, load_dataset, train  # noqa: E402
from engine.conv import Conv2D  # noqa: E402
from engine.fast.model import twin  # noqa: E402
from engine.fast.optim import FAST_OPTIMIZERS  # noqa: E402
from engine.fast.parallel import available_cores  # noqa: E402
from engine.layers import Linear  # noqa: E402
from engine.optim import make_optimizer  # noqa: E402


def step_flops(model, n_rows: int, n_features: int = 784) -> float:
    """FLOPs of the products of one training pass over n_rows examples (forward, weight and input gradients)."""
    flops, first = 0.0, True
    x = np.zeros((1, n_features), model.dtype)
    for layer in model.layers:
        y = layer.forward(x, train=False)
        if isinstance(layer, Conv2D | Linear):
            W = layer.params["W"]
            macs = y.size * (W.size // W.shape[0] if isinstance(layer, Conv2D) else W.shape[0])
            flops += 2 * n_rows * macs * (2 if first else 3)
            first = False
        x = y
    return flops


def runners(torch_module) -> dict:
    out = {"numpy": lambda c, d: train(c, d), "textbook": lambda c, d: train(c.replace(backend="textbook"), d)}
    if torch_module is not None:
        out["torch-cpu"] = lambda c, d: train(c.replace(backend="torch", device="cpu"), d)
        if torch_module.cuda.is_available():
            out["torch-cuda"] = lambda c, d: train(c.replace(backend="torch", device="cuda"), d)
    return out


def profile(cfg, batches: int = 40) -> dict[str, float]:
    """Median CPU seconds per batch of each layer's forward and backward and of the optimizer's step (numpy step)."""
    model = build_model(cfg, 784, 10)
    net = twin(model)
    optimizer = make_optimizer(cfg, net.parameters(), FAST_OPTIMIZERS)
    rng = np.random.default_rng(0)
    x = rng.random((cfg.batch_size, 784), dtype=np.float32)
    t = rng.integers(0, 10, cfg.batch_size)
    times: dict[str, list[float]] = {}

    def timed(name, fn, *args):
        start = time.process_time()
        out = fn(*args)
        times.setdefault(name, []).append(time.process_time() - start)
        return out
    for _ in range(batches):
        h = x
        for i, layer in enumerate(net.layers):
            h = timed(f"{i:2} {layer!r} forward", layer.forward, h, True)
        net.loss.forward(h, t)
        g = net.loss.backward(optimizer.grad_scale)
        for i, layer in reversed(list(enumerate(net.layers))):
            g = timed(f"{i:2} {layer!r} backward", layer.backward, g)
            if g is None:
                break
        timed("optimizer step (Adam)", optimizer.step, optimizer.grad_scale)
    return {name: statistics.median(ts[5:]) for name, ts in times.items()}


def cpu_peak(n: int = 2048, repeats: int = 5) -> float:
    """float32 GFLOP/s of NumPy's BLAS on a square product, in process CPU time (what other processes take is
    not counted: on a shared machine wall time is not the machine's)."""
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    a @ a
    best = min(_cpu_seconds(lambda: a @ a) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def step_cpu_seconds(cfg, torch_module, batches: int = 30) -> dict[str, float]:
    """Median process CPU seconds of one training step (forward, backward, update) per backend, on a random batch."""
    rng = np.random.default_rng(0)
    x = rng.random((cfg.batch_size, 784), dtype=np.float32)
    t = rng.integers(0, 10, cfg.batch_size)
    net = twin(build_model(cfg, 784, 10))
    optimizer = make_optimizer(cfg, net.parameters(), FAST_OPTIMIZERS)

    def numpy_step():
        net.train_step_loss(x, t, optimizer.grad_scale)
        optimizer.step(optimizer.grad_scale)
    model = build_model(cfg, 784, 10)
    textbook_optimizer = make_optimizer(cfg, model.parameters())

    def textbook_step():  # engine.backends.numpy_backend.TextbookStep's
        model.loss.forward(model.forward(x, train=True), t)
        model.backward(model.loss.backward())
        textbook_optimizer.step()
    steps = {"numpy": numpy_step, "textbook": textbook_step}
    if torch_module is not None:
        from engine.backends.torch_layers import TorchNet

        tnet = TorchNet(cfg, build_model(cfg, 784, 10), torch_module.device("cpu"))
        topt, tx, tt = tnet.optimizer(), torch_module.from_numpy(x), torch_module.from_numpy(t)

        def torch_step():
            topt.zero_grad(set_to_none=True)
            tnet.loss(tnet.forward(tx, True), tt).backward()
            topt.step()
        steps["torch-cpu"] = torch_step
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(batches):  # interleaved
        for name, fn in steps.items():
            times[name].append(_cpu_seconds(fn))
    return {name: statistics.median(ts[3:]) for name, ts in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="keras-cnn")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per backend (one more warms up); "
                        "0: the step timings only")
    parser.add_argument("--train-limit", type=int, default=None, help="training images per epoch (default: all)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--profile-only", action="store_true")
    args = parser.parse_args(argv)
    cfg = PRESETS[args.preset].config.replace(train_limit=args.train_limit)
    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: the ratio needs it.", file=sys.stderr)
    peak = matmul_peak()
    print(f"# {cpu_description()}, {available_cores()} cores, NumPy {np.__version__}"
          + (f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "")
          + f"; measured float32 matmul peak {peak:.1f} GFLOP/s")
    prof = profile(cfg)
    total = sum(prof.values())
    print(f"# numpy step profile, batch {cfg.batch_size}: {1e3 * total:.1f} ms CPU per batch")
    for name, seconds in sorted(prof.items(), key=lambda kv: -kv[1]):
        if seconds >= 0.01 * total:
            print(f"#   {name:45} {1e3 * seconds:7.2f} ms {100 * seconds / total:5.1f}%")
    if args.profile_only:
        return 0
    per_example = step_flops(build_model(cfg, 784, 10), 1)
    steps = step_cpu_seconds(cfg, torch)
    peak_cpu = cpu_peak()
    print(f"# one training step, batch {cfg.batch_size}, process CPU time (float32 matmul peak in CPU time: "
          f"{peak_cpu:.1f} GFLOP/s)")
    for backend, seconds in steps.items():
        rate = per_example * cfg.batch_size / seconds / 1e9
        ratio = seconds / steps["torch-cpu"] if "torch-cpu" in steps else float("nan")
        print(f"#   {backend:10} {1e3 * seconds:7.2f} ms  ratio {ratio:5.2f}  {rate:6.1f} GFLOP/s "
              f"{100 * rate / peak_cpu:4.0f}% of peak")
    if args.epochs == 0:
        return 0
    data = load_dataset(cfg.dataset)
    n_rows = min(cfg.train_limit or len(data.y_train), len(data.y_train))
    flops = step_flops(build_model(cfg, 784, 10), n_rows)
    times = interleaved_epoch_times(cfg, runners(torch), data, args.epochs)
    ref = statistics.median(times["torch-cpu"]) if "torch-cpu" in times else None
    print(f"{'preset':10} {'backend':10} {'rows':>6} {'s/epoch':>8} {'ratio':>6} {'GFLOP/s':>8} {'%peak':>6}")
    for backend, ts in times.items():
        seconds = statistics.median(ts)
        rate = flops / seconds / 1e9
        print(f"{args.preset:10} {backend:10} {n_rows:6d} {seconds:8.2f} "
              f"{seconds / ref if ref else float('nan'):6.2f} {rate:8.1f} "
              f"{100 * rate / peak if 'cuda' not in backend else float('nan'):6.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
