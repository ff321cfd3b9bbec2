"""Runs that last: each workspace's runs in SQLite (WAL), their weights as .npz files beside the database.

Headless (no streamlit): a run's row is written when it starts, each epoch in one transaction as it completes (its
history line and the weights it ended with), and its end (status, message, final weights, snapshots). A crash loses
at most the epoch in progress; when the store is opened again, runs that were training are marked "interrupted" and
keep their completed epochs. Weights files are written to a temporary name and renamed into place before the
transaction that points at them commits.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from engine import EpochResult, TrainConfig
from engine.snapshots import Snapshots
from engine.train import Checkpoint
from ui.runs import IN_PROGRESS, INTERRUPTED, STOPPED, TrainingRun, model_from_npz

SCHEMA_VERSION = 1
NOT_SAVED = ("This run is no longer saved (the workspace's storage limit made room for newer runs); download its "
             "zip from Compare to keep it.")
DB_NAME = "mlp-lab.sqlite3"
MAX_RUNS_PER_WORKSPACE = 100
MAX_BYTES_PER_WORKSPACE = 1 * 2**30
MAX_STORE_BYTES = 20 * 2**30

SCHEMA = """
CREATE TABLE workspaces (token TEXT PRIMARY KEY, created REAL NOT NULL, seen REAL NOT NULL);
CREATE TABLE runs (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace TEXT NOT NULL REFERENCES workspaces(token),
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL,
    weights TEXT,
    snapshots TEXT,
    share TEXT UNIQUE,
    bytes INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    UNIQUE (workspace, run_id)
);
CREATE TABLE epochs (run INTEGER NOT NULL REFERENCES runs(pk) ON DELETE CASCADE, epoch INTEGER NOT NULL,
                     record TEXT NOT NULL, PRIMARY KEY (run, epoch));
"""


class StoreError(Exception):
    """The store cannot be used or written; the message is a sentence for the learner, without server paths."""


def new_token() -> str:
    """An unguessable workspace or share token: 144 random bits."""
    return secrets.token_urlsafe(18)


def default_data_dir() -> Path:
    """MLP_LAB_DATA, else the per-user data folder ($XDG_DATA_HOME or ~/.local/share)/mlp-lab."""
    if os.environ.get("MLP_LAB_DATA"):
        return Path(os.environ["MLP_LAB_DATA"])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mlp-lab"


def _write_failed(err: OSError | sqlite3.Error) -> StoreError:
    full = isinstance(err, OSError) and err.errno == 28 or "full" in str(err)
    why = "the disk is full" if full else "the data folder cannot be written"
    return StoreError(f"Runs are not being saved: {why}. Training goes on; download a run's zip to keep it.")


class RunStore:
    """The database and weights folder under `root`; thread-safe (one connection, one lock)."""

    def __init__(self, root: Path, max_runs: int = MAX_RUNS_PER_WORKSPACE,
                 max_bytes: int = MAX_BYTES_PER_WORKSPACE, max_store_bytes: int = MAX_STORE_BYTES) -> None:
        self.root = Path(root)
        self.max_runs, self.max_bytes, self.max_store_bytes = max_runs, max_bytes, max_store_bytes
        self._lock = threading.Lock()
        self._pk: dict[int, int] = {}  # id(TrainingRun) -> its row
        try:
            (self.root / "weights").mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.root / DB_NAME, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crashed process loses nothing committed
            self._db.execute("PRAGMA foreign_keys=ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        except (OSError, sqlite3.Error) as err:
            raise StoreError("The run store cannot be opened (the data folder is missing, read-only or not a "
                             "database); runs will not be saved.") from err
        if version > SCHEMA_VERSION:
            self._db.close()
            raise StoreError(f"The saved runs were written by a newer MLP Lab (store schema {version}; this version "
                             f"reads up to {SCHEMA_VERSION}); update MLP Lab, or point MLP_LAB_DATA elsewhere.")
        with self._write():
            if version == 0:
                self._db.executescript("BEGIN;" + SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
            self._db.execute("UPDATE runs SET status=?, message=? WHERE status IN (?, ?, ?)",
                             (INTERRUPTED, "The server restarted while this run trained; its completed epochs "
                              "were kept.", *IN_PROGRESS))

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------ writing (any thread)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; a failed write is rolled back and becomes a StoreError."""
        with self._lock:
            try:
                yield self._db
            except (OSError, sqlite3.Error) as err:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise _write_failed(err) from err

    def touch(self, workspace: str) -> None:
        """Create the workspace, or note that a tab has it open."""
        now = time.time()
        with self._write() as db:
            db.execute("INSERT INTO workspaces VALUES (?, ?, ?) ON CONFLICT(token) DO UPDATE SET seen=excluded.seen",
                       (workspace, now, now))

    def add_run(self, workspace: str, run: TrainingRun) -> list[str]:
        """The run's row (before it trains, or an uploaded run whole); returns the names of runs evicted to make
        room (the oldest finished ones of this workspace, then of the store)."""
        self.touch(workspace)
        now = time.time()
        with self._write() as db:
            db.execute("BEGIN")
            cur = db.execute("INSERT INTO runs (workspace, run_id, name, status, message, config, created, updated) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (workspace, run.id, run.name, run.status, run.message,
                                                                 json.dumps(run.config.to_dict()), now, now))
            self._pk[id(run)] = cur.lastrowid
            for r in run.history:
                db.execute("INSERT INTO epochs VALUES (?, ?, ?)", (cur.lastrowid, r.epoch, json.dumps(r.to_dict())))
            db.execute("COMMIT")
        if run.model is not None and not run.in_progress:
            self.save_end(run)
        return self.evict(workspace)

    def save_epoch(self, run: TrainingRun, result: EpochResult, names: list[str], weights: list[np.ndarray],
                   checkpoint: Checkpoint | None = None) -> None:
        """One completed epoch: its history line and the weights it ended with, in one transaction; its checkpoint
        (optimizer state, random streams) beside them as c<epoch>.npz, so an interrupted run can go on."""
        pk = self._saved_pk(run)
        if checkpoint is not None:
            self._write_npz(pk, f"c{result.epoch}", writer=checkpoint.write_npz)
        path = self._write_npz(pk, f"e{result.epoch}", {"config": np.array(json.dumps(run.config.to_dict())),
                                                          **dict(zip(names, weights, strict=True))})
        with self._write() as db:
            db.execute("BEGIN")
            old = db.execute("SELECT weights FROM runs WHERE pk=?", (pk,)).fetchone()[0]
            db.execute("INSERT OR REPLACE INTO epochs VALUES (?, ?, ?)", (pk, result.epoch,
                                                                        json.dumps(result.to_dict())))
            db.execute("UPDATE runs SET status=?, weights=?, updated=? WHERE pk=?",
                       (run.status, path.name, time.time(), pk))
            db.execute("COMMIT")
        self._drop_file(pk, old, keep=path.name)
        self._drop_checkpoints(pk, keep=result.epoch if checkpoint is not None else None)
        self._update_bytes(pk)

    def save_end(self, run: TrainingRun) -> None:
        """How the run ended: status, message, the final weights and the snapshots."""
        pk = self._saved_pk(run)
        buf = io.BytesIO()
        run.model.save(buf)
        path = self._write_npz(pk, "final", raw=buf.getvalue())
        snaps = self._write_npz(pk, "snapshots", raw=run.snapshots.to_npz()) if run.snapshots.epochs else None
        with self._write() as db:
            db.execute("BEGIN")
            old = db.execute("SELECT weights FROM runs WHERE pk=?", (pk,)).fetchone()[0]
            db.execute("DELETE FROM epochs WHERE run=? AND epoch>?", (pk, run.epochs_done))  # a diverged run's
            for r in run.history:  # history is what the engine kept; it may differ from what epochs wrote
                db.execute("INSERT OR REPLACE INTO epochs VALUES (?, ?, ?)", (pk, r.epoch, json.dumps(r.to_dict())))
            db.execute("UPDATE runs SET status=?, message=?, weights=?, snapshots=?, updated=? WHERE pk=?",
                       (run.status, run.message, path.name, snaps.name if snaps else None, time.time(), pk))
            db.execute("COMMIT")
        self._drop_file(pk, old, keep=path.name)
        resumable = run.status in (STOPPED, INTERRUPTED)  # (interrupted: a resume that failed leaves it so)
        self._drop_checkpoints(pk, keep=run.epochs_done if resumable else None)
        self._update_bytes(pk)

    def _drop_checkpoints(self, pk: int, keep: int | None) -> None:
        folder = self.root / "weights" / str(pk)
        for path in folder.glob("c*.npz"):
            if path.name != f"c{keep}.npz":
                path.unlink(missing_ok=True)

    def load_snapshots(self, run: TrainingRun) -> Snapshots | None:
        """The per-epoch weights saved when the run ended, or None (none saved, or unreadable)."""
        pk = self._pk.get(id(run))
        if pk is None or run.model is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT snapshots FROM runs WHERE pk=?", (pk,)).fetchone()
        if not row or not row[0]:
            return None
        try:
            return Snapshots.from_npz((self.root / "weights" / str(pk) / row[0]).read_bytes(), run.model.get_weights())
        except (OSError, ValueError):
            return None

    def _saved_pk(self, run: TrainingRun) -> int:
        pk = self._pk.get(id(run))
        if pk is None:
            raise StoreError(NOT_SAVED)
        return pk

    def holds(self, run: TrainingRun) -> bool:
        """The run is saved here (its row not evicted)."""
        return id(run) in self._pk

    def _checkpoint_path(self, run: TrainingRun) -> Path | None:
        pk = self._pk.get(id(run))
        return None if pk is None else self.root / "weights" / str(pk) / f"c{run.epochs_done}.npz"

    def has_checkpoint(self, run: TrainingRun) -> bool:
        path = self._checkpoint_path(run)
        return path is not None and path.is_file()

    def load_checkpoint(self, run: TrainingRun) -> Checkpoint | None:
        """The checkpoint saved with the run's last epoch, or None (none saved, or unreadable)."""
        path = self._checkpoint_path(run)
        if path is None:
            return None
        try:
            checkpoint = Checkpoint.from_npz(path.read_bytes())
        except (OSError, ValueError):
            return None
        return checkpoint if checkpoint.epoch == run.epochs_done else None

    def _write_npz(self, pk: int, what: str, arrays: dict | None = None, raw: bytes | None = None,
                   writer=None) -> Path:
        """arrays, raw bytes, or what `writer(file)` writes, to <what>.npz (through a temporary name)."""
        folder = self.root / "weights" / str(pk)
        path = folder / f"{what}.npz"
        tmp = folder / f".{what}.npz.tmp"
        try:
            folder.mkdir(exist_ok=True)
            if raw is not None:
                tmp.write_bytes(raw)
            else:
                with open(tmp, "wb") as f:
                    writer(f) if writer is not None else np.savez(f, **arrays)
            os.replace(tmp, path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise _write_failed(err) from err
        return path

    def _drop_file(self, pk: int, name: str | None, keep: str) -> None:
        if name and name != keep:
            (self.root / "weights" / str(pk) / name).unlink(missing_ok=True)

    def _update_bytes(self, pk: int) -> None:
        folder = self.root / "weights" / str(pk)
        size = sum(p.stat().st_size for p in folder.glob("*.npz")) if folder.is_dir() else 0
        with self._write() as db:
            db.execute("UPDATE runs SET bytes=? WHERE pk=?", (size, pk))

    # ------------------------------------------------------------ retention

    def evict(self, workspace: str) -> list[str]:
        """Delete the oldest runs that are not training until the workspace and the store are within their caps."""
        evicted = []
        while True:
            with self._lock:
                n, size = self._db.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM runs WHERE workspace=?",
                                           (workspace,)).fetchone()
                total = self._db.execute("SELECT coalesce(sum(bytes), 0) FROM runs").fetchone()[0]
                where = "workspace=? AND" if n > self.max_runs or size > self.max_bytes else ""
                if not where and total <= self.max_store_bytes:
                    return evicted
                row = self._db.execute(f"SELECT pk, name FROM runs WHERE {where} status NOT IN (?, ?, ?) "
                                       "ORDER BY updated LIMIT 1",
                                       ((workspace,) if where else ()) + IN_PROGRESS).fetchone()
            if row is None:
                return evicted
            self.delete(row[0])
            evicted.append(row[1])

    def delete(self, pk: int) -> None:
        with self._write() as db:
            db.execute("DELETE FROM runs WHERE pk=?", (pk,))
            for key in [k for k, v in self._pk.items() if v == pk]:
                del self._pk[key]  # the run (still in memory) is no longer saved here
        shutil.rmtree(self.root / "weights" / str(pk), ignore_errors=True)

    def sizes(self, workspace: str) -> tuple[int, int, int]:
        """(runs, bytes) of the workspace and the bytes of the whole store."""
        with self._lock:
            n, size = self._db.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM runs WHERE workspace=?",
                                       (workspace,)).fetchone()
            total = self._db.execute("SELECT coalesce(sum(bytes), 0) FROM runs").fetchone()[0]
        return n, size, total

    # ------------------------------------------------------------ reading

    def load_workspace(self, workspace: str) -> list[TrainingRun]:
        """Every stored run of the workspace, oldest first, as runs the pages can show (none is training)."""
        with self._lock:
            pks = [r[0] for r in self._db.execute("SELECT pk FROM runs WHERE workspace=? ORDER BY pk",
                                                  (workspace,))]
        return [run for run in map(self._load, pks) if run is not None]

    def share(self, run: TrainingRun) -> str:
        """The run's read-only share token (made once)."""
        pk = self._saved_pk(run)
        with self._write() as db:
            row = db.execute("SELECT share FROM runs WHERE pk=?", (pk,)).fetchone()
            if row is None:
                raise StoreError(NOT_SAVED)
            token = row[0]
            if token is None:
                token = new_token()
                db.execute("UPDATE runs SET share=? WHERE pk=?", (token, pk))
        return token

    def shared_run(self, token: str) -> TrainingRun | None:
        """The run a share link names, or None; nothing else of its workspace is reachable from it."""
        with self._lock:
            row = self._db.execute("SELECT pk FROM runs WHERE share=?", (token,)).fetchone()
        return self._load(row[0]) if row else None

    def _load(self, pk: int) -> TrainingRun | None:
        with self._lock:
            row = self._db.execute("SELECT run_id, name, status, message, config, weights, snapshots FROM runs "
                                   "WHERE pk=?", (pk,)).fetchone()
            records = [json.loads(r[0]) for r in self._db.execute(
                "SELECT record FROM epochs WHERE run=? ORDER BY epoch", (pk,))]
        if row is None or row[5] is None:
            return None  # it never completed an epoch: nothing to show
        run_id, name, status, message, config, weights, snapshots = row
        cfg = TrainConfig.from_dict(json.loads(config))
        folder = self.root / "weights" / str(pk)
        try:
            model = model_from_npz((folder / weights).read_bytes(), cfg)
        except (OSError, ValueError):
            return None  # its weights file is gone or damaged: the run cannot be shown
        history = [EpochResult.from_dict(r) for r in records]
        if status == INTERRUPTED and weights.startswith("e"):
            history = history[:int(weights[1:-4])]  # the epochs whose weights were saved
        run = TrainingRun(cfg, name=name, id=run_id, status=status, message=message, history=history, model=model,
                          n_params=model.n_params)
        if snapshots:
            try:
                run.snapshots = Snapshots.from_npz((folder / snapshots).read_bytes(), model.get_weights())
            except (OSError, ValueError):
                run.message = "Its per-epoch weights could not be read back; Inside shows its final weights."
        self._pk[id(run)] = pk
        return run
