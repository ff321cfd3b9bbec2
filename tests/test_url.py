"""The share link's decoder (ui/url.py) without Streamlit: any query string gives a valid setup or a notice, never an
exception; a setup survives the round trip; what a link asks for that cannot be used is named."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import PRESETS, TrainConfig
from engine.config import FIELDS, ConfigError, parse_value
from ui.url import CUSTOM, SETTINGS, decode, encode, widget_values

LESSONS = ("mse-vs-ce", "overfitting")
KEYS = st.sampled_from([*FIELDS, "preset", "lock", "hide", "lesson", "quick_look", "ws", "nonsense"]) | st.text(
    max_size=12)
NUMBERISH = st.sampled_from(["5", "0.95", "-1", "inf", "-inf", "nan", "1e999", "0", "1.5", "0.6", "99999999",
                             "1000000000", "64,16", "144bn.3,c32k5", "", " ", "9" * 5000, "csv-x", "learning_rate,xx"])
VALUES = NUMBERISH | st.text(max_size=30) | st.integers(-10**12, 10**12).map(str) | st.floats().map(str) | (
    st.sampled_from([*PRESETS, CUSTOM, *LESSONS, "mnist", "adam", "torch", "he", "softmax", "cross_entropy"]))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_any_query_string_gives_a_valid_setup_or_a_notice(params):
    link = decode(params, LESSONS)
    assert link.config is not None or link.notices
    if link.config is not None:
        assert widget_values(link.config) == link.values  # the widgets show exactly the setup
    for name, text in params.items():
        if name in FIELDS and link.config is not None:
            try:
                value = parse_value(name, text)
            except (ConfigError, ValueError):
                assert any(repr(name) in n or f"{name}=" in n for n in link.notices)  # named, not silently changed
            else:
                if not any(f"{name}=" in n for n in link.notices):
                    assert getattr(link.config, name) == value  # used as given
    assert set(link.locked) <= set(SETTINGS) and set(link.hidden) <= set(SETTINGS)
    assert link.lesson in (None, *LESSONS)
    for notice in link.notices:
        assert "Traceback" not in notice and "/work/" not in notice and len(notice) < 1200


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(list(PRESETS)), st.floats(1e-6, 10), st.integers(1, 60000), st.floats(0, 0.99),
       st.sampled_from([(), (64,), (144, 16), ("144bn.3", 16)]))
def test_a_setup_survives_the_round_trip(name, lr, batch, dropout, hidden):
    cfg = PRESETS[name].config.replace(learning_rate=lr, batch_size=batch, dropout=dropout, hidden_sizes=hidden,
                                       dataset="mnist", input_scaling="unit")
    link = decode(encode(widget_values(cfg), name, ["learning_rate"], ["backend"], "overfitting", True), LESSONS)
    assert link.config == cfg and not link.notices
    assert (link.preset, link.locked, link.hidden, link.lesson, link.quick_look) == (
        name, ("learning_rate",), ("backend",), "overfitting", True)


def test_an_exact_learning_rate_keeps_every_digit():
    assert decode(encode(widget_values(TrainConfig(learning_rate=0.0037)), CUSTOM)).config.learning_rate == 0.0037


@pytest.mark.parametrize("params, named", [
    ({"dropout": "5"}, "dropout='5'"), ({"dropout": "-1"}, "dropout='-1'"), ({"dropout": "inf"}, "dropout='inf'"),
    ({"val_split": "1.5"}, "val_split='1.5'"), ({"val_split": "-1"}, "val_split='-1'"),
    ({"val_split": "inf"}, "val_split='inf'"), ({"batch_size": "99999999"}, "between 1 and 60000"),
    ({"epochs": "1000000000"}, "between 1 and 1000"), ({"momentum": "5"}, "momentum='5'"),
    ({"colour": "red", "size": "9"}, "'colour', 'size' are not settings"), ({"preset": "nope"}, "preset 'nope'"),
    ({"lock": "learning_rate,bogus"}, "'bogus'"), ({"hide": "nothing"}, "'nothing'"),
    ({"lesson": "astrology"}, "lesson 'astrology'"), ({"loss": "cross_entropy", "output": "linear"}, "loss="),
])
def test_what_a_link_cannot_use_is_named_and_the_rest_is_used(params, named):
    link = decode({**params, "learning_rate": "0.25"}, LESSONS)
    assert any(named in n for n in link.notices), link.notices
    assert link.config is not None and link.config.learning_rate == 0.25  # the rest of the link still counts
    if "batch_size" in params:
        assert link.config.batch_size == PRESETS["notebook-mse"].config.batch_size  # the preset's, not 1


def test_values_in_range_but_beyond_a_slider_are_kept():
    link = decode({"dropout": "0.95", "val_split": "0.6", "epochs": "500", "hidden_sizes": "4096"})
    assert not link.notices
    assert (link.config.dropout, link.config.val_split, link.config.epochs, link.config.hidden_sizes) == (
        0.95, 0.6, 500, (4096,))


def test_a_preset_link_fills_every_field_and_user_fields_come_from_the_link():
    link = decode({"preset": "keras-mlp", "seed": "7"})
    assert link.config == PRESETS["keras-mlp"].config.replace(seed=7)
