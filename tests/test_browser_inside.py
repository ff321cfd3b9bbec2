"""The Inside page in Chromium: train a small run, scrub its epochs, select a unit, play; screenshots to look at
land in artifacts/screenshots/inside-*.png."""

import os
import time

import pytest

from tests.test_browser import CHROMIUM, chromium_page, serve, shot

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium is not installed")]

SETUP = ("preset=custom&dataset=digits&hidden_sizes=32&activation=relu&output=softmax&loss=cross_entropy"
         "&learning_rate=0.1&batch_size=32&epochs=6&init=he")


@pytest.fixture(scope="module")
def page():
    with serve() as url, chromium_page(5200) as pg:
        pg.goto(f"{url}/?{SETUP}")
        pg.get_by_text("Build a multilayer perceptron").wait_for(timeout=30_000)
        pg.get_by_role("button", name="Train", exact=True).click()
        pg.get_by_text("Finished: 6/6 epochs").wait_for(timeout=120_000)
        pg.get_by_role("link", name="Inside").click()
        pg.get_by_text("What the first layer looks for").wait_for(timeout=30_000)
        yield pg


def epoch_slider(page):
    """The page's epoch scrubber (the sidebar has sliders of its own)."""
    return page.get_by_role("slider", name="Epoch (0 is before training)")


def slider_value(page) -> str:
    return epoch_slider(page).get_attribute("aria-valuetext")


def settle(page) -> None:
    page.get_by_test_id("stVegaLiteChart").last.locator("canvas, svg").first.wait_for(timeout=30_000)
    time.sleep(1.5)  # let vega draw


def test_scrub_epochs_and_select_a_unit(page):
    assert page.get_by_test_id("stException").count() == 0
    assert slider_value(page) == "6"  # a finished run opens at its last epoch
    settle(page)
    shot(page, "inside-1-epoch6")

    handle = epoch_slider(page)
    handle.focus()
    for _ in range(6):
        page.keyboard.press("ArrowLeft")
    deadline = time.monotonic() + 20
    while slider_value(page) != "0" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slider_value(page) == "0"
    time.sleep(2)  # the page reruns for the scrubbed epoch
    settle(page)
    shot(page, "inside-2-epoch0")

    page.get_by_test_id("stSelectbox").filter(has_text="Unit").first.click()
    page.keyboard.type("unit 7")
    page.get_by_role("option", name="unit 7", exact=True).click()
    page.get_by_text("unit 7: ||w||").wait_for(timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    settle(page)
    shot(page, "inside-3-unit7")


def test_play_animates_to_the_last_epoch(page):
    page.get_by_role("button", name="Play", exact=True).click()
    page.get_by_text("Playing: epoch").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Play", exact=True).wait_for(timeout=60_000)  # back when it has played every epoch
    deadline = time.monotonic() + 20
    while slider_value(page) != "6" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slider_value(page) == "6"
    assert page.get_by_test_id("stException").count() == 0


def test_an_mnist_sigmoid_mse_run_inside(page):
    """28x28 weight images, a 64-16 sigmoid network's journey and the MSE vs cross-entropy gradients it learns with."""
    base = page.url.split("/inside")[0]
    page.goto(f"{base}/?preset=notebook-mse&epochs=3&train_limit=3000")
    page.get_by_text("Build a multilayer perceptron").wait_for(timeout=30_000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Finished: 3/3 epochs").wait_for(timeout=120_000)
    page.get_by_role("link", name="Inside").click()
    page.get_by_text("Why cross-entropy learns faster than MSE").wait_for(timeout=30_000)
    assert page.get_by_text("Saturated share (sigmoid / tanh)").count() == 1
    assert page.get_by_test_id("stException").count() == 0
    settle(page)
    shot(page, "inside-4-mnist-sigmoid-mse")
