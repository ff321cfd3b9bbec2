"""The weights after each epoch (epoch 0: before training) within a memory budget, and what a run's zip keeps of them.

Past the budget the store keeps every k-th epoch (k doubling as training goes on), the first and the latest;
`kept_text()` says which. Every view of "the network at epoch e" reads its weights from here.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile

import numpy as np

from engine.train import EpochResult

BUDGET_BYTES = 64 * 2**20  # per run
SNAPSHOTS_MEMBER, EPOCHS_MEMBER = "snapshots.npz", "epochs.json"  # in a run's zip
NPZ_SLACK = 2**20  # an npz file's headers on top of its arrays' bytes
MAX_EPOCHS_JSON = 16 * 2**20  # epochs.json: a thousand epochs of statistics take about 2 MB


class Snapshots:
    """Epoch -> the model's parameter arrays (MLP.get_weights order), at most `budget_bytes` in all.

    Thread-safe: a training thread adds while pages read. Arrays are stored as given, not copied: the caller
    hands over arrays nobody changes afterwards (MLP.get_weights makes copies).
    """

    def __init__(self, budget_bytes: int = BUDGET_BYTES) -> None:
        self.budget_bytes = budget_bytes
        self.every = 1  # kept: epochs that are multiples of this, the first and the latest
        self.first_dropped = False  # even two snapshots were over budget: epoch 0 went
        self.too_big = False  # one snapshot is over budget: none is kept
        self._arrays: dict[int, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def add(self, epoch: int, arrays: list[np.ndarray]) -> None:
        """Keep the weights after `epoch` (0: before training), then thin the store back within its budget."""
        with self._lock:
            if self.too_big:
                return
            self._arrays[epoch] = list(arrays)
            self._thin()

    def _thin(self) -> None:
        latest = max(self._arrays)

        def keep() -> dict[int, list[np.ndarray]]:
            return {e: a for e, a in self._arrays.items()
                    if e == latest or e % self.every == 0 and not (e == 0 and self.first_dropped)}

        self._arrays = keep()  # the latest but one goes unless it is a k-th epoch
        while self._nbytes() > self.budget_bytes:
            kept = keep()
            if len(kept) < len(self._arrays):
                self._arrays = kept
            elif self.every <= latest:
                self.every *= 2
            elif not self.first_dropped and len(self._arrays) > 1:
                self.first_dropped = True
            else:
                self._arrays, self.too_big = {}, True

    def _nbytes(self) -> int:
        return sum(a.nbytes for arrays in self._arrays.values() for a in arrays)

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._nbytes()

    @property
    def epochs(self) -> list[int]:
        """The epochs kept, ascending."""
        with self._lock:
            return sorted(self._arrays)

    def get(self, epoch: int) -> list[np.ndarray] | None:
        with self._lock:
            return self._arrays.get(epoch)

    def kept_text(self) -> str:
        """Which epochs the store keeps, in a sentence."""
        budget = f"{self.budget_bytes / 2**20:g} MB"
        if self.too_big:
            return f"This network's weights are larger than the {budget} kept per run: only its final weights show."
        if self.every == 1 and not self.first_dropped:
            return "Every epoch is kept."
        first = "" if self.first_dropped else "before training, "
        return (f"Kept: the weights {first}after every {ordinal(self.every)} epoch and after the latest one "
                f"(all of them would take more than the {budget} kept per run).")

    def to_npz(self) -> bytes:
        """The kept snapshots as an .npz: arrays 'e{epoch}_{i}' in get_weights order, and 'every'."""
        with self._lock:
            arrays = {f"e{e}_{i}": a for e, weights in self._arrays.items() for i, a in enumerate(weights)}
            buf = io.BytesIO()
            np.savez(buf, every=np.array(self.every), **arrays)
        return buf.getvalue()

    @classmethod
    def from_npz(cls, raw: bytes, like: list[np.ndarray], budget_bytes: int = BUDGET_BYTES) -> Snapshots:
        """Snapshots saved by to_npz, each array checked against the shapes of `like` (a model's get_weights)."""
        store = cls(budget_bytes)
        found: dict[int, dict[int, np.ndarray]] = {}
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as f:
                store.every = int(f["every"]) if "every" in f.files else 1
                for name in f.files:
                    if name == "every":
                        continue
                    epoch, i = (int(part) for part in name[1:].split("_"))
                    if not name.startswith("e") or epoch < 0 or not 0 <= i < len(like):
                        raise ValueError(f"an array named {name!r}")
                    a = f[name]
                    if a.shape != like[i].shape:
                        raise ValueError(f"{name} has shape {a.shape}, the network needs {like[i].shape}")
                    found.setdefault(epoch, {})[i] = a.astype(like[i].dtype, copy=False)
        except (OSError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise ValueError(f"{SNAPSHOTS_MEMBER} is unreadable ({err})") from err
        except ValueError as err:
            raise ValueError(f"{SNAPSHOTS_MEMBER} does not fit this network: {err}") from err
        for epoch, arrays in sorted(found.items()):
            if len(arrays) != len(like):
                raise ValueError(f"{SNAPSHOTS_MEMBER} lacks some of epoch {epoch}'s arrays")
            store._arrays[epoch] = [arrays[i] for i in range(len(like))]
        if store._nbytes() > budget_bytes:
            raise ValueError(f"{SNAPSHOTS_MEMBER} holds more than the {budget_bytes / 2**20:g} MB a run may keep")
        return store

    def __repr__(self) -> str:
        return f"Snapshots(epochs={self.epochs}, {self.nbytes / 2**20:.1f} MB of {self.budget_bytes / 2**20:g} MB)"


def ordinal(n: int) -> str:
    """2 -> '2nd', 4 -> '4th', 1 -> '' (every epoch)."""
    if n == 1:
        return ""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def write_inside(z: zipfile.ZipFile, history: list[EpochResult], snapshots: Snapshots) -> None:
    """Into a run's zip: every epoch's full record (layer statistics, confusion matrix) and the snapshots."""
    z.writestr(EPOCHS_MEMBER, json.dumps([r.to_dict() for r in history]))
    z.writestr(SNAPSHOTS_MEMBER, snapshots.to_npz())


def read_inside(z: zipfile.ZipFile, history: list[EpochResult], like: list[np.ndarray],
                budget_bytes: int = BUDGET_BYTES) -> tuple[list[EpochResult], Snapshots]:
    """What write_inside put in a zip, checked: `history` (from history.csv) with each epoch's statistics and
    confusion matrix added, and the snapshots. A zip without them (an older download) gives them empty."""
    names = set(z.namelist())
    snapshots = Snapshots(budget_bytes)
    if SNAPSHOTS_MEMBER in names:
        if z.getinfo(SNAPSHOTS_MEMBER).file_size > budget_bytes + NPZ_SLACK:
            raise ValueError(f"{SNAPSHOTS_MEMBER} is larger than the {budget_bytes / 2**20:g} MB a run may keep")
        snapshots = Snapshots.from_npz(z.read(SNAPSHOTS_MEMBER), like, budget_bytes)
    if EPOCHS_MEMBER in names:
        if z.getinfo(EPOCHS_MEMBER).file_size > MAX_EPOCHS_JSON:
            raise ValueError(f"{EPOCHS_MEMBER} is larger than {MAX_EPOCHS_JSON // 2**20} MB")
        try:
            full = {r.epoch: r for r in map(EpochResult.from_dict, json.loads(z.read(EPOCHS_MEMBER)))}
        except (TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"{EPOCHS_MEMBER} is unreadable ({err})") from err
        history = [full.get(r.epoch, r) if _same_epoch(full.get(r.epoch), r) else r for r in history]
    return history, snapshots


def _same_epoch(full: EpochResult | None, row: EpochResult) -> bool:
    """epochs.json's record agrees with history.csv's row (the CSV is what the learner may have edited)."""
    return full is not None and full.test_acc == row.test_acc and full.train_loss == row.train_loss
