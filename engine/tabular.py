"""Tabular datasets: scikit-learn's wine, breast-cancer and iris, offline, and CSV files a learner uploads.

A tabular Dataset keeps its rows as float32 features, unscaled, with the features' names and no image; the
config's input scaling (`minmax` or `standardize`) is fitted on its training rows (Dataset.scale). Every tabular
set is split 70/30 as the Kaggle course splits the red wine data: scikit-learn's train_test_split with
random_state=1234. An uploaded CSV is checked (parse_csv), then registered for the process under a name made from
its bytes and label column (register_csv) and kept in the cache folder, so runs trained on it reload after a
restart.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math

import numpy as np

from engine import config
from engine.data import DATASETS, Dataset, cache_dir

SPLIT_SEED, TEST_SHARE = 1234, 0.3  # the course's train_test_split(test_size=0.3, random_state=1234)
MAX_CSV_BYTES = 20 * 2**20
MAX_ROWS = 200_000
MAX_FEATURES = 2_000
MIN_ROWS = 10  # after dropping rows with missing values: enough for a training and a test part
MAX_CLASSES = 100
MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}
UPLOAD_PREFIX = "csv-"
BUILTIN = {"wine": "load_wine", "breast-cancer": "load_breast_cancer", "iris": "load_iris"}  # scikit-learn's loaders
# The Kaggle course's red wine table (UCI's, 1,599 wines): not shipped; an upload with its columns is `wine-quality`
WINE_QUALITY, WINE_QUALITY_FILE = "wine-quality", "winequality-red.csv"
WINE_QUALITY_URL = ("https://archive.ics.uci.edu/dataset/186/wine+quality (or Kaggle's "
                    "uciml/red-wine-quality-cortez-et-al-2009)")
WINE_QUALITY_COLUMNS = ("fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
                        "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates", "alcohol",
                        "quality")


class CsvError(ValueError):
    """A CSV file that cannot become a dataset; the message says why in a learner's words."""


def split(name: str, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...], feature_names: tuple[str, ...],
          description: str) -> Dataset:
    """Features (n, d) and class indices (n,) as a Dataset split 70/30 with the course's seed."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(x.astype(np.float32), y.astype(np.int64),
                                                        test_size=TEST_SHARE, random_state=SPLIT_SEED)
    return Dataset(name, x_train, y_train, x_test, y_test, image_shape=None, class_names=class_names,
                   feature_names=feature_names, description=description)


def load_builtin(name: str) -> Dataset:
    """One of scikit-learn's bundled tables (no download)."""
    from sklearn import datasets

    if name == WINE_QUALITY:
        return _load_wine_quality()
    bunch = getattr(datasets, BUILTIN[name])()
    return split(name, bunch.data, bunch.target, tuple(map(str, bunch.target_names)),
                 tuple(map(str, bunch.feature_names)), config.DATASET_CHOICES[name])


def _load_wine_quality() -> Dataset:
    """The red wine quality table, once uploaded (register_csv keeps a copy under this name)."""
    path = cache_dir() / "uploads" / f"{WINE_QUALITY}.csv"
    if not path.exists():
        raise FileNotFoundError(f"The wine-quality dataset is {WINE_QUALITY_FILE}, which MLP Lab does not ship: "
                                f"download it from {WINE_QUALITY_URL} and upload it on the Data page (label column "
                                "quality).")
    return parse_csv(path.read_bytes(), "quality", WINE_QUALITY, config.DATASET_CHOICES[WINE_QUALITY])[0]


# ---------------------------------------------------------------- CSV upload

def csv_columns(raw: bytes) -> list[str]:
    """The header's column names, for choosing the label; a CsvError if there is no readable header."""
    return _read(raw)[0]


def _read(raw: bytes) -> tuple[list[str], list[list[str]]]:
    if len(raw) > MAX_CSV_BYTES:
        raise CsvError(f"The file is {len(raw) / 2**20:.1f} MB; the limit is {MAX_CSV_BYTES // 2**20} MB.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvError("The file is not text in UTF-8: save it as a CSV (UTF-8) and upload it again.") from None
    if not text.strip():
        raise CsvError("The file is empty.")
    first = text.lstrip().splitlines()[0]
    delimiter = max(",;\t", key=first.count)  # the UCI wine files use ';', most others ','
    rows = [row for row in csv.reader(io.StringIO(text.strip()), delimiter=delimiter) if row]
    header = [h.strip() for h in rows[0]]
    if len(header) - 1 > MAX_FEATURES:
        raise CsvError(f"The file has {len(header):,} columns; at most {MAX_FEATURES + 1:,} (features and the "
                       "label) are accepted.")
    if any(not h for h in header):
        raise CsvError(f"Column {header.index('') + 1} has no name: the first row must name every column.")
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise CsvError(f"Column names must be different; repeated: {', '.join(duplicates)}.")
    if len(rows) - 1 > MAX_ROWS:
        raise CsvError(f"The file has {len(rows) - 1:,} rows; the limit is {MAX_ROWS:,}.")
    for i, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise CsvError(f"Line {i} has {len(row)} values but the header names {len(header)} columns.")
    return header, rows[1:]


def _number(text: str) -> float | None:
    """The cell as a number; None where it is missing; NaN where it is text."""
    t = text.strip()
    if t.lower() in MISSING:
        return None
    try:
        value = float(t)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else None


def _class_order(labels: list[str]) -> list[str]:
    """The distinct labels, numerically when they are all numbers (3 < 10), else alphabetically."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def parse_csv(raw: bytes, label: str, name: str = "upload", description: str = "") -> tuple[Dataset, int]:
    """A CSV's bytes and its label column -> (the Dataset, rows dropped for missing values).

    Every other column is a feature and must be numbers (the others are named in the error); a row with a
    missing value (empty, NA, NaN, ?) anywhere is dropped and counted; labels may be any numbers or text, each
    distinct value a class, named by it. A CsvError says what is wrong.
    """
    header, rows = _read(raw)
    if label not in header:
        raise CsvError(f"There is no column {label!r}; the columns are: {', '.join(header)}.")
    if len(header) < 2:
        raise CsvError("The file has one column: it needs at least one feature column besides the label.")
    if not rows:
        raise CsvError("The file has a header but no rows of data.")
    j = header.index(label)
    features = [h for h in header if h != label]
    values = [[_number(cell) for k, cell in enumerate(row) if k != j] for row in rows]
    text_columns = [f for k, f in enumerate(features) if any(v[k] is not None and math.isnan(v[k]) for v in values)]
    if text_columns:
        raise CsvError(f"Features must be numbers; these columns hold text: {', '.join(text_columns)}. Remove them, "
                       "or choose one of them as the label.")
    labels = [row[j].strip() for row in rows]
    complete = [i for i, v in enumerate(values) if None not in v and labels[i].lower() not in MISSING]
    dropped = len(rows) - len(complete)
    if len(complete) < MIN_ROWS:
        raise CsvError(f"Only {len(complete)} rows are complete ({dropped} have missing values); at least "
                       f"{MIN_ROWS} are needed.")
    labels = [labels[i] for i in complete]
    classes = _class_order(labels)
    if len(classes) < 2:
        raise CsvError(f"The label column {label!r} has one value ({classes[0]}) in every complete row: there is "
                       "nothing to tell apart.")
    if len(classes) > MAX_CLASSES:
        raise CsvError(f"The label column {label!r} has {len(classes)} distinct values; at most {MAX_CLASSES} "
                       "classes are accepted (is it a measurement rather than a class?).")
    index = {c: i for i, c in enumerate(classes)}
    x = np.array([values[i] for i in complete], dtype=np.float64)
    y = np.array([index[c] for c in labels], dtype=np.int64)
    return split(name, x, y, tuple(classes), tuple(features), description), dropped


def upload_name(raw: bytes, label: str) -> str:
    """The name an upload is registered under: the same file and label column give the same name."""
    return UPLOAD_PREFIX + hashlib.sha256(raw + b"\0" + label.encode()).hexdigest()[:12]


def register_csv(raw: bytes, label: str, filename: str = "upload.csv") -> tuple[Dataset, int]:
    """Parse a CSV (parse_csv), register it as a dataset of this process and keep it in the cache folder.

    Returns (the Dataset, rows dropped for missing values); a TrainConfig may then name it as its dataset.
    """
    name = upload_name(raw, label)
    description = f"{filename} (uploaded; label column {label!r})"
    data, dropped = parse_csv(raw, label, name, description)
    folder = cache_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.csv").write_bytes(raw)
    (folder / f"{name}.json").write_text(json.dumps({"label": label, "filename": filename}))
    _register(name, data)
    if is_wine_quality(data):
        (folder / f"{WINE_QUALITY}.csv").write_bytes(raw)  # the wine-quality preset's dataset from now on
    return data, dropped


def is_wine_quality(data: Dataset) -> bool:
    """Whether a table is the red wine quality one: its columns, quality the label."""
    return (*data.feature_names, "quality") == WINE_QUALITY_COLUMNS


def _register(name: str, data: Dataset) -> None:
    DATASETS[name] = lambda: data
    config.DATASET_CHOICES[name] = data.description


def restore_upload(name: str) -> bool:
    """Register an upload kept in the cache folder by an earlier process; False where there is none."""
    folder = cache_dir() / "uploads"
    raw_path, meta_path = folder / f"{name}.csv", folder / f"{name}.json"
    if not name.startswith(UPLOAD_PREFIX) or not raw_path.exists() or not meta_path.exists():
        return False
    meta = json.loads(meta_path.read_text())
    raw = raw_path.read_bytes()
    if upload_name(raw, meta["label"]) != name:
        return False
    data, _ = parse_csv(raw, meta["label"], name, f"{meta['filename']} (uploaded; label column {meta['label']!r})")
    _register(name, data)
    return True
