"""Headless entry point: `python -m engine train ...`, `python -m engine presets`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.backends import prewarm_torch
from engine.config import BACKENDS, DEVICES, INITS, PRESETS, TrainConfig, parse_hidden_sizes
from engine.data import DATASETS, INPUT_SCALINGS, load_dataset
from engine.layers import ACTIVATIONS
from engine.losses import LOSSES, OUTPUTS
from engine.model import build_model
from engine.optim import OPTIMIZERS
from engine.train import TrainingDiverged, train


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        return parse_hidden_sizes(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m engine", description="MLP Lab's engine, headless.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("presets", help="list the tutorial presets")
    t = sub.add_parser("train", help="train a network and print one line per epoch")
    t.add_argument("--preset", choices=list(PRESETS), help="start from a tutorial's setup")
    t.add_argument("--dataset", choices=list(DATASETS))
    t.add_argument("--hidden", type=_hidden, metavar="SIZES", help="hidden layer widths, e.g. 64,16 ('' for none)")
    t.add_argument("--activation", choices=list(ACTIVATIONS))
    t.add_argument("--output", choices=OUTPUTS)
    t.add_argument("--loss", choices=LOSSES)
    t.add_argument("--optimizer", choices=list(OPTIMIZERS))
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--momentum", type=float)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--epochs", type=int)
    t.add_argument("--init", choices=INITS)
    t.add_argument("--input-scaling", choices=INPUT_SCALINGS, help="unit: pixels/255; standardize: then (x-mean)/std")
    t.add_argument("--l2", type=float, help="L2 weight decay")
    t.add_argument("--dropout", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--val-split", type=float, help="fraction of training data held out for validation")
    t.add_argument("--train-limit", type=int, help="train on a random subset of this many examples")
    t.add_argument("--backend", choices=BACKENDS)
    t.add_argument("--device", choices=DEVICES)
    t.add_argument("--save", metavar="PATH", help="save the trained weights and config to PATH (.npz)")
    t.add_argument("--json", action="store_true", help="print one JSON object per epoch")
    t.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    return parser


FLAG_TO_FIELD = {"hidden": "hidden_sizes", "lr": "learning_rate"}
FIELDS = ("dataset", "hidden", "activation", "output", "loss", "optimizer", "lr", "momentum", "batch_size",
          "epochs", "init", "input_scaling", "l2", "dropout", "seed", "val_split", "train_limit", "backend", "device")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    base = PRESETS[args.preset].config if args.preset else TrainConfig()
    changes = {FLAG_TO_FIELD.get(f, f): getattr(args, f) for f in FIELDS if getattr(args, f) is not None}
    return base.replace(**changes)


class _Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, epoch: int, epochs: int, enabled: bool) -> None:
        self.epoch, self.epochs, self.enabled, self.last = epoch, epochs, enabled, 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and done < total):
            return
        self.last = now
        filled = int(30 * done / total)
        sys.stderr.write(f"\rEpoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        if done == total:
            sys.stderr.write("\r" + " " * 70 + "\r")
        sys.stderr.flush()


def cmd_train(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
    except ValueError as err:
        print(f"python -m engine: error: {err}", file=sys.stderr)
        return 2
    # PyTorch's import (and a GPU's start) overlaps the dataset's decompression, which releases the GIL
    warm = prewarm_torch(cfg.device) if cfg.backend == "torch" else None
    try:
        data = load_dataset(cfg.dataset)
    except (ValueError, ImportError, FileNotFoundError) as err:
        print(f"python -m engine: error: {err}", file=sys.stderr)
        return 2
    finally:
        if warm:
            warm.join()
    model = build_model(cfg, data.n_features, data.n_classes)
    if not args.json:
        print(f"{data!r}\n{model!r}\n{model.n_params:,} parameters, backend {cfg.backend}")
    progress = _Progress(1, cfg.epochs, not args.quiet and sys.stderr.isatty())
    started = time.perf_counter()
    try:
        for r in train(cfg, data, model=model, on_batch=progress):
            progress.epoch = r.epoch + 1
            if args.json:
                print(json.dumps({"epoch": r.epoch, "train_loss": r.train_loss, "train_acc": r.train_acc,
                                  "test_loss": r.test_loss, "test_acc": r.test_acc, "val_loss": r.val_loss,
                                  "val_acc": r.val_acc, "seconds": round(r.seconds, 4)}), flush=True)
            else:
                val = f", val acc {r.val_acc:.2%}" if r.val_acc is not None else ""
                print(f"Epoch {r.epoch}: train loss {r.train_loss:.4f}, train acc {r.train_acc:.2%}, "
                      f"test loss {r.test_loss:.4f}, test acc {r.test_acc:.2%}{val} ({r.seconds:.2f}s)",
                      flush=True)
    except TrainingDiverged as err:
        print(f"python -m engine: {err}", file=sys.stderr)
        return 1
    except (ValueError, ImportError) as err:
        print(f"python -m engine: error: {err}", file=sys.stderr)
        return 2
    if not args.json:
        done = progress.epoch - 1
        print(f"Trained {done} epoch{'s' * (done != 1)} in {time.perf_counter() - started:.2f} s")
    if args.save:
        model.save(args.save)
        if not args.json:
            print(f"Saved to {args.save}")
    return 0


def cmd_presets() -> int:
    for p in PRESETS.values():
        c = p.config
        print(f"{p.name:20} {c.layers_text()} {c.activation if c.hidden_sizes else ''} "
              f"{c.output}/{c.loss} {c.optimizer} lr {c.learning_rate:g} batch {c.batch_size} "
              f"{c.epochs} epochs, init {c.init}; reported {p.reported} ({p.source})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cmd_presets() if args.command == "presets" else cmd_train(args)


if __name__ == "__main__":
    sys.exit(main())
