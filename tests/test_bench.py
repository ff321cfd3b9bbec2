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
    assert {"numpy", "torch-cpu", "torch-cpu-kernels"} <= set(rows)
    assert rows["torch-cpu"]["ratio"] == 1.0 and rows["torch-cpu"]["eval_ratio"] == 1.0
    assert rows["numpy"]["ratio"] == rows["numpy"]["epoch_s"] / rows["torch-cpu"]["epoch_s"]
    assert all(r["epoch_s"] > 0 and r["gflops"] > 0 for r in rows.values())


def test_bench_trains_with_the_dropout_asked_for():
    """--dropout reaches every preset's TrainConfig: an impossible value is refused there, a valid one trains."""
    def bench(dropout):
        return subprocess.run([sys.executable, "bench/run.py", "--presets", "twolayernet", "--epochs", "1",
                               "--repeats", "1", "--no-torch", "--dropout", dropout, "--json"],
                              cwd=ROOT, capture_output=True, text=True)

    refused = bench("1.5")
    assert refused.returncode != 0 and "Dropout must be in [0, 1)" in refused.stderr
    (row,) = map(json.loads, bench("0.5").stdout.splitlines())
    assert row["backend"] == "numpy" and row["epoch_s"] > 0
