"""Many visitors at once, and faults: `streamlit run` on 127.0.0.1, N Chromium sessions each training its own config.

    python bench/load.py --sessions 1 4 8           # wall time, peak server RSS, time to first epoch per N
    python bench/load.py --faults                   # reload mid-run, kill -9 mid-epoch then restart

Each session trains a different width (hidden 16+i) and must end with its own finished run (its width in the run's
name, no other's), none lost; with 2 training slots the rest queue and start as slots free. Bounded: at most 16
sessions, --timeout seconds per N. Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
MAX_SESSIONS = 16
SETUP = "preset=keras-mlp&dataset=mnist&train_limit=5000&batch_size=64&activation=relu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(data: Path, port: int | None = None):
    """`streamlit run app.py` on 127.0.0.1 with its store in `data`; yields (url, process)."""
    port = port or free_port()
    env = {**os.environ, "MLP_LAB_DATA": str(data)}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("streamlit did not start") from None
            time.sleep(0.3)
    try:
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The process's resident memory (VmHWM: its peak so far), in MB."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def launch(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                                            "--disable-background-networking"])


def load(n: int, epochs: int, timeout: float) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as data, serve(Path(data)) as (url, proc), sync_playwright() as p:
        browser = launch(p)
        pages = []
        for i in range(n):
            page = browser.new_context(viewport={"width": 1200, "height": 1600}).new_page()
            page.goto(f"{url}/?{SETUP}&hidden_sizes={16 + i}&epochs={epochs}")
            pages.append(page)
        for page in pages:
            page.get_by_role("button", name="Train", exact=True).wait_for(timeout=60_000)
        t0 = time.monotonic()
        clicked = []
        for page in pages:
            page.get_by_role("button", name="Train", exact=True).click()
            clicked.append(time.monotonic() - t0)
        first, done, peak = [None] * n, [None] * n, 0.0
        while None in done and time.monotonic() - t0 < timeout:
            peak = max(peak, rss_mb(proc.pid))
            for i, page in enumerate(pages):
                if done[i] is not None:
                    continue
                if first[i] is None and page.get_by_text(re.compile(rf"Epochs done [1-9]\d*/{epochs}")).count():
                    first[i] = time.monotonic() - t0
                if page.get_by_text(f"Finished: {epochs}/{epochs} epochs done").count():
                    done[i] = time.monotonic() - t0
                    first[i] = first[i] or done[i]
            time.sleep(0.2)
        own = []
        for i, page in enumerate(pages):
            names = re.findall(r"(#\d+) keras-mlp[^\n]*?hidden (\d+),", page.inner_text("main"))
            own.append({(k, int(w)) for k, w in names} == {("#1", 16 + i)})  # its own run, numbered in its session
        browser.close()
        peak = max(peak, rss_mb(proc.pid, "VmHWM"))
    finished = [d for d in done if d is not None]
    return {"sessions": n, "epochs": epochs, "finished": len(finished), "lost": n - len(finished),
            "own_results": sum(own), "wall_s": round(max(finished, default=timeout), 1),
            "first_epoch_s": {"min": round(min((f for f in first if f), default=0), 1),
                              "max": round(max((f for f in first if f), default=0), 1)},
            "first_epoch_order": sorted(range(n), key=lambda i: first[i] or 1e9),
            "peak_server_rss_mb": round(peak)}


def faults(epochs: int) -> dict:
    """Reload mid-run (re-attaches), then kill -9 the server mid-epoch and restart it on the same data folder."""
    from playwright.sync_api import sync_playwright

    out = {}
    with tempfile.TemporaryDirectory() as data, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        port = free_port()
        with serve(Path(data), port) as (url, proc):
            page.goto(f"{url}/?{SETUP}&hidden_sizes=64&epochs={epochs}")
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_text(re.compile(rf"Epochs done [1-9]\d*/{epochs}")).first.wait_for(timeout=120_000)
            address = page.url
            page.reload()
            page.get_by_text("Training now").wait_for(timeout=30_000)  # the run still trains, in this new session
            out["reload_reattached"] = page.get_by_text(re.compile(r"#1 keras-mlp")).count() > 0
            page.get_by_text(re.compile(rf"Epochs done [2-9]\d*/{epochs}")).first.wait_for(timeout=120_000)
            os.kill(proc.pid, signal.SIGKILL)  # mid-epoch: the next one is under way
            proc.wait()
        con = sqlite3.connect(Path(data) / "mlp-lab.sqlite3")
        out["integrity_check"] = con.execute("PRAGMA integrity_check").fetchone()[0]
        saved = con.execute("SELECT count(*) FROM epochs").fetchone()[0]
        con.close()
        with serve(Path(data), port):
            page.goto(address.replace("/?", "/results?", 1))  # the same workspace's Results
            back = page.get_by_text(re.compile(rf"Interrupted: \d+/{epochs} epochs done")).first
            back.wait_for(timeout=60_000)
            out["after_restart"] = back.inner_text().split(";")[0]
        out["epochs_saved_at_kill"] = saved
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="*", default=[1, 4, 8])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300, help="seconds per N")
    parser.add_argument("--faults", action="store_true", help="the fault tests instead of the load")
    args = parser.parse_args()
    if args.faults:
        print(json.dumps(faults(max(args.epochs, 20))), flush=True)
        return
    for n in args.sessions:
        if not 1 <= n <= MAX_SESSIONS:
            raise SystemExit(f"--sessions: 1 to {MAX_SESSIONS}")
        print(json.dumps(load(n, args.epochs, args.timeout)), flush=True)


if __name__ == "__main__":
    main()
