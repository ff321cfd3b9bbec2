"""The command line, `python -m engine ...`: its flags are generated from TrainConfig's field metadata.

Subcommands: `train`, `presets`, and those that modules listed in SUBCOMMANDS register (each module
has `register(subparsers)`, which adds its parser and sets `run=` to a function of the parsed
arguments returning the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

from engine.config import FIELDS, PRESETS, ConfigError, TrainConfig, cli_flag, describe, parse_value

SUBCOMMANDS: tuple[str, ...] = ("engine.sweep", "engine.gradcheck", "engine.export")
PROG = "python -m engine"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _field_type(name: str):
    """argparse's type= for a field: parse_value, whose sentence argparse prints after the flag's name."""
    def convert(text: str):
        try:
            return parse_value(name, text)
        except ConfigError as err:
            raise argparse.ArgumentTypeError(str(err)) from err
    convert.__name__ = name
    return convert


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--preset and one flag per TrainConfig field, each described by the field's metadata."""
    parser.add_argument("--preset", choices=list(PRESETS), help="start from a tutorial's setup")
    for name in FIELDS:
        m = describe(name)
        metavar = "{" + ",".join(m["choices"]) + "}" if m["choices"] else name.upper()
        parser.add_argument(cli_flag(name), dest=name, type=_field_type(name), metavar=metavar,
                            help=f"{m['label']}: {m['help']}")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset (or the defaults) with every field given on the command line; a ValueError if they clash."""
    base = PRESETS[args.preset].config if getattr(args, "preset", None) else TrainConfig()
    return base.replace(**{name: getattr(args, name) for name in FIELDS if getattr(args, name, None) is not None})


def fail(message: str, code: int = 2) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code


def save_path(text: str) -> Path:
    """Where --save will write (NumPy adds .npz); checked before training, so a bad path costs nothing."""
    given = Path(text).expanduser()
    if given.is_dir():
        raise ValueError(f"--save {text}: that is a folder; name a file in it, e.g. {given / 'model.npz'}")
    path = given if given.suffix == ".npz" else given.with_name(given.name + ".npz")
    if not path.parent.is_dir():
        raise ValueError(f"--save {text}: the folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"--save {text}: the folder {path.parent} is not writable")
    return path


class Progress:
    """tqdm's bar for the epoch in progress (rate, time left), on stderr; `on_batch` for train()."""

    def __init__(self, epochs: int, enabled: bool) -> None:
        self.epoch, self.epochs, self.enabled, self.bar = 1, epochs, enabled, None

    def __call__(self, done: int, total: int, loss: float | None = None) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=f"Epoch {self.epoch}/{self.epochs}", unit="batch", leave=False,
                            file=sys.stderr, mininterval=0.1)
        self.bar.update(done - self.bar.n)
        if loss is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        if done == total:
            self.close()
            self.epoch += 1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def epoch_line(r) -> str:
    """The notebook-style line for one epoch."""
    val = f", val acc {r.val_acc:.2%}" if r.val_acc is not None else ""
    return (f"Epoch {r.epoch}: train loss {r.train_loss:.4f}, train acc {r.train_acc:.2%}, "
            f"test loss {r.test_loss:.4f}, test acc {r.test_acc:.2%}{val} ({r.seconds:.2f}s)")


def cmd_train(args: argparse.Namespace) -> int:
    from engine.backends import prewarm_torch
    from engine.data import load_dataset
    from engine.model import build_model
    from engine.train import TrainingDiverged, train

    try:
        cfg = config_from_args(args)
        path = save_path(args.save) if args.save else None
    except ValueError as err:
        return fail(str(err))
    # PyTorch's import (and a GPU's start) overlaps the dataset's decompression, which releases the GIL
    warm = prewarm_torch(cfg.device) if cfg.backend == "torch" else None
    try:
        data = load_dataset(cfg.dataset)
    except (ValueError, ImportError, FileNotFoundError) as err:
        return fail(str(err))
    finally:
        if warm:
            warm.join()
    model = build_model(cfg, data.n_features, data.n_classes)
    if not args.json:
        print(f"{data!r}\n{model!r}\n{model.n_params:,} parameters, backend {cfg.backend}")
    progress = Progress(cfg.epochs, not args.quiet and not args.json and sys.stderr.isatty())
    started, done = time.perf_counter(), 0
    try:
        for r in train(cfg, data, model=model, on_batch=progress):
            done = r.epoch
            if args.json:
                print(json.dumps({"epoch": r.epoch, "train_loss": r.train_loss, "train_acc": r.train_acc,
                                  "test_loss": r.test_loss, "test_acc": r.test_acc, "val_loss": r.val_loss,
                                  "val_acc": r.val_acc, "seconds": round(r.seconds, 4)}), flush=True)
            else:
                print(epoch_line(r), flush=True)
    except TrainingDiverged as err:
        progress.close()
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    except (ValueError, ImportError) as err:
        progress.close()
        return fail(str(err))
    if not args.json:
        print(f"Trained {done} epoch{'s' * (done != 1)} in {time.perf_counter() - started:.2f} s")
    if path is not None:
        try:
            model.save(path)
        except OSError as err:
            return fail(f"could not save to {path}: {err.strerror or err}", 1)
        if not args.json:
            print(f"Saved to {path}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    for p in PRESETS.values():
        c = p.config
        print(f"{p.name:20} {c.layers_text()} {c.activation if c.hidden_sizes else ''} "
              f"{c.output}/{c.loss} {c.optimizer} lr {c.learning_rate:g} batch {c.batch_size} "
              f"{c.epochs} epochs, init {c.init}; reported {p.reported} ({p.source})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="MLP Lab's engine, headless.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    sub.add_parser("presets", help="list the tutorial presets").set_defaults(run=cmd_presets)
    t = sub.add_parser("train", help="train a network and print one line per epoch")
    add_config_arguments(t)
    t.add_argument("--save", metavar="PATH", help="save the trained weights and config to PATH (.npz)")
    t.add_argument("--json", action="store_true", help="print one JSON object per epoch")
    t.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    t.set_defaults(run=cmd_train)
    for module in SUBCOMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)
