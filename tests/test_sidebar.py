"""The sidebar through AppTest: sliders built from TrainConfig's metadata change the config, exact values survive the
link, classroom links lock and hide controls, the quick look, and bad links render with a notice on every page."""

import pytest
from streamlit.testing.v1 import AppTest

from engine import PRESETS
from engine.config import FIELDS, ConfigError, parse_value

APP = "../app.py"
PAGES = ("pages/train.py", "pages/results.py", "pages/compare.py", "pages/inside.py", "pages/draw.py",
         "pages/gradient_check.py", "pages/data.py", "pages/sweep.py", "pages/lessons.py")
DEFAULT = PRESETS["notebook-mse"].config


def app(page: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["follow_seconds"] = 0
    at.query_params.update(params)
    if page:
        at.switch_page(page)
    return at.run()


def config(at: AppTest):
    return at.session_state["config"]


def link(at: AppTest) -> dict[str, str]:
    """The address's query parameters (AppTest keeps a parameter set by the script as a list)."""
    return {k: v[-1] if isinstance(v, list) else v for k, v in at.query_params.items()}


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


@pytest.fixture(scope="module")
def default_app():
    return app()


@pytest.mark.parametrize("key, value, field, expected", [
    ("learning_rate_slider", 0.02, "learning_rate", 0.02),
    ("batch_size_slider", 1024, "batch_size", 1024),
    ("epochs_slider", 7, "epochs", 7),
    ("momentum_slider", 0.8, "momentum", 0.8),
    ("l2_slider", 1e-4, "l2", 1e-4),
    ("dropout_slider", 0.25, "dropout", 0.25),
    ("val_split_slider", 0.1, "val_split", 0.1),
    ("train_limit_slider", 5000, "train_limit", 5000),
    ("hidden_width_1", 128, "hidden_sizes", (64, 128)),
])
def test_each_slider_changes_the_config(default_app, key, value, field, expected):
    at, before = default_app, DEFAULT
    if field == "momentum":  # its slider is live for the momentum optimizer only
        at.selectbox(key="optimizer").set_value("momentum").run()
        before = DEFAULT.replace(optimizer="momentum")
    at.select_slider(key=key).set_value(value).run()
    assert not at.exception
    assert getattr(config(at), field) == expected
    assert config(at).replace(**{field: getattr(before, field)}) == before  # nothing else moved
    assert link(at)[field] == str(at.session_state[field])  # the link follows
    at.selectbox(key="preset").set_value("notebook-mse").run()  # the next case starts from the preset
    assert config(at) == DEFAULT


def test_the_depth_slider_adds_and_removes_layers_and_the_text_follows():
    at = app()
    at.slider(key="hidden_depth").set_value(4).run()
    assert config(at).hidden_sizes == (64, 16, 16, 16) and at.text_input(key="hidden_sizes").value == "64,16,16,16"
    at.slider(key="hidden_depth").set_value(0).run()
    assert config(at).hidden_sizes == () and not [s for s in at.select_slider if s.key.startswith("hidden_width")]
    at.text_input(key="hidden_sizes").set_value("300, 20").run()  # typed: the sliders follow, the text stays exact
    assert config(at).hidden_sizes == (300, 20)
    assert at.slider(key="hidden_depth").value == 2 and at.select_slider(key="hidden_width_0").value == 256
    at.text_input(key="hidden_sizes").set_value("c32k5,p2,144bn.3").run()  # the layer grammar: the text rules
    assert config(at).hidden_sizes == ("c32k5", "p2", "144bn.3")
    assert "text field above, which rules" in texts(at.sidebar.caption)
    assert not [s for s in at.select_slider if s.key.startswith("hidden_width")]


def test_every_field_has_a_widget_keyed_by_its_name_and_presets_fill_them():
    at = app()
    keys = {w.key for kind in ("selectbox", "number_input", "text_input") for w in getattr(at.sidebar, kind)}
    assert set(FIELDS) <= keys
    at.selectbox(key="preset").set_value("keras-mlp").run()
    assert config(at) == PRESETS["keras-mlp"].config
    assert at.select_slider(key="learning_rate_slider").value == 0.001
    assert at.select_slider(key="batch_size_slider").value == 100  # a preset's value is a step of its slider
    assert at.select_slider(key="hidden_width_0").value == 1000 and at.slider(key="hidden_depth").value == 1


def test_a_typed_exact_learning_rate_survives_the_link():
    at = app()
    at.number_input(key="learning_rate").set_value(0.0037).run()
    assert config(at).learning_rate == 0.0037
    assert at.select_slider(key="learning_rate_slider").value == 0.005  # the nearest step; the box keeps the digits
    assert link(at)["learning_rate"] == "0.0037"
    again = app(**link(at))
    assert not again.exception and config(again) == config(at) and not again.sidebar.warning
    assert again.number_input(key="learning_rate").value == 0.0037


def leaves(node):
    """The elements under an AppTest block, in the order the page draws them."""
    children = getattr(node, "children", None)
    if not children:
        yield node
        return
    for k in sorted(children):
        yield from leaves(children[k])


@pytest.mark.parametrize("key, value, sentence_of", [
    ("epochs", 5000, ("epochs", "5000")), ("learning_rate", -1.0, ("learning_rate", "-1")),
    ("dropout", 1.0, ("dropout", "1")), ("batch_size", 0, ("batch_size", "0")),
])
def test_a_bad_typed_value_gets_the_clis_sentence_under_its_field(key, value, sentence_of):
    at = app()
    at.number_input(key=key).set_value(value).run()
    with pytest.raises(ConfigError) as err:
        parse_value(*sentence_of)  # what `python -m engine train` says for the same value
    assert str(err.value) in texts(at.sidebar.error)
    order = list(leaves(at.sidebar))  # ...drawn right under the field's box, not elsewhere in the sidebar
    box = next(i for i, node in enumerate(order) if getattr(node, "key", None) == key)
    assert order[box + 1].type == "error" and order[box + 1].value == str(err.value)
    assert config(at) is None and at.button(key="train").disabled


def test_locked_controls_cannot_change_the_config_and_hidden_ones_are_not_shown():
    at = app(lock="learning_rate,loss,bogus", hide="backend,init", learning_rate="0.2", init="he")
    assert not at.exception
    assert "'bogus'" in texts(at.sidebar.warning)
    assert at.number_input(key="learning_rate").disabled and at.select_slider(key="learning_rate_slider").disabled
    assert at.selectbox(key="loss").disabled
    assert not [w for w in at.sidebar.selectbox if w.key in ("backend", "init")]
    at.session_state["learning_rate"] = 5.0  # what a crafted request could send past the disabled widgets
    at.session_state["loss"] = "cross_entropy"
    at.run()
    assert (config(at).learning_rate, config(at).loss, config(at).init) == (0.2, "mse", "he")
    at.selectbox(key="preset").set_value("keras-mlp").run()  # a preset fills the rest, not the locked ones
    cfg = config(at)
    assert (cfg.learning_rate, cfg.loss, cfg.hidden_sizes, cfg.init) == (0.2, "mse", (1000,), "xavier")
    assert link(at)["lock"] == "learning_rate,loss" and link(at)["hide"] == "backend,init"


def test_the_quick_look_trains_a_subset_for_three_epochs():
    at = app()
    at.toggle(key="quick_look").set_value(True).run()
    assert config(at) == DEFAULT.replace(train_limit=10_000, epochs=3)
    assert link(at)["quick_look"] == "1" and link(at)["epochs"] == "30"  # the learner's epochs kept
    at.toggle(key="quick_look").set_value(False).run()
    assert config(at) == DEFAULT


BAD = [dict(dropout="5"), dict(dropout="0.95"), dict(dropout="-1"), dict(dropout="inf"), dict(val_split="1.5"),
       dict(val_split="0.6"), dict(val_split="-1"), dict(val_split="inf"), dict(batch_size="99999999"),
       dict(epochs="1000000000"), dict(momentum="5"), dict(colour="red"), dict(preset="nope")]


@pytest.mark.parametrize("params", BAD, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_a_bad_link_renders_with_a_notice_naming_what_was_ignored(params):
    at = app(**params)
    assert not at.exception and at.button(key="train")  # the page is whole
    (key, value), = params.items()
    if (key, value) in (("dropout", "0.95"), ("val_split", "0.6")):  # allowed: used as given
        assert getattr(config(at), key) == float(value) and not at.sidebar.warning
    else:
        named = value if key in (*FIELDS, "preset") else key  # a bad value, or a key MLP Lab does not have
        assert f"'{named}'" in texts(at.sidebar.warning) and config(at) is not None
        assert config(at).batch_size == DEFAULT.batch_size and config(at).epochs == DEFAULT.epochs


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_a_bad_link_with_a_notice(page):
    at = app(page, dropout="5", val_split="inf", batch_size="99999999", momentum="5", colour="red", preset="nope")
    assert not at.exception
    notice = texts(at.sidebar.warning)
    for named in ("dropout='5'", "val_split='inf'", "batch_size='99999999'", "momentum='5'", "'colour'", "'nope'"):
        assert named in notice
    assert "Traceback" not in notice and "/work/" not in notice
    at.button(key="url_notices_dismiss").click().run()
    assert not at.sidebar.warning and not at.exception
