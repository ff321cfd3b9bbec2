"""The Sweep page through AppTest: a 2-D grid on digits trains live as runs, the views fill in, the best point
opens in the sidebar; a bad value is named under its row; a Ray address without Ray says how to install it."""

import os
import time

import pytest
from streamlit.testing.v1 import AppTest

from engine import TrainConfig
from engine.sweep import ray_available
from ui import state

APP = "../app.py"
SETUP = dict(dataset="digits", hidden_sizes="16", activation="tanh", output="softmax", loss="cross_entropy",
             optimizer="sgd", learning_rate=0.3, batch_size=64, epochs=2, init="xavier", val_split=0.2)


def new_app(**changes) -> AppTest:
    """The app with SETUP (and `changes`) in the sidebar, on the Sweep page."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["follow_seconds"] = 0  # live views draw once per run; the test polls
    at.run()
    for key, value in {**SETUP, **changes}.items():
        next(w for kind in ("selectbox", "number_input", "text_input", "slider")
             for w in getattr(at, kind) if w.key == key).set_value(value)
    at.run()
    return at.switch_page("pages/sweep.py").run()


def grid(at: AppTest, *rows: tuple[str, str]) -> AppTest:
    for i, (name, values) in enumerate(rows):
        at.selectbox(key=f"{state.SWEEP_FIELD}_{i}").set_value(name).run()  # its values box opens
        at.text_input(key=f"{state.SWEEP_VALUES}_{i}").set_value(values)
    for i in range(len(rows), 3):
        at.selectbox(key=f"{state.SWEEP_FIELD}_{i}").set_value("")
    return at.run()


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_the_page_renders_and_names_a_bad_value_under_its_row():
    at = new_app()
    assert not at.exception
    assert at.title[0].value == "Sweep"
    at = grid(at, ("learning_rate", "0.1,-2"), ("batch_size", "32,64"))
    assert "Learning rate must be a positive number (got -2)" in texts(at.error)
    assert at.button(key=state.SWEEP_START).disabled


def test_a_2d_sweep_trains_live_as_runs_and_its_best_point_opens_in_the_sidebar():
    at = grid(new_app(), ("learning_rate", "0.05,0.5"), ("hidden_sizes", "8;16,8"))
    assert "4 points × 2 epochs" in texts(at.caption)
    at.button(key=state.SWEEP_START).click().run()
    assert not at.exception
    sweep = at.session_state[state.SWEEPS][-1]
    assert len(at.session_state["runs"]) == 4  # every point is a run of the session
    deadline = time.monotonic() + 120
    while sweep.in_progress and time.monotonic() < deadline:
        time.sleep(0.5)
    at.run()
    assert not at.exception
    runs = list(sweep.runs.values())
    assert [r.status for r in runs] == ["finished"] * 4 and all(r.epochs_done == 2 for r in runs)
    assert runs[3].config == TrainConfig(**{**SETUP, "hidden_sizes": (16, 8), "learning_rate": 0.5})
    assert len(at.get("vega_lite_chart")) == 3  # heatmap, small multiples, parallel coordinates
    best_point, best_run = sweep.best("val_acc")
    assert best_run.last.val_acc == max(r.last.val_acc for r in runs)
    assert f"Best so far: {best_point.label}" in texts(at.markdown)
    assert list(at.dataframe[0].value["status"]) == ["finished"] * 4
    for other in ("pages/results.py", "pages/compare.py", "pages/inside.py"):  # the points are runs there too
        at.switch_page(other).run()
        assert not at.exception, other
    at.switch_page("pages/sweep.py").run()
    at.button(key=state.SWEEP_OPEN_BEST).click().run()
    assert "The sidebar now holds the best point's setup" in texts(at.success)
    at.switch_page("app.py").run()  # the whole app, sidebar included (AppTest runs a page file alone)
    assert at.session_state[state.CONFIG] == best_run.config


def test_a_3_field_grid_shows_the_mean_over_the_third_and_every_view():
    at = grid(new_app(epochs=1), ("learning_rate", "0.1,0.5"), ("batch_size", "32"), ("seed", "0,1"))
    at.button(key=state.SWEEP_START).click().run()
    sweep = at.session_state[state.SWEEPS][-1]
    sweep.join(120)
    at.run()
    assert not at.exception
    assert "Each cell is the mean over the other settings' values." in texts(at.caption)
    assert len(at.get("vega_lite_chart")) == 3
    assert list(at.dataframe[0].value["Seed"]) == ["0", "1", "0", "1"]


def test_cancel_stops_every_point_and_keeps_its_epochs():
    at = grid(new_app(epochs=1000), ("learning_rate", "0.05,0.1,0.2"))
    at.button(key=state.SWEEP_START).click().run()
    sweep = at.session_state[state.SWEEPS][-1]
    deadline = time.monotonic() + 60
    while not any(r.history for r in sweep.runs.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    at.run()
    assert sweep.in_progress, [(r.status, r.epochs_done, r.message) for r in sweep.runs.values()]
    at.button(key=state.SWEEP_CANCEL).click().run()
    sweep.join(60)
    at.run()
    assert not at.exception
    assert {r.status for r in sweep.runs.values()} == {"stopped"}
    assert any(0 < r.epochs_done < 1000 for r in sweep.runs.values())
    assert "3 stopped" in at.get("progress")[0].proto.text


@pytest.mark.skipif(ray_available(), reason="Ray is installed here")
def test_a_ray_cluster_without_ray_says_how_to_install_it():
    at = grid(new_app(), ("learning_rate", "0.1,0.2"))
    at.radio(key=state.SWEEP_WHERE).set_value("A Ray cluster").run()
    assert 'pip install "ray[default]==' in texts(at.error)
    assert at.button(key=state.SWEEP_START).disabled


def test_an_unreachable_ray_address_is_said_and_nothing_trains():
    if not ray_available():
        pytest.skip('Ray is optional: pip install "ray[default]==2.60.0"')
    at = grid(new_app(), ("learning_rate", "0.1,0.2"))
    at.radio(key=state.SWEEP_WHERE).set_value("A Ray cluster").run()
    at.text_input(key=state.SWEEP_RAY_ADDRESS).set_value("127.0.0.1:9").run()
    at.button(key=state.SWEEP_START).click().run()
    sweep = at.session_state[state.SWEEPS][-1]
    sweep.join(30)
    at.run()
    assert not at.exception
    assert "No Ray cluster answers at 127.0.0.1:9" in texts(at.error)
    assert {r.status for r in sweep.runs.values()} == {"failed"}


@pytest.mark.slow
def test_a_sweep_on_a_local_ray_head_from_the_app():
    if not ray_available():
        pytest.skip('Ray is optional: pip install "ray[default]==2.60.0"')
    from test_sweep import free_port

    from engine.sweep import local_ray_head

    with local_ray_head(num_cpus=2, port=free_port()) as address:
        at = grid(new_app(), ("learning_rate", "0.1,0.5"), ("batch_size", "32,64"))
        at.radio(key=state.SWEEP_WHERE).set_value("A Ray cluster").run()
        at.text_input(key=state.SWEEP_RAY_ADDRESS).set_value(address).run()
        at.button(key=state.SWEEP_START).click().run()
        sweep = at.session_state[state.SWEEPS][-1]
        sweep.join(180)
        at.run()
        assert not at.exception and not sweep.message
        assert [r.status for r in sweep.runs.values()] == ["finished"] * 4
        assert f"on the Ray cluster at {address}" in at.get("progress")[0].proto.text


@pytest.mark.slow
@pytest.mark.browser
def test_in_the_browser_a_2d_sweep_fills_in_and_ends_with_its_views():
    """Served for real: the default grid (learning rate x batch size) on digits; a screenshot to look at."""
    pytest.importorskip("playwright.sync_api")
    from test_browser import CHROMIUM, serve, shot

    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    setup = ("preset=custom&dataset=digits&hidden_sizes=16&activation=tanh&output=softmax&loss=cross_entropy"
             "&learning_rate=0.3&batch_size=64&epochs=4&init=xavier&val_split=0.2")
    with serve() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        page.goto(f"{url}/sweep?{setup}")
        start = page.get_by_role("button", name="Start the sweep")
        start.wait_for(timeout=60_000)
        page.get_by_text("6 points × 4 epochs of digits").wait_for()
        start.click()
        page.get_by_text("6/6 points done").wait_for(timeout=180_000)
        page.get_by_text("Best so far:").wait_for(timeout=30_000)
        page.get_by_test_id("stVegaLiteChart").nth(2).locator("canvas, svg").first.wait_for(timeout=30_000)
        time.sleep(1.5)  # let vega draw
        assert page.get_by_test_id("stException").count() == 0
        shot(page, "sweep-2d")
        browser.close()
