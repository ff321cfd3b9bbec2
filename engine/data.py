"""Datasets: IDX parsing, checksums, the registry and verified downloads."""

from __future__ import annotations

import functools
import gzip
import hashlib
import math
import os
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_DATA = Path(__file__).resolve().parent.parent / "data"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# SHA-256 of the *uncompressed* IDX files: the one table of truth for every shipped or fetched file.
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

# Mean and standard deviation of each training set's pixels after scaling to [0, 1]
# (test_data.py recomputes them); "standardize" input scaling uses them, as the PyTorch tutorials do.
PIXEL_STATS: dict[str, tuple[float, float]] = {
    "mnist": (0.1307, 0.3081),
    "fashion-mnist": (0.2860, 0.3530),
    "digits": (0.3053, 0.3758),
}
INPUT_SCALINGS = ("unit", "standardize", "minmax")


def scale_pixels(x: np.ndarray, dataset: str, scaling: str = "unit", dtype=np.float32) -> np.ndarray:
    """uint8 pixel rows -> float network inputs, as the config's input scaling says; a tabular dataset's rows are
    scaled by its training rows' statistics (Dataset.scale)."""
    if dataset not in PIXEL_STATS:
        return load_dataset(dataset).scale(x, scaling, dtype)
    out = x.astype(dtype)
    if scaling == "standardize":
        mean, std = PIXEL_STATS[dataset]
        out *= dtype(1 / (255 * std))
        out -= dtype(mean / std)
    else:
        out *= dtype(1 / 255)
    return out


FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Dataset:
    """Images as uint8 rows of pixels (n, h*w), or a table's rows as float32 features (n, d) with their names and
    no image (image_shape None: engine/tabular.py); labels as int64 (n,)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int] | None
    class_names: tuple[str, ...]
    feature_names: tuple[str, ...] = ()  # a table's columns
    description: str = ""

    @property
    def is_tabular(self) -> bool:
        return self.image_shape is None

    @functools.cached_property
    def feature_ranges(self) -> dict[str, np.ndarray]:
        """Per feature, over the training rows: min, max, mean and std (what the input scalings are fitted on)."""
        x = self.x_train.astype(np.float64)
        return {"min": x.min(axis=0), "max": x.max(axis=0), "mean": x.mean(axis=0), "std": x.std(axis=0)}

    def scale(self, x: np.ndarray, scaling: str, dtype=np.float32) -> np.ndarray:
        """A table's rows as network inputs: `minmax` maps each feature's training range to [0, 1] (scikit-learn's
        MinMaxScaler, as the Kaggle course), `standardize` to mean 0 and std 1; a constant feature becomes 0."""
        r = self.feature_ranges
        low, spread = (r["min"], r["max"] - r["min"]) if scaling == "minmax" else (r["mean"], r["std"])
        return ((x - low) / np.where(spread > 0, spread, 1)).astype(dtype)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.y_train)}, test={len(self.y_test)}, "
                f"image={self.image_shape}, classes={self.n_classes})")


# ---------------------------------------------------------------- IDX parsing

_IDX_DTYPES = {0x08: np.uint8}


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of an uncompressed IDX file, checking everything before allocating."""
    if len(raw) < 4:
        raise ValueError(f"{name}: truncated: {len(raw)} bytes is too short for an IDX header")
    zero, dtype_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code not in _IDX_DTYPES or not 1 <= ndim <= 3:
        raise ValueError(f"{name}: wrong magic number 0x{raw[:4].hex()} "
                         "(expected 0x00000801 for labels or 0x00000803 for images)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{name}: truncated header: {len(raw)} bytes, need {header}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if any(d == 0 for d in dims):
        raise ValueError(f"{name}: a dimension is zero: {dims}")
    expected = header + math.prod(dims)  # exact: an int64 product of lying dimensions can wrap to a small number
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{name}: {what}: {len(raw)} bytes, but dimensions {dims} need {expected}")
    return np.frombuffer(raw, dtype=_IDX_DTYPES[dtype_code], offset=header).reshape(dims)


def read_idx(path: Path, sha256: str | None = None, gz: bool | None = None) -> np.ndarray:
    """Read an IDX file (gzipped when gz, by default when named .gz), verifying its uncompressed SHA-256."""
    path = Path(path)
    gz = path.suffix == ".gz" if gz is None else gz
    try:
        raw = gzip.decompress(path.read_bytes()) if gz else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise ValueError(f"{path.name}: cannot be read as gzip: {err}") from err
    if sha256 is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != sha256:
            raise ValueError(f"{path.name}: checksum mismatch (SHA-256 {digest[:12]}..., "
                             f"expected {sha256[:12]}...): the file is corrupt or not the original")
    return parse_idx(raw, path.name)


def _images_and_labels(images: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(f"{what}: expected 3-d images and 1-d labels, got {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{what}: {len(images)} images but {len(labels)} labels")
    return images.reshape(len(images), -1), labels.astype(np.int64)


def load_idx_dir(folder: Path, checksums: dict[str, str] | None = None) -> tuple[np.ndarray, ...]:
    """Load the four standard IDX files (gzipped or not) from a folder."""
    arrays = []
    for stem in IDX_FILES:
        candidates = [folder / f"{stem}.gz", folder / stem]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise FileNotFoundError(f"{folder}: missing {stem}.gz")
        arrays.append(read_idx(path, checksums.get(stem) if checksums else None))
    x_train, y_train = _images_and_labels(arrays[0], arrays[1], f"{folder} (train)")
    x_test, y_test = _images_and_labels(arrays[2], arrays[3], f"{folder} (test)")
    return x_train, y_train, x_test, y_test


# ---------------------------------------------------------------- downloads

def cache_dir() -> Path:
    """Per-user cache for downloaded datasets ($MLP_LAB_CACHE, else $XDG_CACHE_HOME/mlp-lab)."""
    if os.environ.get("MLP_LAB_CACHE"):
        return Path(os.environ["MLP_LAB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlp-lab"


def download_idx(base_url: str, folder: Path, checksums: dict[str, str], timeout: float = 30.0) -> None:
    """Fetch each missing `<stem>.gz` into folder; a file lands only after its checksum verifies."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, sha in checksums.items():
        target = folder / f"{stem}.gz"
        if target.exists():
            continue
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(base_url + f"{stem}.gz", timeout=timeout) as resp:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
            read_idx(tmp, sha, gz=True)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------- registry

def _load_mnist() -> Dataset:
    arrays = load_idx_dir(REPO_DATA / "mnist", CHECKSUMS["mnist"])
    return Dataset("mnist", *arrays, image_shape=(28, 28), class_names=DIGIT_CLASSES)


def fashion_mnist_folders() -> list[Path]:
    """Where Fashion-MNIST is looked for, in order."""
    return [REPO_DATA / "fashion-mnist", DEBIAN_FASHION, cache_dir() / "fashion-mnist"]


def _has_idx(folder: Path) -> bool:
    return all((folder / f"{s}.gz").exists() or (folder / s).exists() for s in IDX_FILES)


def _load_fashion_mnist() -> Dataset:
    sums = CHECKSUMS["fashion-mnist"]
    folder = next((f for f in fashion_mnist_folders() if _has_idx(f)), None)
    if folder is None:
        folder = cache_dir() / "fashion-mnist"
        try:
            download_idx(os.environ.get("MLP_LAB_FASHION_URL", FASHION_URL), folder, sums)
        except OSError as err:
            raise FileNotFoundError(
                "Fashion-MNIST is not installed and could not be downloaded "
                f"({err}). Install Debian's package dataset-fashion-mnist, or put the four "
                "IDX .gz files in data/fashion-mnist/.") from err
    return Dataset("fashion-mnist", *load_idx_dir(folder, sums), image_shape=(28, 28),
                   class_names=FASHION_CLASSES)


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    pixels = np.rint(bunch.data * (255 / 16)).astype(np.uint8)  # 0..16 -> 0..255 like MNIST
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, bunch.target.astype(np.int64), test_size=0.25, random_state=0, stratify=bunch.target)
    return Dataset("digits", x_train, y_train, x_test, y_test, image_shape=(8, 8),
                   class_names=DIGIT_CLASSES)


def _load_tabular(name: str) -> Dataset:
    from engine.tabular import load_builtin

    return load_builtin(name)


DATASETS: dict[str, Callable[[], Dataset]] = {
    "mnist": _load_mnist,
    "fashion-mnist": _load_fashion_mnist,
    "digits": _load_digits,
    **{name: functools.partial(_load_tabular, name) for name in ("wine", "breast-cancer", "iris", "wine-quality")},
}


@functools.lru_cache(maxsize=4)
def load_dataset(name: str = "mnist") -> Dataset:
    """Load a registered dataset once per process (an uploaded CSV kept from an earlier one too); its arrays are
    read-only."""
    if name not in DATASETS:
        from engine.tabular import restore_upload

        restore_upload(name)
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    ds = DATASETS[name]()
    for arr in (ds.x_train, ds.y_train, ds.x_test, ds.y_test):
        arr.setflags(write=False)
    return ds
