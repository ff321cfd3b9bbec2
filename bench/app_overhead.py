"""What the app adds: the same training run through `python -m engine train` and through the app in Chromium.

    python bench/app_overhead.py --preset notebook-mse --repeats 3

CLI: the wall time `python -m engine train` reports for the training (after start-up and data loading),
and its median seconds per epoch.
App: wall time from clicking Train to the "Finished" message in a headless Chromium on this
machine (so it includes the live view's polling, the browser drawing it, and up to one polling
interval of detection delay), and the median seconds per epoch the app reports. Runs alternate.
Needs Playwright and Chromium (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import PRESETS  # noqa: E402


def cli_run(preset: str, epochs: int) -> tuple[float, float]:
    """(wall seconds of the training, data preparation included; median seconds per epoch)."""
    out = subprocess.run([sys.executable, "-m", "engine", "train", "--preset", preset, "--epochs", str(epochs),
                          "--quiet"], cwd=ROOT, capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    per_epoch = [float(re.search(r"\(([0-9.]+)s\)$", line).group(1)) for line in lines if line.startswith("Epoch ")]
    wall = float(re.search(r"Trained \d+ epochs? in ([0-9.]+) s", lines[-1]).group(1))
    return wall, statistics.median(per_epoch)


def start_app() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("streamlit did not start")


def app_run(browser, url: str, preset: str, epochs: int) -> tuple[float, float]:
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}/?preset={preset}&epochs={epochs}")
    page.get_by_text("Build a multilayer perceptron").wait_for(timeout=60_000)
    time.sleep(3)  # let the app settle (background warm-ups) before timing
    t0 = time.perf_counter()
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text(f"Finished: {epochs}/{epochs}").wait_for(timeout=600_000)
    wall = time.perf_counter() - t0
    per_epoch = float(page.get_by_test_id("stMetricValue").nth(4).inner_text())
    page.close()
    return wall, per_epoch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="notebook-mse")
    parser.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    epochs = args.epochs or PRESETS[args.preset].config.epochs
    cli, app = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        for _ in range(args.repeats):
            cli.append(cli_run(args.preset, epochs))
            proc, url = start_app()
            try:
                app.append(app_run(browser, url, args.preset, epochs))
            finally:
                proc.terminate()
                proc.wait(10)
        browser.close()
    cli_wall, cli_epoch = statistics.median(c[0] for c in cli), statistics.median(c[1] for c in cli)
    app_wall, app_epoch = statistics.median(a[0] for a in app), statistics.median(a[1] for a in app)
    print(f"# {args.preset}, {epochs} epochs, medians of {args.repeats} alternating runs")
    print(f"CLI: {cli_wall:.2f} s of training ({cli_epoch:.2f} s/epoch)")
    print(f"app: {app_wall:.2f} s from Train to Finished ({app_epoch:.2f} s/epoch reported)")
    print(f"app / CLI: wall {app_wall / cli_wall:.2f}, per epoch {app_epoch / cli_epoch:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
