"""Benchmark: seconds per training epoch (and per full evaluation) of the NumPy engine vs PyTorch, same process.

    python bench/run.py                          # every preset, CPU rows (+ CUDA rows when a GPU is there)
    python bench/run.py --presets keras-mlp --epochs 3 --repeats 1 --json
    python bench/run.py --presets keras-mlp,pytorch-mlp --dropout 0.2   # the presets with dropout
    python bench/run.py --presets keras-mlp --activation sigmoid          # ... or another activation

`textbook` is the engine's textbook modules alone (engine/layers, losses, optim, model); `numpy` is the
same maths through engine/fast, whose step variant (threads, skipping batch-blank columns) is chosen
by measurement in each run's first epoch, which is not timed, and measured again whenever its batches'
speed changes (the machine's load did); the table says what it chose last.
Ratios are NumPy time / PyTorch CPU time for the same config, batch order and initial weights; below 1
the engine is faster. The backends' epochs run in turn, so each round's epochs meet the same machine: a
ratio is the median over rounds of each round's ratio (`paired_ratio`), and `range` its lowest and
highest round (a virtual machine's host can take a core away for seconds; both sides slow then).
The reference, `torch-cpu`, steps with autograd and torch.optim (SGD or Adam, fused=True), as PyTorch's
tutorials do;
`torch-cpu-kernels` is the torch backend as the app runs it: its hand-written backward pass and the
same fused optimizer kernels called without torch.optim. On a GPU, `torch-cuda` is the backend
(CUDA graphs), `torch-cuda-eager` the backend without graphs, `torch-cuda-autograd` the tutorials'
way with CUDA graphs. The NumPy engine leaves out input pixels that are blank in every training
image (engine.train.live_inputs: 67 of MNIST's 784 where the pixels are scaled to [0, 1]; for SGD
and momentum, standardized ones too, folded into one column), and a first layer of 768 units or
more (`keras-mlp`) skips the pixels blank in a whole batch (Linear.sparse_input); where it does
either, `numpy-every-input` is the engine computing with all of them. GFLOP/s counts the matrix
products a backend computes (forward 2nk, weight gradient 2nk, input gradient 2nk except for the
first layer): the NumPy rows count the first layer's live inputs only, not the fewer a batch skips to.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import PRESETS, build_model, load_dataset, train  # noqa: E402
from engine.backends.numpy_backend import numpy_train  # noqa: E402
from engine.fast.parallel import available_cores  # noqa: E402
from engine.fast.trim import live_inputs  # noqa: E402
from engine.layers import ACTIVATIONS  # noqa: E402
from engine.train import make_splits  # noqa: E402

# The presets this bench times: dense networks on MNIST (FLOPs are counted for dense layers).
MLP_PRESETS = tuple(name for name, p in PRESETS.items()
                    if p.config.dataset == "mnist" and not name.startswith("overfit")
                    and all(isinstance(h, int) for h in p.config.hidden_sizes))


def epoch_flops(cfg, n_rows: int, n_features: int, n_classes: int) -> float:
    sizes = [n_features, *cfg.hidden_sizes, n_classes]
    layers = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(2 * n_rows * a * b for a, b in layers)
    dx = sum(2 * n_rows * a * b for a, b in layers[1:])
    return 2 * fwd + dx


def eval_flops(cfg, n_rows: int, n_features: int, n_classes: int) -> float:
    sizes = [n_features, *cfg.hidden_sizes, n_classes]
    return sum(2 * n_rows * a * b for a, b in zip(sizes[:-1], sizes[1:]))


def matmul_peak(dtype=np.float32, n: int = 2048, repeats: int = 5) -> float:
    """Measured float32 GFLOP/s of NumPy's BLAS on a large square product (best of repeats)."""
    a = np.random.default_rng(0).random((n, n), dtype=dtype)
    b = a.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def cpu_description() -> str:
    """The CPU's model name and the BLAS NumPy uses (library, kernel, threads), as threadpoolctl reports it."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info

        blas = next((lib for lib in threadpool_info() if lib["user_api"] == "blas"), None)
    except ImportError:
        blas = None
    kernel = (f"{blas['internal_api']} {blas.get('version') or ''} {blas.get('architecture') or ''} kernel, "
              f"{blas['num_threads']} threads" if blas else "BLAS unknown")
    return f"{model}; {kernel}"


def runners(cfg, torch, cuda: bool, trims: bool = False, plans: dict | None = None) -> dict:
    """Backend name -> function(cfg, data) returning the training generator.

    `trims`: the engine leaves out blank inputs for this config, so time it without that too.
    `plans`: gets the numpy backend's chosen step variant under "numpy".
    """
    plans = {} if plans is None else plans
    out = {"numpy": lambda c, d: numpy_train(c, d, on_plan=lambda text: plans.__setitem__("numpy", text)),
           "textbook": lambda c, d: train(c.replace(backend="textbook"), d)}
    if trims:
        out["numpy-every-input"] = lambda c, d: numpy_train(c, d, trim_inputs=False)
    if torch is not None:
        from engine.backends.torch_backend import torch_train

        out["torch-cpu"] = lambda c, d: torch_train(c.replace(backend="torch", device="cpu"), d, torch_optim=True)
        out["torch-cpu-kernels"] = lambda c, d: train(c.replace(backend="torch", device="cpu"), d)
        if cuda:
            out["torch-cuda"] = lambda c, d: train(c.replace(backend="torch", device="cuda"), d)
            out["torch-cuda-eager"] = lambda c, d: torch_train(c.replace(backend="torch", device="cuda"), d,
                                                               cuda_graphs=False)
            out["torch-cuda-autograd"] = lambda c, d: torch_train(c.replace(backend="torch", device="cuda"), d,
                                                                  torch_optim=True)
    return out


def interleaved_epoch_times(cfg, run_fns: dict, data, epochs: int) -> dict[str, list[float]]:
    """Training seconds per epoch for each backend, their epochs run alternately so drift hits all alike.

    The first epoch of each warms caches and allocators (and captures CUDA graphs) and is not counted.
    """
    gens = {name: fn(cfg.replace(epochs=epochs + 1), data) for name, fn in run_fns.items()}
    times: dict[str, list[float]] = {name: [] for name in run_fns}
    for epoch in range(epochs + 1):
        for name, gen in gens.items():
            seconds = next(gen).train_seconds
            if epoch:
                times[name].append(seconds)
    return times


def paired_ratio(times: list[float], reference: list[float]) -> tuple[float, float, float]:
    """(median, lowest, highest) over rounds of times[i] / reference[i]: epochs run in the same round compared."""
    ratios = [t / r for t, r in zip(times, reference, strict=True)]
    return statistics.median(ratios), min(ratios), max(ratios)


def eval_functions(cfg, data, splits, backends: list[str]) -> dict:
    """A function per backend that evaluates the 60k training and 10k test rows once."""
    model = build_model(cfg, data.n_features, data.n_classes)
    fns = {"numpy": lambda: (model.evaluate(splits.x_train, splits.y_train),
                             model.evaluate(splits.x_test, splits.y_test))}
    for backend in backends:
        if backend in ("torch-cpu", "torch-cuda"):
            fns[backend] = _torch_eval_function(cfg, model, splits, backend.split("-")[1])
    return fns


def _torch_eval_function(cfg, model, splits, device: str):
    import torch

    from engine.backends.torch_backend import TorchMLP

    dev = torch.device(device)
    net = TorchMLP(cfg, model, dev)
    xs = [torch.tensor(a, device=dev) for a in (splits.x_train, splits.y_train, splits.x_test, splits.y_test)]
    return lambda: (net.evaluate(xs[0], xs[1]), net.evaluate(xs[2], xs[3]))


def interleaved_eval_times(fns: dict, repeats: int) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_timed(fn))
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(MLP_PRESETS), help="comma-separated preset names "
                        "(the tutorials' dense MNIST networks; bench/cnn.py times keras-cnn)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per run (one more warms up)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the evaluation timing")
    parser.add_argument("--no-torch", action="store_true", help="time the NumPy engine alone")
    parser.add_argument("--dropout", type=float, default=None, help="train every preset with this dropout")
    parser.add_argument("--activation", choices=list(ACTIVATIONS), default=None,
                        help="train every preset with this hidden activation")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.presets.split(",") if n.strip()]
    unknown = [n for n in names if n not in MLP_PRESETS]
    if unknown:
        parser.error(f"unknown preset(s): {', '.join(unknown)}")

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: ratios need it (pip install torch==2.13.0).", file=sys.stderr)
    data = load_dataset("mnist")
    peak = matmul_peak()
    cuda = torch is not None and torch.cuda.is_available()
    header = (f"# {cpu_description()}, {available_cores()} cores, NumPy {np.__version__}"
              + (f", PyTorch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "")
              + (f", GPU {torch.cuda.get_device_name()}" if cuda else "")
              + f"; measured float32 matmul peak {peak:.1f} GFLOP/s")
    rows = []
    for name in names:
        cfg = PRESETS[name].config
        if args.dropout is not None:
            cfg = cfg.replace(dropout=args.dropout)
        if args.activation is not None:
            cfg = cfg.replace(activation=args.activation)
        n = len(data.y_train)
        splits = make_splits(cfg, data)
        live = live_inputs(cfg, splits.x_train)
        ev_flops = eval_flops(cfg, n + len(data.y_test), data.n_features, data.n_classes)
        plans: dict[str, str] = {}
        run_fns = runners(cfg, torch, cuda, trims=live is not None, plans=plans)
        epochs = interleaved_epoch_times(cfg, run_fns, data, args.epochs)
        evals = interleaved_eval_times(eval_functions(cfg, data, splits, list(run_fns)), args.repeats)
        for backend, times in epochs.items():
            seconds = statistics.median(times)
            n_inputs = live.n_inputs if live is not None and backend == "numpy" else data.n_features
            flops = epoch_flops(cfg, n, n_inputs, data.n_classes)
            ref_eval = evals.get("torch-cpu")
            ratio, low, high = paired_ratio(times, epochs["torch-cpu"]) if "torch-cpu" in epochs else (None,) * 3
            rows.append(dict(preset=name, backend=backend, epoch_s=seconds, plan=plans.get(backend),
                             ratio=ratio, ratio_range=[low, high] if ratio is not None else None,
                             gflops=flops / seconds / 1e9,
                             pct_peak=100 * flops / seconds / 1e9 / peak if "cuda" not in backend else None,
                             eval_s=evals.get(backend),
                             eval_ratio=evals[backend] / ref_eval if ref_eval and backend in evals else None,
                             eval_gflops=ev_flops / evals[backend] / 1e9 if backend in evals else None))
            if args.json:
                print(json.dumps(rows[-1]), flush=True)
    if not args.json:
        print(header)
        print(f"{'preset':20} {'backend':19} {'s/epoch':>8} {'ratio':>6} {'range':>9} {'GFLOP/s':>8} {'%peak':>6}"
              f" {'eval s':>7} {'ratio':>6}")
        for r in rows:
            def fmt(v, spec):
                return format(v, spec) if v is not None else format("-", f">{spec.split('.')[0]}")
            spread = f"{r['ratio_range'][0]:.2f}-{r['ratio_range'][1]:.2f}" if r["ratio_range"] else "-"
            print(f"{r['preset']:20} {r['backend']:19} {r['epoch_s']:8.3f} {fmt(r['ratio'], '6.2f')} {spread:>9} "
                  f"{r['gflops']:8.1f} {fmt(r['pct_peak'], '6.0f')} {fmt(r['eval_s'], '7.3f')} "
                  f"{fmt(r['eval_ratio'], '6.2f')}")
        for r in rows:
            if r["plan"]:
                print(f"# {r['preset']}: the numpy step chose {r['plan']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
