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


def test_the_layer_grammar_parses_and_counts_like_the_layers_it_describes():
    from engine.config import layer_spec, n_parameters, parse_hidden_sizes

    assert parse_hidden_sizes("64, 16") == (64, 16) and parse_hidden_sizes("") == ()
    spec = layer_spec("144BN.3")
    assert (spec.kind, spec.size, spec.batch_norm, spec.dropout) == ("dense", 144, True, 0.3)
    conv = layer_spec("c32k5v")
    assert (conv.kind, conv.size, conv.kernel, conv.padding) == ("conv", 32, 5, "valid")
    assert layer_spec("p2").kind == "pool" and layer_spec("d.25").dropout == 0.25
    # The Keras tutorial's CNN on 28x28: conv 5x5x1x32 + 32, conv 2x2x32x64 + 64, 7*7*64 -> 1000, 1000 -> 10
    keras_cnn = ("c32k5", "p2", "c64k2", "p2", "d.25", 1000)
    assert n_parameters(keras_cnn) == (25 + 1) * 32 + (4 * 32 + 1) * 64 + (7 * 7 * 64 + 1) * 1000 + 1001 * 10
    assert n_parameters((64, 16)) == 785 * 64 + 65 * 16 + 17 * 10
    assert n_parameters(("c8k3v", "p2", 10), n_in=64, side=8) == (9 + 1) * 8 + (8 * 3 * 3 + 1) * 10 + 11 * 10


@pytest.mark.parametrize("tokens, words", [
    (("64", "abc"), "'abc' is not a whole number"), (("c32k30",), "kernels are 1x1 to 15x15"),
    (("1000", "c32k5"), "come before the dense ones"), (("c8k3",) + ("p2",) * 5, "below 1x1"),
    (("0",), "at least one unit"), (("9000",), "8192 units"), (("c8k9",), "larger than the 8x8 image"),
])
def test_bad_layers_are_explained(tokens, words):
    from engine.config import network_shapes

    with pytest.raises(ConfigError, match=words) as info:
        network_shapes(tokens, 8 if "c8k9" in tokens else 28)
    assert info.value.field == "hidden_sizes"


def test_layers_the_engine_cannot_build_yet_are_refused_with_a_reason():
    from engine.config import BUILT_KINDS, parse_hidden_sizes

    for text, kind in (("c32k5,100", "conv"), ("144bn", "batch_norm"), ("64.3", "dropout")):
        if kind not in BUILT_KINDS:
            with pytest.raises(ConfigError, match="not available yet"):
                parse_hidden_sizes(text)
    with pytest.raises(ConfigError, match="at most 10"):
        parse_hidden_sizes("64," * 11)
