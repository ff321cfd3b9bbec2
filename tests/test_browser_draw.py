"""Draw, Gradient check and the Results page's additions in Chromium: the canvas component really draws with this
Streamlit, uploads are checked, My digits reaches Results, the script downloads, a planted bug shows.
Screenshots land in artifacts/screenshots/ (draw-*.png)."""

import ast
import io
import re
import time

import pytest
from PIL import Image, ImageDraw
from test_browser import chromium_page, serve, shot

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.browser, pytest.mark.slow]


def png_of_a_seven() -> bytes:
    """A 7 drawn with thick strokes on a light grey photo-like background, off-centre."""
    img = Image.new("RGB", (400, 300), (225, 222, 215))
    d = ImageDraw.Draw(img)
    d.line([(200, 60), (320, 60), (250, 250)], fill=(30, 30, 40), width=22, joint="curve")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def page():
    with serve() as url, chromium_page(2000, accept_downloads=True) as pg:
        pg.base_url = url
        yield pg


def stroke(page, canvas, points) -> None:
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.mouse.up()


def test_draw_keep_and_score_then_download_the_script(page, tmp_path):
    page.goto(page.base_url + "/?preset=softmax-regression&epochs=1")
    page.get_by_text("Preset softmax-regression").wait_for(timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click(timeout=60_000)
    page.get_by_text(re.compile(r"Finished: 1/1 epochs")).wait_for(timeout=120_000)

    page.get_by_role("link", name="Draw").click()
    page.get_by_text("What the network sees").wait_for(timeout=30_000)
    canvas = page.locator("canvas").first
    canvas.wait_for(timeout=30_000)
    stroke(page, canvas, [(90, 60), (200, 60), (130, 240)])  # a 7
    page.get_by_text("The network says").wait_for(timeout=30_000)
    page.get_by_text("the network's input: 28x28").wait_for(timeout=30_000)  # drawn just after, on a busy server
    assert page.get_by_test_id("stVegaLiteChart").count() == 1  # the probabilities
    assert page.get_by_text("the network's input: 28x28").count() == 1
    shot(page, "draw-1-canvas")

    page.get_by_test_id("stSelectbox").filter(has_text="This drawing is a").click()
    page.get_by_role("option", name="7", exact=True).click()
    page.get_by_role("button", name="Keep it in My digits").click()
    page.get_by_text(re.compile(r"The network gets \d of 1 right")).wait_for(timeout=30_000)

    page.get_by_text("Upload", exact=True).click()
    uploader = page.get_by_test_id("stFileUploaderDropzoneInput")
    uploader.set_input_files(files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"not a picture"}])
    page.get_by_text("not an image Pillow can read").wait_for(timeout=30_000)
    uploader.set_input_files(files=[{"name": "seven.png", "mimeType": "image/png", "buffer": png_of_a_seven()}])
    page.get_by_text("The network says").wait_for(timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    time.sleep(1.0)  # let vega draw
    shot(page, "draw-2-upload")

    page.get_by_role("link", name="Results").click()
    page.get_by_text("My digits (1 drawn)").wait_for(timeout=30_000)
    button = page.get_by_role("button", name="NumPy script")
    button.scroll_into_view_if_needed()
    with page.expect_download() as info:
        button.click()
    source = (tmp_path / "run.py")
    info.value.save_as(source)
    tree = ast.parse(source.read_text())
    assert "EPOCHS = 1" in source.read_text() and any(isinstance(n, ast.FunctionDef) and n.name == "main"
                                                       for n in tree.body)
    shot(page, "draw-3-results")


def test_gradient_check_catches_a_planted_bug_and_shows_the_damage(page):
    page.goto(page.base_url + "/gradient_check?preset=twolayernet")  # the page's address: the file's name
    page.get_by_text("Backprop agrees with the numerical gradient").wait_for(timeout=60_000)
    page.get_by_text("One numerical gradient").wait_for()
    shot(page, "draw-4-gradcheck")
    page.get_by_test_id("stSelectbox").filter(has_text="Break the backward pass").click()
    page.get_by_role("option", name=re.compile("Forget the hidden activation")).click()
    page.get_by_text("The backward pass is wrong for layer 1").wait_for(timeout=60_000)
    page.get_by_role("button", name="Train with both backward passes").click()
    page.get_by_text(re.compile(r"After 300 steps")).wait_for(timeout=120_000)
    time.sleep(1.0)  # let vega draw
    assert page.get_by_test_id("stException").count() == 0
    shot(page, "draw-5-gradcheck-bug")
