"""The real thing: Streamlit served on 127.0.0.1, driven by Playwright in Debian's Chromium.

Chooses a preset, shortens it, trains, opens Results, clicks a confusion-matrix cell and sees its
digits. Screenshots of each page land in artifacts/screenshots/ to look at.
"""

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve():
    """`streamlit run app.py` on a free local port, freshly started; yields its URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"streamlit did not start: {proc.stderr.read()[-2000:]}")
            time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def server():
    with serve() as url:
        yield url


@contextlib.contextmanager
def chromium_page(height: int, **page_options):
    """A page of Debian's Chromium (headless, nothing fetched from outside), 1400 pixels wide."""
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": height}, **page_options)
        finally:
            browser.close()


@pytest.fixture(scope="module")
def page(server):
    with chromium_page(2400) as pg:
        yield pg


# The README's pictures, refreshed from these shots each time the browser tests run, so they stay current:
# the window as a visitor first sees it (docs/<page>.png), besides the whole page in artifacts/.
DOCS = ROOT / "docs"
README_SHOTS = {"1-train": "train", "2-results": "results", "5-compare-experiment": "compare",
                "inside-1-epoch6": "inside", "draw-1-canvas": "draw", "draw-4-gradcheck": "gradient-check",
                "sweep-2d": "sweep", "data-1-wine": "data", "lesson-mse-vs-ce": "lessons"}


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    if name in README_SHOTS:
        DOCS.mkdir(exist_ok=True)
        window = {"x": 0, "y": 0, "width": 1400, "height": 1000}
        page.screenshot(path=str(DOCS / f"{README_SHOTS[name]}.png"), clip=window)


def choose(page, label: str, option: str) -> None:
    page.get_by_test_id("stSelectbox").filter(has_text=label).first.click()
    page.get_by_role("option", name=option).first.click()


def heat_map_area(chart) -> tuple[float, float, float, float]:
    """Page coordinates of the confusion matrix's cells: the box around its dark-blue diagonal."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(chart.screenshot())).convert("RGB")).astype(int)
    dark_blue = (rgb[..., 2] - rgb[..., 0] > 60) & (rgb[..., 0] < 150)
    rows, cols = np.flatnonzero(dark_blue.any(axis=1)), np.flatnonzero(dark_blue.any(axis=0))
    box = chart.bounding_box()
    return box["x"] + cols[0], box["y"] + rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1


def test_preset_train_results_click_a_confusion_cell(server, page):
    page.goto(server + "/")
    page.get_by_text("Build a multilayer perceptron").wait_for(timeout=30_000)
    choose(page, "Preset", "softmax-regression")
    page.get_by_text("Preset softmax-regression").wait_for()
    epochs = page.get_by_role("spinbutton", name="Epochs")
    epochs.fill("1")
    epochs.press("Enter")
    page.get_by_text("(modified: epochs 1)").wait_for()
    assert "epochs=1" in page.url and "hidden_sizes=&" in page.url  # the link encodes the setup
    more = page.get_by_text("More options")
    more.click()
    dropout = page.get_by_test_id("stSlider").filter(has_text="Dropout")
    dropout.wait_for()
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Finished: 1/1 epochs done").wait_for(timeout=120_000)
    time.sleep(1.0)
    assert dropout.is_visible()  # issue 14, item 12: the run did not fold "More options"
    page.get_by_test_id("stVegaLiteChart").locator("canvas, svg").first.wait_for(timeout=30_000)  # the curves
    time.sleep(1.0)  # let vega draw
    shot(page, "1-train")

    page.get_by_role("link", name="Results").click()
    page.get_by_text("Confusion matrix").wait_for(timeout=30_000)
    page.get_by_text("Click a cell of the matrix").wait_for()
    assert dropout.is_visible()  # ...nor did the page change
    chart = page.get_by_test_id("stVegaLiteChart").last
    chart.scroll_into_view_if_needed()
    time.sleep(1.0)  # let vega draw
    left, top, width, height = heat_map_area(chart)
    true, pred = 1, 1  # the fullest cell: ones recognised as ones
    page.mouse.click(left + (pred + 0.5) * width / 10, top + (true + 0.5) * height / 10)
    page.get_by_text("True 1, predicted 1:").wait_for(timeout=30_000)
    gallery = page.get_by_test_id("stImage").last.locator("img")
    gallery.scroll_into_view_if_needed()
    shown, natural = gallery.evaluate("img => [img.clientWidth, img.naturalWidth]")
    assert shown >= 0.9 * natural  # item 11: the cell's gallery is not shrunk, so its captions stay readable
    shot(page, "2-results")
    charts = page.get_by_test_id("stVegaLiteChart").count()
    choose(page, "See a mistake's ten outputs", re.compile(r"^test image \d+: predicted"))
    page.get_by_test_id("stVegaLiteChart").nth(charts).wait_for(timeout=30_000)  # its ten outputs, as bars
    time.sleep(1.0)  # let vega draw
    shot(page, "2b-results-mistake-outputs")

    page.get_by_role("link", name="Compare").click()
    page.get_by_text("Download a run").wait_for(timeout=30_000)
    page.get_by_test_id("stDownloadButton").first.wait_for(timeout=30_000)  # drawn, not a placeholder, in the shot
    shot(page, "3-compare")


def test_a_link_to_a_page_is_the_first_visit_after_a_start(page):
    """Until app.py has run once, Streamlit runs a pages/ file on its own: the page must hand over to app.py."""
    with serve() as url:
        page.goto(url + "/results?preset=keras-mlp")
        page.get_by_text("No results yet").wait_for(timeout=30_000)
        page.get_by_text("Preset keras-mlp").wait_for()  # app.py's sidebar, filled from the link
        assert page.get_by_test_id("stException").count() == 0
        assert page.get_by_role("link", name="app", exact=True).count() == 0  # app.py's navigation, not the folder's
        assert page.get_by_role("link", name="Compare", exact=True).count() == 1


def test_compare_and_results_follow_runs_without_a_click(server, page):
    """Runs started from Compare draw their curves as they learn; when they end, Compare and Results show it
    and the sidebar unlocks, with no click from the learner."""
    page.goto(server + "/compare?preset=pytorch-mlp&epochs=12")  # the sidebar's setup, for the run from Train
    experiment = page.get_by_role("button", name="Run the notebook experiment")
    experiment.wait_for(timeout=30_000)
    experiment.click()
    page.get_by_text("Some runs are still training").wait_for(timeout=30_000)
    page.get_by_text("Settings are locked").wait_for()
    page.get_by_test_id("stVegaLiteChart").first.wait_for(timeout=60_000)  # an epoch in: the overlay appears live
    page.get_by_test_id("stDownloadButton").nth(1).wait_for(timeout=180_000)  # both runs done: both zips offered
    assert page.get_by_text("Some runs are still training").count() == 0
    assert page.get_by_text("Settings are locked").count() == 0
    page.get_by_text("loss", exact=True).click()  # MSE and cross-entropy: a chart each (issue 14, item 10)
    page.get_by_text("different units").wait_for(timeout=30_000)
    time.sleep(1.0)  # let vega draw
    shot(page, "5-compare-experiment")

    page.get_by_role("link", name="Train", exact=True).click()
    page.get_by_text("Build a multilayer perceptron").wait_for(timeout=30_000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text(re.compile(r"^\d+/12$")).wait_for(timeout=60_000)  # the new run's first epoch is in
    page.get_by_role("link", name="Results").click()
    page.get_by_text("still training").wait_for(timeout=30_000)
    page.get_by_text("Finished: 12/12 epochs done").wait_for(timeout=180_000)
    assert page.get_by_text("Settings are locked").count() == 0


def test_the_data_page_shows_a_table_and_trains_on_it(server, page):
    """The Data page served: scikit-learn's wine table (its rows, classes and feature ranges drawn as tables), and
    the sidebar's network trained on it from there, followed on Train."""
    page.goto(server + "/data")
    page.get_by_role("heading", name="Data").first.wait_for(timeout=60_000)
    page.get_by_text("124 training rows and 54 test rows").wait_for(timeout=30_000)  # wine: 178 rows, 70/30
    page.get_by_test_id("stDataFrame").nth(2).wait_for(timeout=30_000)  # classes, feature ranges, the first rows
    time.sleep(1.0)  # let the tables draw
    shot(page, "data-1-wine")
    page.get_by_role("button", name=re.compile("^Train the sidebar's network")).click()
    page.get_by_text("Watch it on the Train page").click()
    page.get_by_text(re.compile(r"Finished: (\d+)/\1 epochs done")).wait_for(timeout=120_000)
    assert page.get_by_test_id("stException").count() == 0


PATHS = {"Train": ("/", "/training"), "Results": ("/results",), "Compare": ("/compare",)}


def test_the_address_follows_navigation_and_edits_while_runs_train(page):
    """Issue 14, items 1 and 2, on a loaded machine: the notebook experiment's two runs train while the learner moves
    between pages; a second learner's edit reaches the address at once. (A browser timer's rerun request, folded
    into a navigation or an edit, used to bring back the old page or value.)"""
    from urllib.parse import parse_qs, urlparse

    with serve() as url:
        page.goto(url + "/compare")
        experiment = page.get_by_role("button", name="Run the notebook experiment")
        experiment.click(timeout=120_000)  # a first visit loads MNIST: slow on a busy machine
        page.get_by_text("Some runs are still training").wait_for(timeout=60_000)
        page.get_by_role("link", name="Train", exact=True).click()
        page.get_by_text("Training now").wait_for(timeout=30_000)  # item 7: the sidebar says what trains...
        page.get_by_text("learning rate 0.5").first.wait_for()
        page.get_by_text(re.compile(r"Epochs done \d+/30")).nth(1).wait_for(timeout=60_000)  # ...the page follows both
        time.sleep(1.0)
        shot(page, "4-train-two-runs")
        wrong = []
        for i, name in enumerate(["Results", "Compare", "Train", "Results", "Train", "Compare", "Results", "Compare",
                                  "Train"]):
            page.get_by_role("link", name=name, exact=True).click()
            page.get_by_role("heading", name=name, exact=True).first.wait_for(timeout=30_000)
            time.sleep((0.1, 1.2, 3.2)[i % 3])  # long enough for a live view's redraws to cross the next click
            if urlparse(page.url).path not in PATHS[name]:
                wrong.append((name, page.url))
        assert not wrong, wrong

        other = page.context.browser.new_page(viewport={"width": 1280, "height": 1200})  # a second learner
        try:
            other.goto(url + "/results")
            rate = other.get_by_role("spinbutton", name="Learning rate")
            rate.wait_for(timeout=60_000)
            rate.fill("0.25")
            rate.press("Enter")
            other.get_by_text("modified: lr 0.25").wait_for(timeout=60_000)  # the run that took the edit is drawn
            deadline = time.monotonic() + 3  # and its address came with it, not with some later rerun
            while parse_qs(urlparse(other.url).query).get("learning_rate") != ["0.25"]:
                assert time.monotonic() < deadline, other.url
                time.sleep(0.1)
            assert urlparse(other.url).path == "/results"
        finally:
            other.close()
        page.get_by_role("link", name="Train", exact=True).click()
        main = page.get_by_test_id("stMainBlockContainer")  # (the header has Streamlit's own Stop button)
        stop = main.get_by_role("button", name="Stop", exact=True)
        if stop.is_enabled():  # on a quiet machine the two runs may have finished by now
            stop.click(timeout=30_000)  # stops both runs
        page.get_by_text("Settings are locked").wait_for(state="detached", timeout=60_000)
