"""Datasets: real MNIST facts, the IDX parser on corrupt files, verified downloads from a local server."""

import gzip
import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from engine import data as D

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def test_mnist_matches_published_facts(mnist):
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.x_train.dtype == np.uint8 and mnist.image_shape == (28, 28)
    assert np.bincount(mnist.y_train).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == TEST_COUNTS
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    pixels = mnist.x_train / 255.0
    assert pixels.mean() == pytest.approx(0.1307, abs=5e-5)
    assert pixels.std() == pytest.approx(0.3081, abs=5e-5)


def test_loaded_arrays_are_read_only(mnist):
    with pytest.raises(ValueError):
        mnist.x_train[0, 0] = 1


def test_shipped_checksums_match_the_shared_table():
    sums = Path(D.REPO_DATA / "mnist" / "SHA256SUMS").read_text().split("\n")
    table = dict(reversed(line.split()) for line in sums if line and not line.startswith("#"))
    assert table == D.CHECKSUMS["mnist"]


def test_digits_dataset_is_8x8_with_a_fixed_split(digits):
    assert digits.image_shape == (8, 8) and digits.x_train.shape[1] == 64
    assert len(digits.y_train) + len(digits.y_test) == 1797
    assert digits.x_train.max() == 255 and digits.x_train.dtype == np.uint8
    again = D.DATASETS["digits"]()
    assert np.array_equal(again.y_test, digits.y_test)


@pytest.mark.skipif(not D._has_idx(D.DEBIAN_FASHION), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian():
    ds = D.load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 784) and len(ds.y_test) == 10000
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert ds.class_names[9] == "Ankle boot"


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        D.load_dataset("cifar")


@pytest.mark.parametrize("mangle, message", [
    (lambda b: b[:3], "too short"),
    (lambda b: b"\x00\x00\x09\x03" + b[4:], "wrong magic"),
    (lambda b: b"\x01\x00\x08\x03" + b[4:], "wrong magic"),
    (lambda b: b[:10], "truncated header"),
    (lambda b: b[:-1], "truncated"),
    (lambda b: b + b"\x00", "trailing bytes"),
    (lambda b: b[:4] + (0).to_bytes(4, "big") + b[8:], "zero"),
    (lambda b: b[:4] + (10**9).to_bytes(4, "big") + b[8:], "truncated"),
])
def test_idx_parser_rejects_corrupt_files(mangle, message):
    good = idx_bytes(np.arange(2 * 3 * 4).reshape(2, 3, 4))
    assert D.parse_idx(good).shape == (2, 3, 4)
    with pytest.raises(ValueError, match=message):
        D.parse_idx(mangle(good), "x.idx")


def test_read_idx_names_the_file_on_bad_gzip_and_bad_checksum(tmp_path):
    bad = tmp_path / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz.*gzip"):
        D.read_idx(bad)
    good = tmp_path / "labels.gz"
    good.write_bytes(gzip.compress(idx_bytes(np.arange(5))))
    assert D.read_idx(good).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="labels.gz: checksum mismatch"):
        D.read_idx(good, "0" * 64)


def test_images_and_labels_must_agree(tmp_path):
    files = {"train-images-idx3-ubyte": np.zeros((3, 2, 2)), "train-labels-idx1-ubyte": np.zeros(4),
             "t10k-images-idx3-ubyte": np.zeros((1, 2, 2)), "t10k-labels-idx1-ubyte": np.zeros(1)}
    for stem, arr in files.items():
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    with pytest.raises(ValueError, match="3 images but 4 labels"):
        D.load_idx_dir(tmp_path)


@pytest.fixture
def idx_server(tmp_path):
    """Serve fixture IDX .gz files from a local HTTP server on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (6, 4, 4)),
              "train-labels-idx1-ubyte": rng.integers(0, 10, 6),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (2, 4, 4)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, 2)}
    sums = {}
    for stem, arr in arrays.items():
        raw = idx_bytes(arr)
        sums[stem] = hashlib.sha256(raw).hexdigest()
        (root / f"{stem}.gz").write_bytes(gzip.compress(raw))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", sums, arrays
    server.shutdown()
    server.server_close()


def test_download_verifies_then_renames(idx_server, tmp_path):
    url, sums, arrays = idx_server
    dest = tmp_path / "cache"
    D.download_idx(url, dest, sums)
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{s}.gz" for s in sums)
    x_train, y_train, x_test, y_test = D.load_idx_dir(dest, sums)
    assert np.array_equal(x_train, arrays["train-images-idx3-ubyte"].reshape(6, 16))
    assert np.array_equal(y_test, arrays["t10k-labels-idx1-ubyte"])


def test_download_with_wrong_checksum_leaves_nothing(idx_server, tmp_path):
    url, sums, _ = idx_server
    dest = tmp_path / "cache"
    wrong = dict(sums, **{"train-labels-idx1-ubyte": "f" * 64})
    with pytest.raises(ValueError, match="checksum"):
        D.download_idx(url, dest, wrong)
    names = [p.name for p in dest.iterdir()]
    assert "train-labels-idx1-ubyte.gz" not in names
    assert not any(n.endswith(".part") for n in names)


def test_fashion_mnist_downloads_into_the_cache_when_missing(idx_server, tmp_path, monkeypatch):
    url, sums, _ = idx_server
    monkeypatch.setitem(D.CHECKSUMS, "fashion-mnist", sums)
    monkeypatch.setattr(D, "REPO_DATA", tmp_path / "nodata")
    monkeypatch.setattr(D, "DEBIAN_FASHION", tmp_path / "nodebian")
    monkeypatch.setenv("MLP_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLP_LAB_FASHION_URL", url)
    ds = D._load_fashion_mnist()
    assert ds.x_train.shape == (6, 16) and ds.class_names[0] == "T-shirt/top"
    assert (tmp_path / "cache" / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_fashion_mnist_without_files_or_network_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "REPO_DATA", tmp_path / "nodata")
    monkeypatch.setattr(D, "DEBIAN_FASHION", tmp_path / "nodebian")
    monkeypatch.setenv("MLP_LAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MLP_LAB_FASHION_URL", "http://127.0.0.1:9/")  # nothing listens on the discard port
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        D._load_fashion_mnist()


@pytest.mark.parametrize("name", ["mnist", "digits"])
def test_pixel_stats_table_matches_the_data(name):
    ds = D.load_dataset(name)
    mean, std = D.PIXEL_STATS[name]
    x = ds.x_train / 255.0
    assert x.mean() == pytest.approx(mean, abs=5e-5) and x.std() == pytest.approx(std, abs=5e-5)
    z = D.scale_pixels(ds.x_train, name, "standardize")
    assert z.dtype == np.float32
    assert z.mean() == pytest.approx(0, abs=1e-3) and z.std() == pytest.approx(1, abs=1e-3)
    unit = D.scale_pixels(ds.x_train[:5], name)
    assert unit.min() >= 0 and unit.max() == pytest.approx(1.0)
