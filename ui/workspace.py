"""A learner's workspace: the runs behind the `?ws=` token in the address, owned by the server, not by a tab.

Every tab of a workspace shares one run list, so a reload (a new session) finds its runs, a run still training
included. The runs are saved to the store (ui/store.py) as they train, so a server restart brings them back.
When every tab of a workspace has been gone for GRACE_SECONDS, its training runs stop (keeping their epochs) and
its models leave memory. `?run=<token>` opens one shared run read-only, without the rest of its workspace.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from engine import EpochResult, TrainConfig
from ui import state
from ui.runs import TrainingRun
from ui.store import RunStore, StoreError, default_data_dir, new_token

GRACE_SECONDS = 300.0
WS, SHARED = "ws", "run"  # query parameters
TOKEN = re.compile(r"[A-Za-z0-9_-]{22,64}")


@dataclass(frozen=True)
class HostedLimits:
    """What a hosted demo (MLP_LAB_HOSTED=1) lets one visitor train; locally only the config's own sanity limits."""

    max_units: int = 512  # per hidden layer (units or filters)
    max_layers: int = 3
    max_epochs: int = 50
    per_workspace: int = 2  # trainings running or queued at once in one workspace
    per_server: int = 16  # and on the whole server (MAX_CONCURRENT_TRAININGS of them train, the rest queue)

    def text(self) -> str:
        return (f"This is a shared demo: networks of up to {self.max_layers} hidden layers of {self.max_units} units, "
                f"{self.max_epochs} epochs, {self.per_workspace} trainings at a time per visitor.")


def hosted_limits() -> HostedLimits | None:
    """The demo's limits when MLP_LAB_HOSTED=1 (on Streamlit Community Cloud, a root-level secret of that name
    arrives as this environment variable), else None."""
    return HostedLimits() if os.environ.get("MLP_LAB_HOSTED") == "1" else None


def hosted_options() -> None:
    """A hosted demo shows visitors no tracebacks or server paths (the console still logs them)."""
    if hosted_limits() is not None:
        st.set_option("client.showErrorDetails", "none")


def over_limits(cfg: TrainConfig, in_workspace: int, on_server: int) -> str | None:
    """Why a hosted demo refuses to start this training now, in a sentence; None when it may start."""
    limits = hosted_limits()
    if limits is None:
        return None
    sized = [s for s in cfg.layer_specs if s.kind in ("dense", "conv")]
    if len(sized) > limits.max_layers or any(s.size > limits.max_units for s in sized):
        return (f"This demo trains networks of up to {limits.max_layers} hidden layers of {limits.max_units} units; "
                "run MLP Lab on your own computer for larger ones.")
    if cfg.epochs > limits.max_epochs:
        return f"This demo trains up to {limits.max_epochs} epochs per run."
    if in_workspace >= limits.per_workspace:
        return f"This demo trains {limits.per_workspace} of your runs at a time; stop one or wait for it to finish."
    if on_server >= limits.per_server:
        return "The demo is busy with other visitors' trainings; try again in a minute."
    return None


@dataclass(eq=False)
class Workspace:
    """One workspace's runs (the list every tab of it shows) and the tabs that have it open."""

    token: str
    runs: list[TrainingRun] = field(default_factory=list)
    tabs: set[str] = field(default_factory=set)
    left_at: float | None = None  # when its last tab went
    note: str = ""  # why its runs are not being saved, if they are not
    notice: str = ""  # runs the retention caps took out of the store
    offered: set[int] = field(default_factory=set)  # id() of the runs handed to the store (saved or not)

    def adopt(self, recorder: StoreRecorder) -> None:
        """Hand the store any run added since (an upload, a sweep's or a lesson's run), once each."""
        for run in list(self.runs):
            if id(run) not in self.offered:
                self.offered.add(id(run))
                recorder.add(run)


class StoreRecorder:
    """Saves a workspace's runs as they train; a store that cannot write leaves a note and training goes on."""

    def __init__(self, store: RunStore | None, workspace: Workspace) -> None:
        self.store, self.workspace = store, workspace

    def add(self, run: TrainingRun) -> None:
        """Save a new run (before it trains, or an uploaded one whole) and let it save itself from now on."""
        self.workspace.offered.add(id(run))
        evicted = self._call(self.store.add_run if self.store else None, self.workspace.token, run)
        if evicted is False:
            return
        run.recorder = self
        if evicted:
            self.workspace.notice = (f"To stay within this demo's storage, the oldest runs are no longer saved: "
                                     f"{', '.join(evicted)}. Download a run's zip (Compare) to keep it.")

    def epoch(self, run: TrainingRun, result: EpochResult, names: list, weights: list, checkpoint=None) -> None:
        self._call(self.store.save_epoch, run, result, names, weights, checkpoint)

    def checkpoint(self, run: TrainingRun):
        return self.store.load_checkpoint(run) if self.store is not None else None

    def has_checkpoint(self, run: TrainingRun) -> bool:
        return self.store is not None and self.store.has_checkpoint(run)

    def snapshots(self, run: TrainingRun):
        return self.store.load_snapshots(run) if self.store is not None else None

    def saved(self, run: TrainingRun) -> bool:
        """The store holds the run (not evicted) and writes work."""
        return self.store is not None and not self.workspace.note and self.store.holds(run)

    def end(self, run: TrainingRun) -> None:
        if run.model is not None:
            self._call(self.store.save_end, run)

    def _call(self, method, *args) -> object:
        if method is None:
            return False
        try:
            return method(*args)
        except StoreError as err:
            self.workspace.note = str(err)
            return False


class Registry:
    """The server's open workspaces (token -> Workspace) and the store behind them."""

    def __init__(self, store: RunStore | None, note: str = "", grace_seconds: float = GRACE_SECONDS) -> None:
        self.store, self.note, self.grace_seconds = store, note, grace_seconds
        self._open: dict[str, Workspace] = {}
        self._lock = threading.Lock()

    def open(self, token: str, tab: str) -> Workspace:
        """The workspace (from memory, else from the store), with this tab counted in it."""
        with self._lock:
            ws = self._open.get(token)
            if ws is None:
                ws = self._open[token] = Workspace(token, note=self.note)
                if self.store is not None:
                    try:
                        self.store.touch(token)
                        loaded = self.store.load_workspace(token)
                    except StoreError as err:
                        ws.note = str(err)
                    else:
                        recorder = self.recorder(ws)
                        for run in loaded:
                            run.recorder = recorder
                            ws.offered.add(id(run))
                        ws.runs.extend(loaded)
            ws.tabs.add(tab)
            ws.left_at = None
            return ws

    def leave(self, token: str, tab: str) -> None:
        """A tab closed; the last one starts the grace period."""
        with self._lock:
            ws = self._open.get(token)
            if ws is None:
                return
            ws.tabs.discard(tab)
            if not ws.tabs:
                ws.left_at = time.monotonic()
                timer = threading.Timer(self.grace_seconds, self._close_if_abandoned, args=(token,))
                timer.daemon = True
                timer.start()

    def _close_if_abandoned(self, token: str) -> None:
        with self._lock:
            ws = self._open.get(token)
            if ws is None or ws.tabs or ws.left_at is None:
                return
            del self._open[token]  # its models leave memory once its runs' threads end
        for run in ws.runs:
            run.stop()

    def all_runs(self) -> list[TrainingRun]:
        """The runs of every open workspace."""
        with self._lock:
            return [run for ws in self._open.values() for run in ws.runs]

    def recorder(self, ws: Workspace) -> StoreRecorder:
        return StoreRecorder(self.store, ws)

    def shared_run(self, token: str) -> TrainingRun | None:
        return self.store.shared_run(token) if self.store is not None and TOKEN.fullmatch(token) else None


@st.cache_resource
def registry() -> Registry:
    """One per server process: the store under MLP_LAB_DATA, or none (with the reason) where it cannot open."""
    try:
        return Registry(RunStore(default_data_dir()))
    except StoreError as err:
        return Registry(None, str(err))


class _Tab:
    def __init__(self, token: str, tab: str) -> None:
        self.token, self.tab = token, tab


def _leave(tab: _Tab) -> None:
    registry().leave(tab.token, tab.tab)


@st.cache_resource(scope="session", on_release=_leave)
def _this_tab(token: str) -> _Tab:
    """Released (so the workspace told) when this browser session closes."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return _Tab(token, ctx.session_id if ctx else new_token())


def attach() -> Workspace | None:
    """Bind this session's run list to its workspace (made, with a token in the address, on a first visit); a
    share link instead shows only the run it names. Call before anything reads the runs."""
    ss = st.session_state
    shared = ss.get(state.SHARED_RUN) or st.query_params.get(SHARED)  # a share link's session stays one
    if shared is not None:
        if state.SHARED_RUN not in ss:
            run = registry().shared_run(shared)
            ss[state.SHARED_RUN] = shared
            ss[state.RUNS] = [run] if run else []
            ss[state.ACTIVE_RUN] = run.id if run else None
            ss[state.SHARED_OPEN] = True
        st.query_params[SHARED] = shared  # kept in the address across page changes
        return None
    token = st.query_params.get(WS)
    if token is None or not TOKEN.fullmatch(token):
        token = ss.get(state.WORKSPACE) or new_token()
        st.query_params[WS] = token
    ws = registry().open(token, _this_tab(token).tab)
    ss[state.WORKSPACE] = token
    mine = ss.get(state.RUNS)
    if mine is not None and mine is not ws.runs:  # runs this session held before it joined (a test's, say)
        ws.runs.extend(r for r in mine if not any(r is w for w in ws.runs))
    ss[state.RUNS] = ws.runs
    if state.ACTIVE_RUN not in ss and ws.runs:  # a reload: the Train page follows what still trains
        ss[state.ACTIVE_RUN] = ws.runs[-1].id
        ss[state.FOLLOWED_RUNS] = [r.id for r in ws.runs if r.in_progress] or [ws.runs[-1].id]
    ws.adopt(registry().recorder(ws))
    return ws


def record(run: TrainingRun) -> bool:
    """Save a run this session is about to start in its workspace (before its first epoch ends); False outside
    a workspace (a share link's page)."""
    token = st.session_state.get(state.WORKSPACE)
    if token is None:
        return False
    ws = registry().open(token, _this_tab(token).tab)
    if id(run) not in ws.offered:
        registry().recorder(ws).add(run)
    return True


def panel(ws: Workspace | None) -> None:
    """In the sidebar: how much the workspace keeps and what its link does, or what a share link shows."""
    with st.sidebar:
        limits = hosted_limits()
        if limits is not None:
            st.caption(limits.text())
        if ws is None:
            if state.runs():
                st.info("A shared run, read-only: its Results are on the Results page. Runs you train here are not "
                        "saved.", icon=":material/share:")
            else:
                st.warning("This share link names no saved run (it may have been removed).", icon=":material/link_off:")
            return
        if ws.note:
            st.warning(ws.note, icon=":material/cloud_off:")
        if ws.notice:
            st.info(ws.notice, icon=":material/inventory_2:")
        store = registry().store
        if store is not None and not ws.note:
            n, size, _ = store.sizes(ws.token)
            st.caption(f"Your workspace keeps {n} run{'s' * (n != 1)} ({size / 2**20:.1f} MB of "
                       f"{store.max_bytes / 2**20:.0f} MB, at most {store.max_runs} runs); this page's address brings "
                       "them back, so bookmark it. Anyone with the address can see them.")


def share_button(run: TrainingRun) -> None:
    """A read-only link to one saved run's Results (?run=...), without the rest of the workspace."""
    recorder = run.recorder
    if not isinstance(recorder, StoreRecorder) or recorder.store is None or run.in_progress:
        return
    links = st.session_state.setdefault(state.SHARE_LINKS, {})
    if st.button("Share this run", key=f"share_{run.id}", icon=":material/share:",
                 help="A link that opens this run's Results, read-only, for anyone; the rest of your workspace "
                      "stays private."):
        try:
            token = recorder.store.share(run)
        except StoreError as err:
            st.warning(str(err))
            return
        where = urlsplit(st.context.url or "http://localhost:8501")
        links[run.id] = f"{where.scheme}://{where.netloc}/results?{SHARED}={token}"
    if run.id in links:
        st.code(links[run.id], language=None)
