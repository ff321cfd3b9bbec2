"""The run-zip importer against hostile and clumsy uploads: every bad file is a ValueError that says what is wrong,
found from declared sizes and headers before anything large is decompressed or allocated."""

import io
import json
import resource
import struct
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import EpochResult, TrainConfig, build_model
from ui.runs import MAX_ZIP_MEMBERS, TrainingRun, history_csv, run_from_zip, run_to_zip

CFG = TrainConfig(dataset="digits", hidden_sizes=(8,), activation="relu", output="softmax", loss="cross_entropy",
                  epochs=3, init="he")


@pytest.fixture(scope="module")
def good_zip() -> bytes:
    model = build_model(CFG, 64, 10)
    history = [EpochResult(epoch=e, train_loss=1.0 / e, train_acc=0.5, test_loss=1.0 / e, test_acc=0.5)
               for e in (1, 2, 3)]
    run = TrainingRun(CFG, status="finished", history=history, model=model, n_params=model.n_params)
    run.snapshots.add(3, model.get_weights())
    return run_to_zip(run)


def rezip(good: bytes, **replace: bytes | str) -> bytes:
    """The good zip with some members replaced (None: left out) or added."""
    src = zipfile.ZipFile(io.BytesIO(good))
    members = {n: src.read(n) for n in src.namelist()}
    members.update(replace)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            if data is not None:
                z.writestr(name, data)
    return buf.getvalue()


def npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def weights_of(good: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(zipfile.ZipFile(io.BytesIO(good)).read("weights.npz"))) as f:
        return {k: f[k] for k in f.files}


def lying_npy(shape: tuple[int, ...]) -> bytes:
    """An .npy whose header declares `shape` of float32 but which holds 16 bytes."""
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(16)


def test_the_good_zip_loads(good_zip):
    back = run_from_zip(good_zip)
    assert back.config == CFG and [r.epoch for r in back.history] == [1, 2, 3]


def test_a_weight_header_declaring_terabytes_is_refused_before_allocating(good_zip):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as inner:
        for name, a in weights_of(good_zip).items():
            if name == "0.W":
                inner.writestr("0.W.npy", lying_npy((10**6, 10**6)))
            else:
                out = io.BytesIO()
                np.save(out, a)
                inner.writestr(f"{name}.npy", out.getvalue())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=r"0\.W declares shape \(1000000, 1000000\)"):
        run_from_zip(rezip(good_zip, **{"weights.npz": buf.getvalue()}))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 2**10  # KiB: nothing big was made


def test_a_lying_snapshot_header_is_refused_too(good_zip):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as inner:
        inner.writestr("e3_0.npy", lying_npy((50_000, 50_000)))
    with pytest.raises(ValueError, match=r"snapshots\.npz: e3_0 declares shape"):
        run_from_zip(rezip(good_zip, **{"snapshots.npz": buf.getvalue()}))


def test_a_transposed_weight_is_named(good_zip):
    weights = weights_of(good_zip)
    weights["0.W"] = weights["0.W"].T.copy()
    with pytest.raises(ValueError, match=r"0\.W has shape \(8, 64\) \(transposed\?\); the network in config\.json "
                                         r"needs \(64, 8\)"):
        run_from_zip(rezip(good_zip, **{"weights.npz": npz(**weights)}))


def test_pickled_object_arrays_are_refused(good_zip):
    weights = weights_of(good_zip)
    weights["0.b"] = np.array([object()] * 8, dtype=object)
    with pytest.raises(ValueError, match="holds Python objects"):
        run_from_zip(rezip(good_zip, **{"weights.npz": npz(**weights)}))


def test_more_history_rows_than_epochs_are_refused(good_zip):
    rows = [EpochResult(epoch=e, train_loss=1.0, train_acc=0.5, test_loss=1.0, test_acc=0.5) for e in range(1, 5001)]
    with pytest.raises(ValueError, match="history.csv has 5,000 rows; the run in config.json trains 3 epochs"):
        run_from_zip(rezip(good_zip, **{"history.csv": history_csv(rows)}))


def test_history_epochs_out_of_order_are_refused(good_zip):
    rows = [EpochResult(epoch=e, train_loss=1.0, train_acc=0.5, test_loss=1.0, test_acc=0.5) for e in (1, 3)]
    with pytest.raises(ValueError, match="not 1, 2, 3"):
        run_from_zip(rezip(good_zip, **{"history.csv": history_csv(rows)}))


def test_a_zip_bomb_member_is_refused_from_its_declared_size(good_zip):
    bomb = rezip(good_zip, **{"history.csv": b"0" * (64 * 2**20)})  # 64 MiB of zeros deflate to ~64 KB
    assert len(bomb) < 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match="history.csv declares 67,108,864 bytes"):
        run_from_zip(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 32 * 2**10  # KiB


def test_too_many_members_are_refused_before_the_directory_is_read(good_zip):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for i in range(MAX_ZIP_MEMBERS + 1):
            z.writestr(f"f{i}", b"")
    with pytest.raises(ValueError, match=f"holds {MAX_ZIP_MEMBERS + 1} files"):
        run_from_zip(buf.getvalue())


@pytest.mark.parametrize("change, words", [
    ({"epochs": 10**9}, "Epochs"),
    ({"hidden_sizes": [8192] * 10}, "parameters; the limit is"),
    ({"dropout": 5}, "Dropout"),
])
def test_absurd_config_values_get_the_configs_own_sentence(good_zip, change, words):
    meta = {"name": "x", "status": "finished", "config": {**CFG.to_dict(), **change}}
    with pytest.raises(ValueError, match=words):
        run_from_zip(rezip(good_zip, **{"config.json": json.dumps(meta)}))


def test_a_huge_name_is_cut(good_zip):
    meta = {"name": "n" * 10**4, "config": CFG.to_dict()}
    assert len(run_from_zip(rezip(good_zip, **{"config.json": json.dumps(meta)})).name) < 300


def _mutations(good: bytes):
    """Bytes derived from a good run zip: flipped bytes, truncations, members swapped or dropped, or junk."""
    members = ("config.json", "history.csv", "weights.npz", "snapshots.npz", "epochs.json")
    flip = st.tuples(st.integers(0, len(good) - 1), st.integers(1, 255)).map(
        lambda p: good[:p[0]] + bytes([good[p[0]] ^ p[1]]) + good[p[0] + 1:])
    cut = st.integers(0, len(good)).map(lambda n: good[:n])
    swap = st.tuples(st.sampled_from(members), st.one_of(st.binary(max_size=2000), st.none(),
                                                         st.sampled_from(members))).map(
        lambda p: rezip(good, **{p[0]: zipfile.ZipFile(io.BytesIO(good)).read(p[1]) if p[1] in members else p[1]}))
    return st.one_of(flip, cut, swap, st.binary(max_size=4000))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_corruption_is_a_value_error_or_a_consistent_run(good_zip, data):
    raw = data.draw(_mutations(good_zip))
    try:
        run = run_from_zip(raw)
    except ValueError as err:
        assert str(err) and "Traceback" not in str(err) and "/" not in str(err).split("(")[0]
        return
    weights = run.model.get_weights()
    assert run.config.epochs >= len(run.history)
    assert [w.shape for w in weights] == [w.shape for w in build_model(run.config, 64, 10).get_weights()]
