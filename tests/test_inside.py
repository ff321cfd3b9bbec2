"""Issue 16's engine: layer statistics and confusion matrices each epoch, snapshots within a budget, one input
through the network (saliency against a numerical derivative), MSE vs cross-entropy output gradients."""

import io
import json
import zipfile

import numpy as np
import pytest

from engine import TrainConfig, build_model, train
from engine.inside import (
    class_score_gradient,
    journey,
    model_at,
    nearest,
    output_gradients,
    strongest_contributions,
    trace,
    unit_inputs,
)
from engine.snapshots import Snapshots, read_inside, write_inside
from engine.train import PROBE_ROWS, EpochResult, layer_stats, make_splits

TINY = TrainConfig(dataset="digits", hidden_sizes=(6, 5), activation="sigmoid", output="sigmoid", loss="mse",
                   optimizer="sgd", learning_rate=0.5, batch_size=64, epochs=2, init="xavier", seed=3)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def by_hand(weights, x, activation, output):
    """Each layer's (z, a) in float64, written out: the independent reference."""
    f = {"sigmoid": sigmoid, "tanh": np.tanh, "relu": lambda z: np.maximum(z, 0)}
    out, h = [], x.astype(np.float64)
    pairs = list(zip(weights[::2], weights[1::2]))
    for i, (W, b) in enumerate(pairs):
        z = h @ W.astype(np.float64) + b.astype(np.float64)
        if i < len(pairs) - 1:
            h = f[activation](z)
        elif output == "softmax":
            e = np.exp(z - z.max(1, keepdims=True))
            h = e / e.sum(1, keepdims=True)
        else:
            h = sigmoid(z)
        out.append((z, h))
    return out


@pytest.mark.parametrize("activation, output, loss", [
    ("sigmoid", "sigmoid", "mse"), ("tanh", "softmax", "cross_entropy"), ("relu", "softmax", "cross_entropy")])
def test_layer_statistics_against_a_float64_computation_by_hand(digits, activation, output, loss):
    cfg = TINY.replace(activation=activation, output=output, loss=loss, epochs=2)
    splits = make_splits(cfg, digits)
    model = build_model(cfg, 64, 10)
    start = [W.astype(np.float64) for W in model.get_weights()]
    history = []
    for r in train(cfg, digits, model=model):
        history.append((r, [W.astype(np.float64) for W in model.get_weights()],
                        [lin.grads["W"].astype(np.float64) for lin in model.linears]))
    probe = splits.x_test[:PROBE_ROWS]
    for e, (r, weights, grads) in enumerate(history):
        before = start if e == 0 else history[e - 1][1]
        layers = by_hand(weights, probe, activation, output)
        assert len(r.layer_stats) == 3
        for i, (s, (z, a)) in enumerate(zip(r.layer_stats, layers)):
            W, W0 = weights[2 * i], before[2 * i]
            assert s["update_ratio"] == pytest.approx(np.sqrt(((W - W0) ** 2).sum() / (W0 ** 2).sum()), rel=1e-4)
            assert s["grad_norm"] == pytest.approx(np.sqrt((grads[i] ** 2).sum()), rel=1e-5)
            assert s["weight_std"] == pytest.approx(W.std(), rel=1e-5)
            assert s["pre_mean"] == pytest.approx(z.mean(), rel=1e-4, abs=1e-6)
            assert s["pre_std"] == pytest.approx(z.std(), rel=1e-4)
            assert s["act_mean"] == pytest.approx(a.mean(), rel=1e-4, abs=1e-6)
            assert s["act_std"] == pytest.approx(a.std(), rel=1e-4)
            hidden = i < 2
            kind = activation if hidden else output
            if kind == "sigmoid":
                assert s["saturated_frac"] == pytest.approx(np.mean((a <= 0.02) | (a >= 0.98)))
            elif kind == "tanh":
                assert s["saturated_frac"] == pytest.approx(np.mean(np.abs(a) >= 0.98))
            else:
                assert "saturated_frac" not in s
            if hidden and activation == "relu":
                assert s["dead_frac"] == pytest.approx(np.mean([np.all(z[:, j] <= 0) for j in range(z.shape[1])]))
            else:
                assert "dead_frac" not in s
        # the confusion matrix and per-class accuracy against a prediction by hand
        pred = by_hand(weights, splits.x_test, activation, output)[-1][0].argmax(1)
        expected = np.zeros((10, 10), int)
        np.add.at(expected, (splits.y_test, pred), 1)
        assert np.array_equal(np.array(r.test_confusion), expected)
        assert r.test_acc == pytest.approx(np.trace(expected) / len(pred))
        assert r.class_accuracy == pytest.approx(tuple(expected.diagonal() / expected.sum(1)))


def test_saturation_and_dead_units_are_counted_where_planted():
    """A layer whose weights push every probe example to a bound is all saturated; a ReLU unit with a large
    negative bias is dead, another is not."""
    cfg = TINY.replace(hidden_sizes=(2,), activation="relu", output="sigmoid")
    model = build_model(cfg, 3, 2)
    W1, b1, W2, b2 = model.get_weights()
    b1[:] = [-100, 0.1]
    b2[:] = [50, -50]
    W2[:] = 0
    model.set_weights([W1, b1, W2, b2])
    probe = np.random.default_rng(0).random((20, 3)).astype(np.float32)
    first, out = layer_stats(model, probe)
    assert first["dead_frac"] == 0.5 and out["saturated_frac"] == 1.0
    assert "update_ratio" not in first  # no weights before the epoch were given


def test_epoch_results_round_trip_through_json():
    r = EpochResult(1, 0.5, 0.9, 0.6, 0.8, layer_stats=({"grad_norm": 0.1},), test_confusion=((3, 1), (0, 4)))
    back = EpochResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r and back.class_accuracy == (0.75, 1.0)


def test_torch_records_the_same_statistics_and_confusion(digits):
    pytest.importorskip("torch")
    cfg = TINY.replace(activation="relu", output="softmax", loss="cross_entropy", epochs=2, device="cpu")
    numpy_runs = list(train(cfg.replace(backend="textbook"), digits))
    torch_runs = list(train(cfg.replace(backend="torch"), digits))
    for a, b in zip(numpy_runs, torch_runs):
        assert np.abs(np.array(a.test_confusion) - np.array(b.test_confusion)).sum() <= 4  # float rounding at ties
        for sa, sb in zip(a.layer_stats, b.layer_stats):
            assert set(sa) == set(sb)
            for key in ("update_ratio", "grad_norm", "act_mean", "pre_std"):
                assert sb[key] == pytest.approx(sa[key], rel=1e-3), key


# ---------------------------------------------------------------- snapshots

def weights_of(nbytes_each: int, seed: int) -> list[np.ndarray]:
    return [np.full(nbytes_each // 8, seed, dtype=np.float64)]


@pytest.mark.parametrize("n_epochs", [5, 40, 200])
def test_snapshots_stay_within_the_budget_and_keep_every_kth_epoch(n_epochs):
    store = Snapshots(budget_bytes=10_000)
    for epoch in range(n_epochs + 1):
        store.add(epoch, weights_of(1000, epoch))
        assert store.nbytes <= 10_000
        kept = store.epochs
        assert kept[0] == 0 and kept[-1] == epoch  # before training, and the latest
        assert all(e % store.every == 0 for e in kept[:-1])
        assert store.get(epoch)[0][0] == epoch
    assert len(store.epochs) >= 5  # thinning halves the store, never empties it
    if n_epochs > 9:
        assert store.every > 1 and f"every {store.every}" in store.kept_text()
    else:
        assert store.every == 1 and store.kept_text() == "Every epoch is kept."


def test_a_network_larger_than_the_budget_keeps_what_fits():
    store = Snapshots(budget_bytes=2500)
    for epoch in range(4):
        store.add(epoch, weights_of(1600, epoch))
    assert store.epochs == [3] and store.nbytes <= 2500  # two do not fit: the latest alone
    store = Snapshots(budget_bytes=1000)
    store.add(0, weights_of(1600, 0))
    assert store.epochs == [] and store.too_big and "final weights" in store.kept_text()


def test_snapshots_and_statistics_travel_in_a_zip_and_are_checked_on_the_way_back():
    like = [np.zeros((3, 2), np.float32), np.zeros(2, np.float32)]
    store = Snapshots()
    for e in range(3):
        store.add(e, [np.full((3, 2), e, np.float32), np.full(2, -e, np.float32)])
    history = [EpochResult(e, 1.0 / e, 0.5, 1.0, 0.5, layer_stats=({"grad_norm": e},), test_confusion=((e, 1), (1, 2)))
               for e in (1, 2)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        write_inside(z, history, store)
    plain = [EpochResult(r.epoch, r.train_loss, r.train_acc, r.test_loss, r.test_acc) for r in history]  # the CSV's
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        back, snaps = read_inside(z, plain, like)
    assert back == history and snaps.epochs == [0, 1, 2] and snaps.get(2)[1].tolist() == [-2, -2]
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        with pytest.raises(ValueError, match="does not fit this network"):
            read_inside(z, plain, [np.zeros((4, 2), np.float32), np.zeros(2, np.float32)])
        with pytest.raises(ValueError, match="a run may keep"):
            read_inside(z, plain, like, budget_bytes=10)
    with zipfile.ZipFile(io.BytesIO(b"PK\x05\x06" + b"\0" * 18)) as z:  # an older zip: neither member
        assert read_inside(z, plain, like)[0] == plain


# ---------------------------------------------------------------- one input through the network

@pytest.fixture(scope="module")
def tiny_model(digits):
    cfg = TINY.replace(activation="tanh", output="softmax", loss="cross_entropy", epochs=2)
    model = build_model(cfg, 64, 10)
    list(train(cfg, digits, model=model))
    return cfg, model.get_weights()


def test_trace_and_journey_follow_the_network_by_hand(digits, tiny_model):
    cfg, weights = tiny_model
    model = model_at(cfg, weights, 64, 10)
    x = make_splits(cfg, digits).x_test[:7]
    for t, (z, a) in zip(trace(model, x), by_hand(weights, x, "tanh", "softmax")):
        np.testing.assert_allclose(t.z, z, rtol=1e-10)
        np.testing.assert_allclose(t.a, a, rtol=1e-10)
    j = journey(model, x[3])
    assert j.cls == j.prediction == int(by_hand(weights, x[3:4], "tanh", "softmax")[-1][1].argmax())
    np.testing.assert_allclose(j.input_times_gradient, x[3] * j.gradient)
    assert journey(model, x[3], cls=2).cls == 2


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_saliency_is_the_numerical_derivative_of_the_class_score(digits, activation):
    cfg = TINY.replace(activation=activation, output="softmax", loss="cross_entropy", init="xavier")
    model = build_model(cfg, 64, 10, dtype=np.float64, seed=5)
    x = make_splits(cfg, digits).x_test[:2].astype(np.float64)
    for cls in (0, 7):
        grad = class_score_gradient(model, x, cls)
        eps = 1e-6
        numeric = np.empty_like(x)
        for i in range(x.shape[1]):
            step = np.zeros_like(x)
            step[:, i] = eps
            plus, minus = model.forward(x + step, False)[:, cls], model.forward(x - step, False)[:, cls]
            numeric[:, i] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, atol=1e-7, rtol=1e-5)


def test_nearest_training_images_are_the_closest_in_pixel_distance(digits):
    pixels = digits.x_train
    x = digits.x_test[11]
    got = nearest(pixels, x, k=5)
    dist = ((pixels.astype(np.int64) - x.astype(np.int64)) ** 2).sum(1)
    assert list(got) == list(np.argsort(dist, kind="stable")[:5])
    assert nearest(pixels[:3], x, k=10).shape == (3,)


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_output_gradients_are_the_closed_forms_under_mse_and_cross_entropy(output):
    cfg = TINY.replace(output=output)
    model = build_model(cfg, 5, 4, dtype=np.float64)
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((6, 5)), np.array([0, 1, 2, 3, 0, 1])
    g = output_gradients(model, x, t)
    z = model.forward(x, False)
    T = np.eye(4)[t]
    if output == "sigmoid":
        y = sigmoid(z)
        mse = 2 * (y - T) * y * (1 - y)
    else:
        y = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        dy = 2 * (y - T)
        mse = np.stack([dy[n] @ (np.diag(y[n]) - np.outer(y[n], y[n])) for n in range(len(y))])
    np.testing.assert_allclose(g["output"], y)
    np.testing.assert_allclose(g["mse"], np.abs(mse), atol=1e-12)
    np.testing.assert_allclose(g["cross_entropy"], np.abs(y - T), atol=1e-12)
    np.testing.assert_array_equal(g["target"], T)


def test_unit_inputs_and_strongest_contributions(tiny_model, digits):
    cfg, weights = tiny_model
    model = model_at(cfg, weights, 64, 10)
    x = make_splits(cfg, digits).x_test[:9]
    np.testing.assert_allclose(unit_inputs(model, x, 4), x @ weights[0][:, 4] + weights[1][4], rtol=1e-6)
    a = np.array([1.0, -2.0, 0.5])
    W = np.array([[1.0, 0.1], [0.5, 3.0], [-4.0, 0.0]])
    got = strongest_contributions(a, W, np.array([0, 1, 2]), np.array([0, 1]), per_target=2)
    assert got == [(2, 0, -2.0), (0, 0, 1.0), (1, 1, -6.0), (0, 1, 0.1)]


def test_is_dense_tells_the_networks_the_pictures_describe():
    from engine.inside import is_dense
    from engine.layers import Layer

    model = build_model(TINY.replace(dropout=0.2), 64, 10)
    assert is_dense(model)
    model.layers.insert(1, Layer())  # any other kind of layer
    assert not is_dense(model)
