"""Exported scripts: standalone, ruff-clean for every sidebar option, and they train as MLP Lab does (NumPy: the
textbook backend's losses to float rounding, rel 1e-6; PyTorch: the torch backend's tolerance, rel 1e-4)."""

import ast
import contextlib
import dataclasses
import importlib.util
import io
import itertools
import subprocess
import sys
from pathlib import Path

import pytest

from engine import TrainConfig, train
from engine.cli import main
from engine.config import ConfigError, describe
from engine.export import WRITTEN, ExportError, export_script, script_name, unsupported

ROOT = Path(__file__).resolve().parent.parent
MNIST = ROOT / "data" / "mnist"
PAIRS = [("sigmoid", "mse"), ("softmax", "mse"), ("linear", "mse"), ("softmax", "cross_entropy"),
         ("sigmoid", "cross_entropy")]
SMALL = dict(hidden_sizes=(24,), train_limit=1500, epochs=1, batch_size=50, backend="textbook")
# Together these use every activation, output/loss pair, optimizer, initialisation and input scaling, and L2,
# validation split and dropout.
CASES = {
    "notebook-mse": TrainConfig(**SMALL),
    "relu-softmax-ce-adam": TrainConfig(**SMALL, activation="relu", output="softmax", loss="cross_entropy",
                                        optimizer="adam", learning_rate=1e-3, init="xavier"),
    "tanh-momentum-l2-val": TrainConfig(**{**SMALL, "hidden_sizes": (20, 12)}, activation="tanh", optimizer="momentum",
                                        learning_rate=0.05, l2=1e-3, val_split=0.1, init="he",
                                        input_scaling="standardize", loss="cross_entropy"),
    "leaky-softmax-mse": TrainConfig(**SMALL, activation="leaky_relu", output="softmax", loss="mse", init="pytorch",
                                     learning_rate=0.5),
    "linear-mse-small-init": TrainConfig(**SMALL, output="linear", loss="mse", init="small", learning_rate=0.01),
    "softmax-regression": TrainConfig(**{**SMALL, "hidden_sizes": ()}, output="softmax", loss="cross_entropy",
                                      learning_rate=0.03, init="pytorch", input_scaling="standardize"),
    "dropout": TrainConfig(**SMALL, activation="relu", output="softmax", loss="cross_entropy", init="he",
                           learning_rate=0.1, dropout=0.3),
}


def load_script(source: str, tmp_path: Path, name: str):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"exported_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_exported(cfg: TrainConfig, target: str, tmp_path: Path) -> list[dict]:
    module = load_script(export_script(cfg, target), tmp_path, target)
    with contextlib.redirect_stdout(io.StringIO()):
        return module.main(["--data", str(MNIST)] + (["--device", "cpu"] if target == "torch" else []))


def engine_history(cfg: TrainConfig, mnist) -> list:
    return list(train(cfg, mnist))


@pytest.mark.parametrize("case", list(CASES))
def test_numpy_script_prints_the_textbook_backends_losses(case, mnist, tmp_path):
    cfg = CASES[case]
    ours, theirs = engine_history(cfg, mnist), run_exported(cfg, "numpy", tmp_path)
    assert len(ours) == len(theirs) == cfg.epochs
    for a, b in zip(ours, theirs):
        assert b["train_loss"] == pytest.approx(a.train_loss, rel=1e-6)  # the same float32 operations: measured equal
        assert b["test_loss"] == pytest.approx(a.test_loss, rel=1e-6)
        assert b["test_acc"] == pytest.approx(a.test_acc, abs=1e-4)
        if cfg.val_split:
            assert b["val_loss"] == pytest.approx(a.val_loss, rel=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_torch_script_trains_like_the_engine(case, mnist, tmp_path):
    """Against the NumPy engine; with dropout, against the torch backend, whose masks it draws the same way."""
    pytest.importorskip("torch")
    cfg = CASES[case]
    reference = cfg.replace(backend="torch", device="cpu") if cfg.dropout else cfg
    ours, theirs = engine_history(reference, mnist), run_exported(cfg.replace(device="cpu"), "torch", tmp_path)
    for a, b in zip(ours, theirs, strict=True):
        assert b["train_loss"] == pytest.approx(a.train_loss, rel=1e-4)
        assert b["test_acc"] == pytest.approx(a.test_acc, abs=1e-3)


def test_the_numpy_script_runs_on_its_own_and_prints_the_notebook_line(tmp_path):
    cfg = CASES["notebook-mse"].replace(epochs=2, train_limit=500)
    source = export_script(cfg, "numpy")
    nodes = list(ast.walk(ast.parse(source)))
    imported = {alias.name for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in nodes if isinstance(node, ast.ImportFrom)}
    assert imported <= {"argparse", "gzip", "time", "pathlib", "numpy"}
    script = tmp_path / script_name(cfg, "numpy")
    script.write_text(source)
    out = subprocess.run([sys.executable, str(script), "--data", str(MNIST)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1: train loss ") and "test acc" in lines[1]
    missing = subprocess.run([sys.executable, str(script), "--data", str(tmp_path)], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode != 0 and "is missing" in missing.stderr and "Traceback" not in missing.stderr


def every_option() -> list[TrainConfig]:
    """A config for each choice of each field that has choices, crossed with each output/loss pair, plus the
    extras (hidden layers or none, dropout, L2, validation, subset); those TrainConfig itself refuses are left out."""
    configs = []
    choice_fields = [f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("choices")]
    for field, (output, loss) in itertools.product(choice_fields, PAIRS):
        for value in describe(field)["choices"]:
            with contextlib.suppress(ConfigError):
                configs.append(TrainConfig(**{"output": output, "loss": loss, field: value}))
    for hidden, extras in itertools.product([(), (8, 4)], [{}, dict(dropout=0.2, l2=1e-4, val_split=0.1,
                                                                      train_limit=100, dataset="fashion-mnist")]):
        configs.append(TrainConfig(hidden_sizes=hidden, **extras))
    return configs


@pytest.mark.parametrize("target", ["numpy", "torch"])
def test_every_sidebar_option_exports_as_clean_code_or_is_named(target, tmp_path):
    """Each config either exports a script that parses and that ruff passes (the project's settings), or the
    export refuses it naming each option it cannot write."""
    folder = tmp_path / "scripts"
    folder.mkdir()
    written = 0
    for i, cfg in enumerate(every_option()):
        problems = unsupported(cfg)
        if problems:
            with pytest.raises(ExportError) as refused:
                export_script(cfg, target)
            assert all(p in str(refused.value) for p in problems)
            continue
        source = export_script(cfg, target)
        ast.parse(source)
        (folder / f"s{i}.py").write_text(source)
        written += 1
    assert written >= 50
    ruff = subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(ROOT / "pyproject.toml"), "-q",
                           str(folder)], capture_output=True, text=True)
    if "No module named ruff" in ruff.stderr:
        pytest.skip("ruff is not installed")
    assert ruff.returncode == 0, ruff.stdout[-3000:]


def test_what_cannot_be_exported_is_named():
    assert unsupported(TrainConfig()) == []
    assert unsupported(TrainConfig(backend="torch", device="cpu", seed=3)) == []  # the scripts choose these
    with pytest.raises(ExportError, match="'digits'"):
        export_script(TrainConfig(dataset="digits"), "numpy")
    with pytest.raises(ExportError, match="numpy, torch"):
        export_script(TrainConfig(), "jax")


def test_an_option_the_scripts_do_not_write_is_named_not_dropped():
    """A TrainConfig field the exporter does not know (a new option), away from its default, is refused by name."""
    extra = [f for f in dataclasses.fields(TrainConfig) if f.name not in WRITTEN]
    for f in extra:
        changed = next((v for v in (1, 0.5, True, "x") if v != f.default and _accepts(f.name, v)), None)
        if changed is not None:
            problems = unsupported(TrainConfig(**{f.name: changed}))
            assert any(f.metadata["label"].lower() in p for p in problems), (f.name, problems)


def _accepts(name: str, value) -> bool:
    try:
        TrainConfig(**{name: value})
    except (ConfigError, TypeError):
        return False
    return True


def test_cli_writes_the_script_to_stdout(capsys):
    assert main(["export", "--preset", "keras-mlp", "--epochs", "2", "--to", "torch"]) == 0
    source = capsys.readouterr().out
    ast.parse(source)
    assert "EPOCHS = 2" in source and "torch.optim.Adam" in source and "HIDDEN_SIZES = (1000,)" in source
    assert main(["export", "--dataset", "digits"]) == 2
    assert "digits" in capsys.readouterr().err
