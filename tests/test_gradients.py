"""Back-propagation against central differences (float64) for every layer x output x loss pairing."""

import itertools

import numpy as np
import pytest

from engine import TrainConfig, build_model
from engine.gradcheck import gradcheck
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
        TrainConfig(output="linear", loss="cross_entropy")


def test_cross_entropy_stays_finite_for_extreme_logits():
    loss = make_loss("cross_entropy", "softmax")
    z = np.array([[1000.0, -1000.0, 0.0]], dtype=np.float32)
    assert loss.forward(z, np.array([1])) == pytest.approx(2000.0)
    bce = make_loss("cross_entropy", "sigmoid")
    assert np.isfinite(bce.forward(np.array([[90.0, -90.0]], dtype=np.float32), np.array([1])))


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_textbook_activations_keep_nan_and_match_their_definitions(activation):
    """NaN must pass forward (a NaN that became 0 would hide a diverged layer), and the backward is the derivative."""
    layer = ACTIVATIONS[activation]()
    x = np.array([[-2.0, -0.0, 0.0, 0.5, np.nan]])
    y = layer.forward(x)
    assert np.isnan(y[0, -1]) and np.all(np.isfinite(y[0, :-1]))
    g = layer.backward(np.ones_like(x))[0]
    h, xs = 1e-7, x[:, [0, 3]]
    numeric = (ACTIVATIONS[activation]().forward(xs + h) - ACTIVATIONS[activation]().forward(xs - h)) / (2 * h)
    np.testing.assert_allclose(g[[0, 3]], numeric[0], rtol=1e-6)


def test_sigmoid_is_accurate_relative_to_its_value_everywhere(recwarn):
    """Small outputs keep their relative precision (a sigmoid output of 2e-9 is not 0), huge
    negative inputs give 0 without a warning, and nothing leaves [0, 1]; the fast twin alike."""
    from engine.fast.layers import sigmoid as fast_sigmoid
    from engine.layers import sigmoid

    x = np.linspace(-120, 120, 400_001).astype(np.float32)
    reference = 1 / (1 + np.exp(-x.astype(np.float64)))
    normal = reference > np.finfo(np.float32).tiny
    for f in (sigmoid, fast_sigmoid):
        y = f(x)
        assert y.dtype == np.float32
        assert np.max(np.abs(y[normal] - reference[normal]) / reference[normal]) < 1e-6
        assert y.min() == 0.0 and y.max() == 1.0 and np.all(np.diff(y) >= 0)
        assert f(np.float32([-20.0]))[0] == pytest.approx(2.0611536e-09, rel=1e-6)
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
