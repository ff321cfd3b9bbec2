"""`python -m engine`: presets, per-epoch lines, JSON, saving, and one-line errors with exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

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
    for args, words in [(["train", "--hidden", "64,,abc"], "empty entry"), (["train", "--lr", "-1"], "learning rate"),
                        (["train", "--activation", "gelu"], "invalid choice"),
                        (["train", "--output", "linear", "--loss", "cross_entropy"], "softmax or sigmoid")]:
        out = run(*args)
        assert out.returncode == 2, args
        assert words in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
