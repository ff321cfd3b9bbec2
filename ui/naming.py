"""Run names: the preset a run started from plus what differs from it, e.g. "keras-mlp · dropout 0.3"."""

from __future__ import annotations

from engine import PRESETS, TrainConfig

USER_FIELDS = ("backend", "device", "seed")  # a preset leaves these as the learner set them
SHORT = {"hidden_sizes": "hidden", "learning_rate": "lr", "batch_size": "batch", "val_split": "val split",
         "train_limit": "subset", "input_scaling": "inputs", "l2": "L2"}


def value_text(field: str, value) -> str:
    if field == "hidden_sizes":
        return "-".join(str(h) for h in value) or "none"
    if field == "train_limit":
        return "all" if not value else f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    return str(value)


def config_diff(cfg: TrainConfig, preset: str) -> list[str]:
    """What cfg changes in the preset, as 'field value' phrases in TrainConfig's field order."""
    base = PRESETS[preset].config
    return [f"{SHORT.get(f, f)} {value_text(f, getattr(cfg, f))}" for f in cfg.to_dict()
            if f not in USER_FIELDS and getattr(cfg, f) != getattr(base, f)]


def closest_preset(cfg: TrainConfig) -> str:
    """The preset with the fewest differences (what a custom setup is named after)."""
    return min(PRESETS, key=lambda name: len(config_diff(cfg, name)))


def run_label(cfg: TrainConfig, preset: str | None = None) -> str:
    """'keras-mlp', 'keras-mlp · dropout 0.3, lr 0.003', or for no preset the one it is closest to."""
    preset = preset if preset in PRESETS else closest_preset(cfg)
    diff = config_diff(cfg, preset)
    return preset + (" · " + ", ".join(diff) if diff else "")
