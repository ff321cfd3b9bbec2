"""bench/run.py runs and reports what its README table says: a row per backend, ratios to torch.optim."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import epoch_flops, eval_flops, paired_ratio
from engine.config import PRESETS

ROOT = Path(__file__).resolve().parent.parent


def test_bench_prints_a_json_row_per_backend():
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "bench/run.py", "--presets", "twolayernet", "--epochs", "1",
                          "--repeats", "1", "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
    rows = {r["backend"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert {"numpy", "textbook", "numpy-every-input", "torch-cpu", "torch-cpu-kernels"} <= set(rows)
    assert all(r["epoch_s"] > 0 and r["gflops"] > 0 for r in rows.values())
    # the numpy row says which step variant the planner measured fastest, of the serial step on every core or one
    # (twolayernet's 50 units are too few to share a step between threads)
    assert rows["numpy"]["plan"].startswith("1 thread") and "measured per batch" in rows["numpy"]["plan"]
    assert "2 threads" not in rows["numpy"]["plan"] and rows["textbook"]["plan"] is None
    # The engine leaves out MNIST's 67 blank pixels: its row counts the products it computes with 717 inputs
    # (epoch_flops is held to PyTorch's own count below), the other rows with all 784.
    work = {b: rows[b]["gflops"] * rows[b]["epoch_s"] for b in ("numpy", "numpy-every-input", "torch-cpu", "textbook")}
    assert work["numpy-every-input"] == pytest.approx(work["torch-cpu"]) == pytest.approx(work["textbook"])
    cfg = PRESETS["twolayernet"].config
    live = epoch_flops(cfg, 1, 717, 10) / epoch_flops(cfg, 1, 784, 10)
    assert work["numpy"] / work["torch-cpu"] == pytest.approx(live)


@pytest.mark.parametrize("preset", ["twolayernet", "pytorch-mlp", "notebook-mse"])
def test_the_bench_counts_the_flops_pytorch_counts(preset):
    """epoch_flops and eval_flops against torch.utils.flop_counter on the same network: a training batch's forward
    and backward (no gradient for the input images, as no backend computes one) and an evaluation's forward."""
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    cfg, rows = PRESETS[preset].config, 64
    sizes = [784, *cfg.hidden_sizes, 10]
    net = torch.nn.Sequential(*[torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
    x, t = torch.randn(rows, 784), torch.zeros(rows, dtype=torch.long)
    with FlopCounterMode(display=False) as train_count:
        torch.nn.functional.cross_entropy(net(x), t).backward()
    with torch.no_grad(), FlopCounterMode(display=False) as eval_count:
        net(x)
    assert epoch_flops(cfg, rows, 784, 10) == train_count.get_total_flops()
    assert eval_flops(cfg, rows, 784, 10) == eval_count.get_total_flops()


def test_bench_trains_with_the_dropout_asked_for():
    """--dropout reaches every preset's TrainConfig: an impossible value is refused there, a valid one trains."""
    def bench(dropout):
        return subprocess.run([sys.executable, "bench/run.py", "--presets", "twolayernet", "--epochs", "1",
                               "--repeats", "1", "--no-torch", "--dropout", dropout, "--json"],
                              cwd=ROOT, capture_output=True, text=True)

    refused = bench("1.5")
    assert refused.returncode != 0 and "Dropout must be in [0, 1)" in refused.stderr
    rows = {r["backend"]: r for r in map(json.loads, bench("0.5").stdout.splitlines())}
    assert set(rows) == {"numpy", "textbook", "numpy-every-input"} and rows["numpy"]["epoch_s"] > 0


def test_a_ratio_compares_epochs_of_the_same_round():
    """A slow spell that takes the engine's second epoch and PyTorch's second and third: comparing medians of each
    side would say 1/6; each round's own ratio says what the quiet rounds say."""
    assert paired_ratio([1.0, 1.0, 3.0], [2.0, 6.0, 6.0]) == (0.5, pytest.approx(1 / 6), 0.5)
    with pytest.raises(ValueError):  # a backend that ran fewer epochs is not compared with a shorter list
        paired_ratio([1.0, 2.0], [1.0])
