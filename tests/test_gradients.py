"""Back-propagation against central differences (float64) for every layer x output x loss pairing."""

import itertools

import numpy as np
import pytest

from engine import TrainConfig, build_model, gradcheck
from engine.layers import ACTIVATIONS
from engine.losses import LOSSES, OUTPUTS, make_loss

PAIRS = [(o, loss) for o, loss in itertools.product(OUTPUTS, LOSSES) if not (o == "linear" and loss == "cross_entropy")]


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("output, loss", PAIRS)
def test_backprop_matches_numerical_gradient(activation, output, loss):
    cfg = TrainConfig(hidden_sizes=(7, 5), activation=activation, output=output, loss=loss, init="xavier", seed=3)
    model = build_model(cfg, n_features=6, n_classes=4, dtype=np.float64)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 6))
    t = rng.integers(0, 4, 9)
    errors = gradcheck(model, x, t)
    assert set(errors) == {"0.W", "0.b", "1.W", "1.b", "2.W", "2.b"}
    assert max(errors.values()) < 1e-6, errors


def test_gradcheck_catches_a_wrong_gradient(monkeypatch):
    """The check itself must be able to fail: break ReLU's backward and it must notice."""
    from engine.layers import ReLU

    monkeypatch.setattr(ReLU, "backward", lambda self, g: g)  # forgets the mask
    cfg = TrainConfig(hidden_sizes=(8,), activation="relu", output="softmax", loss="cross_entropy", init="xavier")
    model = build_model(cfg, 6, 3, dtype=np.float64)
    x = np.random.default_rng(1).normal(size=(10, 6))
    assert max(gradcheck(model, x, np.arange(10) % 3).values()) > 1e-3


def test_softmax_regression_has_no_hidden_layer():
    cfg = TrainConfig(hidden_sizes=(), output="softmax", loss="cross_entropy", init="small")
    model = build_model(cfg, 5, 3, dtype=np.float64)
    x = np.random.default_rng(2).normal(size=(4, 5))
    assert len(model.linears) == 1
    assert max(gradcheck(model, x, np.array([0, 1, 2, 1])).values()) < 1e-6


def test_gradcheck_samples_large_parameters():
    cfg = TrainConfig(hidden_sizes=(40,), activation="tanh", output="softmax", loss="cross_entropy", init="he")
    model = build_model(cfg, 30, 10, dtype=np.float64)
    x = np.random.default_rng(3).normal(size=(6, 30))
    errors = gradcheck(model, x, np.arange(6), max_entries=50)
    assert max(errors.values()) < 1e-6


def test_impossible_pair_is_a_value_error():
    with pytest.raises(ValueError, match="softmax or sigmoid"):
        make_loss("cross_entropy", "linear")
    with pytest.raises(ValueError, match="softmax or sigmoid"):
        TrainConfig(output="linear", loss="cross_entropy")


def test_cross_entropy_stays_finite_for_extreme_logits():
    loss = make_loss("cross_entropy", "softmax")
    z = np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)
    assert loss.forward(z, np.array([1])) == pytest.approx(2000.0)
    bce = make_loss("cross_entropy", "sigmoid")
    assert np.isfinite(bce.forward(np.array([[90.0, -90.0]], dtype=np.float32), np.array([1])))


@pytest.mark.parametrize("output, loss", PAIRS)
def test_a_scaled_loss_gradient_is_the_gradient_times_the_scale(output, loss):
    """Training folds SGD's learning rate into the loss gradient: backward(scale) = scale * backward()."""
    rng = np.random.default_rng(0)
    z, t = rng.standard_normal((6, 10)), rng.integers(0, 10, 6)
    plain, scaled = make_loss(loss, output), make_loss(loss, output)
    plain.forward(z, t)
    scaled.forward(z, t)
    expected = 0.37 * plain.backward()
    np.testing.assert_allclose(scaled.backward(0.37), expected, rtol=1e-12)


@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (64, 10), (64, 256), (100, 1000), (3, 7)])
def test_blas_sums_match_numpy_reductions(shape):
    """Bias gradients and softmax denominators are sums computed as products with a vector of ones."""
    from engine.layers import column_sums
    from engine.losses import row_sums

    rng = np.random.default_rng(1)
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        a = rng.standard_normal(shape).astype(dtype)
        out = np.empty(shape[1], dtype)
        np.testing.assert_allclose(column_sums(a, out=out), a.astype(np.float64).sum(axis=0), rtol=tol, atol=tol)
        np.testing.assert_allclose(row_sums(a), a.astype(np.float64).sum(axis=1), rtol=tol, atol=tol)
    a = np.array([[1.0, np.inf], [np.nan, 2.0]], dtype=np.float32)
    assert np.isnan(column_sums(a, out=np.empty(2, np.float32))[0])  # divergence must stay visible
    assert np.isnan(row_sums(a)[1])


def test_relu_forward_is_max_with_zero_and_keeps_nan():
    """ReLU compares with a cached array of zeros: it must never be written, and NaN must pass
    (a NaN that became 0 would hide a diverged layer from the loss)."""
    relu = ACTIVATIONS["relu"]()
    rng = np.random.default_rng(2)
    for _ in range(3):
        x = rng.standard_normal((5, 4)).astype(np.float32)
        x[0, 0] = np.nan
        expected = np.where(np.isnan(x), np.nan, np.maximum(x, 0, dtype=np.float64))
        y = relu.forward(x.copy())
        np.testing.assert_array_equal(y, expected)
        g = relu.backward(np.ones_like(y))
        np.testing.assert_array_equal(g, (expected > 0).astype(np.float32))
    zeros = relu._buffer("zeros", (5, 4), np.dtype(np.float32), fill=0)
    assert not zeros.any() and not zeros.flags.writeable


def test_leaky_relu_matches_its_definition_exactly():
    """y = x if x > 0 else 0.01 x; dL/dx = g if y > 0 else 0.01 g (PyTorch's rule, also at x = 0)."""
    layer = ACTIVATIONS["leaky_relu"]()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 6)).astype(np.float32)
    x[0, :3] = [0.0, -0.0, np.nan]
    slope = np.float32(0.01)
    expected_y = np.where(x > 0, x, x * slope)
    g = rng.standard_normal(x.shape).astype(np.float32)
    expected_g = np.where(expected_y > 0, g, g * slope)
    for _ in range(2):  # the second pass reuses the layer's buffers
        y = layer.forward(x.copy())
        np.testing.assert_array_equal(y, expected_y)  # NaN in the same place
        assert np.signbit(y[0, 1])
        np.testing.assert_array_equal(layer.backward(g.copy()), expected_g)
    with pytest.raises(ValueError, match="slope"):
        type(layer)(1.5)


def test_sigmoid_is_accurate_relative_to_its_value_everywhere(recwarn):
    """Small outputs keep their relative precision (a sigmoid output of 2e-9 is not 0), huge
    negative inputs give 0 without a warning, and nothing leaves [0, 1]."""
    from engine.layers import sigmoid

    x = np.linspace(-120, 120, 400_001).astype(np.float32)
    y = sigmoid(x)
    reference = 1 / (1 + np.exp(-x.astype(np.float64)))
    normal = reference > np.finfo(np.float32).tiny
    assert np.max(np.abs(y[normal] - reference[normal]) / reference[normal]) < 1e-6
    assert y.min() == 0.0 and y.max() == 1.0 and np.all(np.diff(y) >= 0)
    assert sigmoid(np.float32([-20.0]))[0] == pytest.approx(2.0611536e-09, rel=1e-6)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
