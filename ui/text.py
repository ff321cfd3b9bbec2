"""What the pages say, as pure functions: the runs table, words that depend on the dataset, error sentences."""

from __future__ import annotations

import pandas as pd

from ui.naming import value_text

NONE = "—"
ROW_PX, MAX_TABLE_ROWS = 35, 20  # the runs table shows up to 20 runs without scrolling, then scrolls


def images_word(class_names: tuple[str, ...]) -> str:
    """'digits' for the digit datasets, 'images' for the others (Fashion-MNIST's are clothes)."""
    return "digits" if tuple(class_names) == tuple(str(i) for i in range(10)) else "images"


def pct(value: float | None) -> str:
    return NONE if value is None else f"{value:.2%}"


def num(value: float | None, fmt: str) -> str:
    return NONE if value is None else format(value, fmt)


def runs_table(runs: list) -> pd.DataFrame:
    """One row a run, as text: every number in one format per column, '—' where there is none. The results
    come first, so the test accuracy shows without scrolling in a laptop window."""
    rows = []
    for r in runs:
        c, last = r.config, r.last
        rows.append({
            "run": r.name, "test acc": pct(last and last.test_acc), "train acc": pct(last and last.train_acc),
            "status": r.status, "epochs": r.epochs_text(),
            "test loss": num(last and last.test_loss, ".4f"), "train loss": num(last and last.train_loss, ".4f"),
            "dataset": c.dataset, "layers": c.layers_text("in", "out"),
            "activation": c.activation if c.hidden_sizes else NONE, "output / loss": f"{c.output} / {c.loss}",
            "optimizer": c.optimizer, "lr": f"{c.learning_rate:g}", "batch": str(c.batch_size), "init": c.init,
            "dropout": f"{c.dropout:g}", "L2": f"{c.l2:g}", "val split": f"{c.val_split:g}",
            "subset": value_text("train_limit", c.train_limit), "seed": str(c.seed),
            "input scaling": c.input_scaling, "parameters": f"{r.n_params:,}",
            "s / epoch": num(r.seconds_per_epoch, ".2f"), "total s": num(r.wall_seconds or None, ".1f"),
            "backend": c.backend,
        })
    return pd.DataFrame(rows)


def upload_error(file_name: str, err: Exception) -> str:
    """The upload's error as one sentence, whatever punctuation the reason ends with."""
    reason = str(err).rstrip()
    return f"{file_name} could not be loaded: {reason}{'' if reason[-1:] in '.?!' else '.'} Your runs are unchanged."


def table_height(n_rows: int) -> int:
    """Pixels for n_rows under a header: all of them up to MAX_TABLE_ROWS (Streamlit's default shows 10)."""
    return ROW_PX * (min(n_rows, MAX_TABLE_ROWS) + 1) + 3
