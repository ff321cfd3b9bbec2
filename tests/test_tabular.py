"""Tabular data: scikit-learn's tables, the CSV checks (each edge case a sentence), uploads registered and reloaded,
and the wine-quality preset end to end on a synthetic file with the red wine table's columns."""

import numpy as np
import pytest

from engine import PRESETS, TrainConfig, build_model, load_dataset, tabular, train
from engine import config as config_module
from engine import data as data_module
from engine.config import ConfigError
from engine.tabular import CsvError, parse_csv, register_csv


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache folder, and the registries as they were after the test."""
    monkeypatch.setenv("MLP_LAB_CACHE", str(tmp_path))
    datasets, choices = dict(data_module.DATASETS), dict(config_module.DATASET_CHOICES)
    load_dataset.cache_clear()
    yield tmp_path
    for registry, before in ((data_module.DATASETS, datasets), (config_module.DATASET_CHOICES, choices)):
        registry.clear()
        registry.update(before)
    load_dataset.cache_clear()


def csv_bytes(header, rows, sep=",") -> bytes:
    return "\n".join([sep.join(header), *(sep.join(map(str, r)) for r in rows)]).encode()


def wine_quality_csv(n: int = 300, seed: int = 0) -> bytes:
    """A synthetic winequality-red.csv: UCI's quoted, semicolon-separated header, quality 3-8 that depends on
    alcohol and volatile acidity as in the real table."""
    rng = np.random.default_rng(seed)
    cols = tabular.WINE_QUALITY_COLUMNS
    x = rng.normal(size=(n, len(cols) - 1)) * [1.7, 0.18, 0.2, 1.4, 0.05, 10, 33, 0.002, 0.15, 0.17, 1.07] + \
        [8.3, 0.53, 0.27, 2.5, 0.087, 15.9, 46.5, 0.9967, 3.31, 0.66, 10.4]
    quality = np.clip(np.rint(5.6 + 0.9 * (x[:, 10] - 10.4) - 3 * (x[:, 1] - 0.53) + rng.normal(0, 0.4, n)), 3, 8)
    header = ";".join(f'"{c}"' for c in cols)
    rows = [";".join(f"{v:.4f}" for v in row) + f";{int(q)}" for row, q in zip(x, quality)]
    return "\n".join([header, *rows]).encode()


@pytest.mark.parametrize("name, shape, classes", [("wine", (178, 13), 3), ("breast-cancer", (569, 30), 2),
                                                  ("iris", (150, 4), 3)])
def test_scikit_learns_tables_load_offline_split_70_30(name, shape, classes):
    data = load_dataset(name)
    assert data.is_tabular and data.image_shape is None and data.x_train.dtype == np.float32
    assert len(data.y_train) + len(data.y_test) == shape[0] and data.n_features == shape[1] == len(data.feature_names)
    assert len(data.y_test) == int(np.ceil(0.3 * shape[0])) and data.n_classes == classes
    assert all(isinstance(f, str) for f in data.feature_names)


def test_min_max_and_standardized_scaling_are_fitted_on_the_training_rows():
    data = load_dataset("wine")
    train_rows = data.scale(data.x_train, "minmax")
    assert train_rows.min(axis=0) == pytest.approx(0) and train_rows.max(axis=0) == pytest.approx(1, abs=1e-6)
    test_rows = data.scale(data.x_test, "minmax")
    assert test_rows.min() < 0 or test_rows.max() > 1  # the test rows are not fitted: some fall outside
    standard = data.scale(data.x_train, "standardize")
    np.testing.assert_allclose(standard.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(standard.std(axis=0), 1, atol=1e-4)
    cfg = TrainConfig(dataset="wine", input_scaling="minmax", hidden_sizes=(8,))
    from engine.train import make_splits

    np.testing.assert_array_equal(make_splits(cfg, data).x_train, train_rows)


def test_scalings_fit_their_kind_of_data():
    with pytest.raises(ConfigError, match="this dataset is a table"):
        TrainConfig(dataset="iris")  # pixels / 255 is the default
    with pytest.raises(ConfigError, match="min-max is for tables"):
        TrainConfig(dataset="mnist", input_scaling="minmax")
    TrainConfig(dataset="iris", input_scaling="standardize")


def test_a_csv_with_text_labels_missing_values_and_semicolons():
    header = ["length", "width", "species"]
    rows = [[1.0 + i % 7, 2.0 + i % 5, ["setosa", "virginica", "versicolor"][i % 3]] for i in range(30)]
    rows[4][0], rows[9][1], rows[11][2] = "", "NaN", "?"
    data, dropped = parse_csv(csv_bytes(header, rows, sep=";"), "species")
    assert dropped == 3 and len(data.y_train) + len(data.y_test) == 27
    assert data.class_names == ("setosa", "versicolor", "virginica") and data.feature_names == ("length", "width")
    assert data.image_shape is None and data.x_train.dtype == np.float32


def test_integer_labels_are_ordered_as_numbers():
    rows = [[i, [3, 10, 9, 5][i % 4]] for i in range(20)]
    data, _ = parse_csv(csv_bytes(["x", "grade"], rows), "grade")
    assert data.class_names == ("3", "5", "9", "10")
    assert {data.class_names[c] for c in data.y_train} <= {"3", "5", "9", "10"}


@pytest.mark.parametrize("raw, label, message", [
    (b"", "y", "The file is empty"),
    (b"   \n\n", "y", "The file is empty"),
    (csv_bytes(["y"], [[1], [2]] * 10), "y", "one column: it needs at least one feature column"),
    (csv_bytes(["a", "colour", "name", "y"], [[1, "red", "x", 0], [2, "blue", "z", 1]] * 10), "y",
     "these columns hold text: colour, name"),
    (csv_bytes(["a", "y"], [[1, "NaN"], ["", 1]] * 10), "y", "Only 0 rows are complete \\(20 have missing values\\)"),
    (csv_bytes(["a", "y"], [[i, 7] for i in range(20)]), "y", "has one value \\(7\\) in every complete row"),
    (csv_bytes([f"f{i}" for i in range(10_000)] + ["y"], [list(range(10_001))] * 12), "y",
     "The file has 10,001 columns; at most 2,001"),
    (csv_bytes(["a", "y"], [[1, 0]] * 20), "label", "There is no column 'label'; the columns are: a, y"),
    (csv_bytes(["a", "b", "y"], [[1, 2, 0], [1, 0]] * 10), "y", "Line 3 has 2 values but the header names 3"),
    (csv_bytes(["a", "a", "y"], [[1, 2, 0]] * 20), "y", "repeated: a"),
    (csv_bytes(["a", "y"], [[1, 0], [2, 1]] * 3), "y", "at least 10 are needed"),
    (csv_bytes(["a", "y"], [[i, i] for i in range(300)]), "y", "300 distinct values; at most 100 classes"),
    ("a,y\n1,é\n".encode("latin-1"), "y", "not text in UTF-8"),
    (csv_bytes(["a", "y"], []), "y", "a header but no rows"),
])
def test_a_bad_csv_gets_a_sentence_saying_why(raw, label, message):
    with pytest.raises(CsvError, match=message):
        parse_csv(raw, label)


def test_a_csv_over_the_size_cap_is_refused_before_it_is_read(monkeypatch):
    monkeypatch.setattr(tabular, "MAX_CSV_BYTES", 1000)
    with pytest.raises(CsvError, match="the limit is 0 MB"):
        parse_csv(b"a,y\n" + b"1,0\n" * 500, "y")


def test_an_upload_is_registered_trained_on_and_reloaded_after_a_restart(cache):
    rows = [[i % 9, (i * 7) % 11, "yes" if i % 9 > 4 else "no"] for i in range(120)]
    raw = csv_bytes(["a", "b", "answer"], rows)
    data, dropped = register_csv(raw, "answer", "answers.csv")
    assert dropped == 0 and data.name.startswith("csv-") and "answers.csv" in data.description
    cfg = TrainConfig(dataset=data.name, input_scaling="minmax", hidden_sizes=("8bn",), activation="relu",
                      output="softmax", loss="cross_entropy", optimizer="adam", learning_rate=0.05, epochs=15,
                      batch_size=16)
    history = list(train(cfg, load_dataset(data.name)))
    assert history[-1].train_acc > 0.9  # "yes" is a > 4: learnable
    # a restart: the registries forget the upload; a run's saved config brings it back from the cache folder
    del data_module.DATASETS[data.name], config_module.DATASET_CHOICES[data.name]
    load_dataset.cache_clear()
    again = TrainConfig.from_dict(cfg.to_dict())
    np.testing.assert_array_equal(load_dataset(again.dataset).x_test, data.x_test)
    with pytest.raises(ConfigError, match="Unknown dataset 'csv-000000000000'"):
        TrainConfig(dataset="csv-000000000000", input_scaling="minmax")


def test_wine_quality_is_refused_until_its_file_is_uploaded_then_the_preset_trains_on_it(cache):
    with pytest.raises(FileNotFoundError, match="winequality-red.csv.*archive.ics.uci.edu"):
        load_dataset("wine-quality")
    data, _ = register_csv(wine_quality_csv(), "quality", "winequality-red.csv")
    assert tabular.is_wine_quality(data) and data.n_features == 11
    wine = load_dataset("wine-quality")
    assert wine.class_names == data.class_names and set(wine.class_names) <= {str(q) for q in range(3, 9)}
    preset = PRESETS["wine-quality"].config
    assert (preset.hidden_sizes, preset.learning_rate, preset.batch_size, preset.epochs, preset.val_split,
            preset.input_scaling) == (("144bn.3", "144bn.3", "16bn"), 0.000056194, 128, 1000, 0.1, "minmax")
    cfg = preset.replace(epochs=3, learning_rate=3e-3)
    model = build_model(cfg, wine.n_features, wine.n_classes)
    assert [type(layer).__name__ for layer in model.layers][:5] == ["Linear", "ReLU", "BatchNorm", "Dropout",
                                                                    "Linear"]
    history = list(train(cfg, wine, model=model))
    assert len(history) == 3 and history[-1].val_loss < history[0].val_loss
    assert len(history[-1].test_confusion) == wine.n_classes
