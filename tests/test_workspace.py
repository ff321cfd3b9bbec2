"""Workspaces in the app (AppTest): a token in the address, a reload that re-attaches to a run still training, the
store behind it, and a read-only share link."""

import time

import streamlit as st
from streamlit.testing.v1 import AppTest

from ui.workspace import TOKEN, registry

APP = "../app.py"
FIELDS = dict(dataset="digits", hidden_sizes="32", activation="relu", output="softmax", loss="cross_entropy",
              learning_rate=0.1, batch_size=32, init="he")


def visit(**query) -> AppTest:
    """A new browser session (a first visit, or a reload of an address with `query`)."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["follow_seconds"] = 0
    at.query_params.update(query)
    return at.run()


def ws_of(at: AppTest) -> str:
    value = at.query_params["ws"]
    return value if isinstance(value, str) else value[-1]


def train(at: AppTest, epochs: int) -> AppTest:
    for key, value in {**FIELDS, "epochs": epochs}.items():
        widget = next(w for kind in ("selectbox", "number_input", "text_input", "slider")
                      for w in getattr(at, kind) if w.key == key)
        widget.set_value(value)
    at.run()
    return at.button(key="train").click().run()


def wait_until(done, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_first_visit_gets_an_unguessable_workspace_token_in_the_address():
    at = visit()
    token = ws_of(at)
    assert not at.exception and TOKEN.fullmatch(token) and len(token) >= 22  # >= 128 bits
    assert ws_of(visit()) != token
    assert "Your workspace keeps 0 runs" in " ".join(c.value for c in at.sidebar.caption)


def test_a_reload_during_training_re_attaches_to_the_run_and_finds_it_saved():
    first = train(visit(), epochs=200)
    token = ws_of(first)
    run = first.session_state["runs"][-1]
    try:
        wait_until(lambda: run.epochs_done >= 1)
        reload = visit(ws=token)  # a new session with the same address
        assert not reload.exception
        assert reload.session_state["runs"][-1] is run and run.in_progress  # the same run, still training
        assert reload.session_state["followed_runs"] == [run.id]  # and the Train page follows it
        assert run.name in " ".join(c.value for c in reload.caption)
    finally:
        run.stop()
        run.join(30)
    saved = registry().store.load_workspace(token)
    assert [r.id for r in saved] == [run.id] and saved[0].epochs_done == run.epochs_done
    assert run.id.startswith("run-1")  # ids count per workspace session, not per server


def test_a_share_link_opens_that_runs_results_read_only():
    owner = train(visit(), epochs=2)
    run = owner.session_state["runs"][-1]
    run.join(60)
    token = registry().store.share(run)
    guest = visit(run=token)
    assert not guest.exception
    assert [r.id for r in guest.session_state["runs"]] == [run.id]  # that run, nothing else of the workspace
    assert "ws" not in guest.query_params
    assert "A shared run, read-only" in " ".join(i.value for i in guest.sidebar.info)
    unknown = visit(run="x" * 24)
    assert not unknown.exception and unknown.session_state["runs"] == []
    assert "names no saved run" in " ".join(w.value for w in unknown.sidebar.warning)


def test_hosted_mode_caps_what_one_visitor_trains(monkeypatch):
    from engine import TrainConfig
    from ui.workspace import HostedLimits, over_limits

    cfg = TrainConfig(dataset="digits", hidden_sizes=(32,), epochs=5)
    assert over_limits(cfg.replace(hidden_sizes=(4096,), epochs=1000), 9, 99) is None  # locally: no caps
    monkeypatch.setenv("MLP_LAB_HOSTED", "1")
    limits = HostedLimits()
    assert over_limits(cfg, 0, 0) is None
    assert "up to 3 hidden layers of 512 units" in over_limits(cfg.replace(hidden_sizes=(1024,)), 0, 0)
    assert "up to 3 hidden layers" in over_limits(cfg.replace(hidden_sizes=(8, 8, 8, 8)), 0, 0)
    assert f"up to {limits.max_epochs} epochs" in over_limits(cfg.replace(epochs=limits.max_epochs + 1), 0, 0)
    assert "2 of your runs at a time" in over_limits(cfg, limits.per_workspace, 0)
    assert "busy with other visitors" in over_limits(cfg, 0, limits.per_server)

    try:
        at = visit()
        assert st.get_option("client.showErrorDetails") == "none"  # no tracebacks or paths for visitors
    finally:
        st.set_option("client.showErrorDetails", "full")
    assert "This is a shared demo" in " ".join(c.value for c in at.sidebar.caption)
    at = train(at, epochs=limits.max_epochs + 1)
    run = at.session_state["runs"][-1]
    assert run.status == "failed" and run.summary().endswith(f"This demo trains up to {limits.max_epochs} epochs "
                                                             "per run.")
    assert not at.exception


def test_a_run_interrupted_by_a_restart_resumes_from_its_train_page():
    """Stopped after some epochs, marked as training in the database (what a killed server leaves), the server
    restarted: a reload shows the run as interrupted with a Resume button, which trains the epochs left."""
    import sqlite3

    from ui.store import DB_NAME, default_data_dir

    first = train(visit(), epochs=40)
    token = ws_of(first)
    run = first.session_state["runs"][-1]
    wait_until(lambda: run.epochs_done >= 2)
    run.stop()
    run.join(30)
    done = run.epochs_done
    assert 2 <= done < 40
    con = sqlite3.connect(default_data_dir() / DB_NAME)
    con.execute("UPDATE runs SET status='running' WHERE workspace=?", (token,))
    con.commit()
    con.close()
    registry.clear()  # a new server process: the store is opened again, the run found interrupted
    back = visit(ws=token)
    assert not back.exception
    resumed = back.session_state["runs"][-1]
    assert resumed is not run and resumed.status == "interrupted" and resumed.epochs_done == done
    assert any("Interrupted" in w.value for w in back.warning)
    back.button(key=f"resume_train_{resumed.id}").click().run()
    resumed.join(120)
    assert resumed.status == "finished" and [r.epoch for r in resumed.history] == list(range(1, 41))
    assert registry().store.load_workspace(token)[-1].epochs_done == 40
