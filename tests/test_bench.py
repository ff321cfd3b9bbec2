"""bench/run.py runs and reports what its README table says: a row per backend, ratios to torch.optim."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_bench_prints_a_json_row_per_backend():
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "bench/run.py", "--presets", "twolayernet", "--epochs", "1",
                          "--repeats", "1", "--json"], cwd=ROOT, capture_output=True, text=True, check=True)
    rows = {r["backend"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert {"numpy", "textbook", "numpy-every-input", "torch-cpu", "torch-cpu-kernels"} <= set(rows)
    assert rows["torch-cpu"]["ratio"] == 1.0 and rows["torch-cpu"]["eval_ratio"] == 1.0
    assert all(r["epoch_s"] > 0 and r["gflops"] > 0 for r in rows.values())
    # the numpy row says which step variant the planner measured fastest, of the serial step on every core or one
    # (twolayernet's 50 units are too few to share a step between threads)
    assert rows["numpy"]["plan"].startswith("1 thread") and "measured per batch" in rows["numpy"]["plan"]
    assert "2 threads" not in rows["numpy"]["plan"] and rows["textbook"]["plan"] is None
    # The engine leaves out MNIST's 67 blank pixels: its row counts the products it computes,
    # 784-50-10 without them (first-layer input gradient not needed): 2 * 717 * 50 + 50 * 10 * 3.
    work = {b: rows[b]["gflops"] * rows[b]["epoch_s"] for b in ("numpy", "numpy-every-input", "torch-cpu", "textbook")}
    assert work["numpy-every-input"] == pytest.approx(work["torch-cpu"]) == pytest.approx(work["textbook"])
    expected = (2 * 717 * 50 + 3 * 50 * 10) / (2 * 784 * 50 + 3 * 50 * 10)
    assert work["numpy"] / work["torch-cpu"] == pytest.approx(expected)


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
    from bench.run import paired_ratio

    assert paired_ratio([1.0, 1.0, 3.0], [2.0, 6.0, 6.0]) == (0.5, pytest.approx(1 / 6), 0.5)
    with pytest.raises(ValueError):  # a backend that ran fewer epochs is not compared with a shorter list
        paired_ratio([1.0, 2.0], [1.0])
