"""TrainConfig's field metadata is the one source of truth: CLI flags, validation sentences, registries."""

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import PRESETS, TrainConfig
from engine.cli import build_parser, config_from_args
from engine.config import FIELDS, ConfigError, cli_flag, describe, parse_value
from engine.data import DATASETS, INPUT_SCALINGS
from engine.layers import ACTIVATIONS
from engine.losses import LOSSES, OUTPUTS
from engine.model import INITS
from engine.optim import OPTIMIZERS

ROOT = Path(__file__).resolve().parent.parent


def test_every_field_has_a_label_help_and_a_cli_flag():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    flags = {opt for action in train._actions for opt in action.option_strings}
    for name in FIELDS:
        m = describe(name)
        assert m["label"] and m["help"], name
        assert cli_flag(name) in flags, name


def test_choices_match_the_engine_registries():
    """A value the sidebar or CLI offers is one the engine can build, and every engine option is offered."""
    registries = {"dataset": DATASETS, "activation": ACTIVATIONS, "output": OUTPUTS, "loss": LOSSES,
                  "optimizer": OPTIMIZERS, "init": INITS, "input_scaling": INPUT_SCALINGS}
    for name, registry in registries.items():
        assert set(describe(name)["choices"]) == set(registry), name


def test_every_preset_round_trips_through_the_cli_flags():
    for preset in PRESETS.values():
        cfg = preset.config
        argv = ["train"]
        for name, value in cfg.to_dict().items():
            if value is None:
                continue
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            argv += [f"{cli_flag(name)}={text}"]
        assert config_from_args(build_parser().parse_args(argv)) == cfg


@pytest.mark.parametrize("flag, text, field", [("--dropout", "5", "dropout"), ("--val-split", "inf", "val_split"),
                                               ("--batch-size", "99999999", "batch_size"),
                                               ("--momentum", "1", "momentum"), ("--betas", "0.9", "betas"),
                                               ("--epochs", "0", "epochs"), ("--lr", "nan", "learning_rate")])
def test_a_bad_value_gives_the_same_sentence_in_the_cli_and_the_config(flag, text, field):
    with pytest.raises(ConfigError) as info:
        parse_value(field, text)
    assert info.value.field == field
    out = subprocess.run([sys.executable, "-m", "engine", "train", f"{flag}={text}"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert str(info.value) in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_config_errors_name_their_field():
    for changes, field in [(dict(dropout=0.95 + 0.1), "dropout"), (dict(hidden_sizes=(0,)), "hidden_sizes"),
                           (dict(output="linear", loss="cross_entropy"), "loss"), (dict(seed=-1), "seed"),
                           (dict(epochs=2.5), "epochs"), (dict(backend="jax"), "backend")]:
        with pytest.raises(ConfigError) as info:
            TrainConfig(**changes)
        assert info.value.field == field, changes


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(list(FIELDS)), text=st.text(max_size=30))
def test_any_text_for_any_field_is_a_value_or_a_config_error(name, text):
    try:
        value = parse_value(name, text)
    except ConfigError as err:
        assert err.field == name and str(err)
    else:
        TrainConfig().replace(**{name: value}) if name != "hidden_sizes" or len(value) else None
