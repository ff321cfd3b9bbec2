"""`python -m engine`: presets, per-epoch lines, JSON, saving, and one-line errors with exit code 2."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine import PRESETS, load_model

ROOT = Path(__file__).resolve().parent.parent


def run(*args):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True)


def test_presets_lists_every_preset():
    out = run("presets")
    assert out.returncode == 0
    for name in PRESETS:
        assert name in out.stdout


def test_train_json_and_save(tmp_path):
    path = tmp_path / "m.npz"
    out = run("train", "--dataset", "digits", "--hidden", "16", "--activation", "tanh", "--output", "softmax",
              "--loss", "cross_entropy", "--lr", "0.5", "--epochs", "2", "--init", "xavier",
              "--json", "--save", str(path))
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"train_loss", "train_acc", "test_loss", "test_acc", "seconds"} <= set(rows[0])
    assert rows[1]["test_acc"] > 0.8
    assert load_model(path).config.hidden_sizes == (16,)


def test_train_prints_notebook_style_lines():
    out = run("train", "--preset", "softmax-regression", "--dataset", "digits", "--epochs", "1")
    assert out.returncode == 0, out.stderr
    assert "Epoch 1: train loss" in out.stdout and "test acc" in out.stdout
    assert "Trained 1 epoch in" in out.stdout


def test_bad_flags_exit_2_with_one_line():
    for args, words in [(["train", "--hidden", "64,,abc"], "empty entry"), (["train", "--lr", "-1"], "Learning rate"),
                        (["train", "--activation", "gelu"], "Unknown hidden activation"),
                        (["train", "--output", "linear", "--loss", "cross_entropy"], "softmax or sigmoid")]:
        out = run(*args)
        assert out.returncode == 2, args
        assert words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_torch_backend_trains_like_numpy():
    """The torch backend (PyTorch imported in a thread while the data loads) gives the NumPy engine's numbers."""
    pytest.importorskip("torch")
    args = ["train", "--dataset", "digits", "--hidden", "32", "--lr", "0.5", "--epochs", "2", "--json"]
    rows = {}
    for backend in ("numpy", "torch"):
        out = run(*args, "--backend", backend, "--device", "cpu")
        assert out.returncode == 0, out.stderr
        rows[backend] = [json.loads(line) for line in out.stdout.splitlines()]
    for a, b in zip(rows["numpy"], rows["torch"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["test_acc"] == pytest.approx(b["test_acc"], abs=1e-3)


def test_torch_backend_errors_are_one_line():
    """Without PyTorch, or asked for a GPU that is not there, the run says why and exits 2."""
    no_torch = textwrap.dedent("""
        import sys

        class NoTorch:  # as if PyTorch were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ModuleNotFoundError("No module named 'torch'")

        sys.meta_path.insert(0, NoTorch())
        from engine.__main__ import main
        sys.exit(main(["train", "--dataset", "digits", "--epochs", "1", "--backend", "torch"]))
        """)
    out = subprocess.run([sys.executable, "-c", no_torch], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2
    assert "pip install torch==2.13.0" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = run("train", "--dataset", "digits", "--epochs", "1", "--backend", "torch", "--device", "cuda")
    assert out.returncode == 2
    assert "sees no CUDA GPU" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
