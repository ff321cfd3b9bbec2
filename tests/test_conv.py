"""engine/conv.py's layers against PyTorch and central differences; their fast twins against them; shapes and init."""

import numpy as np
import pytest

from engine import PRESETS, TrainConfig, build_model, load_model
from engine.config import ConfigError, n_parameters
from engine.conv import Conv2D, Flatten, MaxPool2D, ToImages, conv_weights, same_padding
from engine.fast.conv import FastConv2D, FastMaxPool2D
from engine.fast.model import fast_twin
from engine.gradcheck import gradcheck, relative_error
from engine.model import seed_streams

torch = pytest.importorskip("torch")
F = torch.nn.functional

EPS = 1e-6
PADDINGS = ["same", "valid"]


def t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def numerical_grad(f, a: np.ndarray) -> np.ndarray:
    """Central differences of the scalar f() with respect to every entry of a (nudged in place)."""
    grad = np.empty_like(a)
    flat, out = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + EPS
        plus = f()
        flat[i] = old - EPS
        minus = f()
        flat[i] = old
        out[i] = (plus - minus) / (2 * EPS)
    return grad


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5])
def test_conv2d_forward_and_backward_match_torch(rng, padding, kernel):
    """Odd and even kernels on an odd-sized, non-square image with 3 channels: 'same' pads the extra row after."""
    x, W, b = rng.normal(size=(2, 3, 7, 9)), rng.normal(size=(4, 3, kernel, kernel)), rng.normal(size=4)
    layer = Conv2D(W.copy(), b.copy(), padding)
    y = layer.forward(x.copy())
    g = rng.normal(size=y.shape)
    tx, tW, tb = t(x, True), t(W, True), t(b, True)
    ty = F.conv2d(tx, tW, tb, padding=padding)
    ty.backward(t(g))
    assert y.shape == ((2, 4, 7, 9) if padding == "same" else (2, 4, 8 - kernel, 10 - kernel))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(layer.backward(g), tx.grad.numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], tW.grad.numpy(), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], tb.grad.numpy(), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("size, shape", [(2, (2, 3, 8, 8)), (2, (2, 3, 7, 9)), (3, (1, 2, 7, 8)), (4, (1, 1, 4, 4))])
def test_max_pool_matches_torch_with_ties(rng, size, shape):
    """Small integers make most blocks tie: the gradient goes to the first maximum in row-major order, as PyTorch's."""
    x = rng.integers(0, 3, size=shape).astype(np.float64)
    layer = MaxPool2D(size)
    y = layer.forward(x.copy())
    g = rng.normal(size=y.shape)
    tx = t(x, True)
    ty = F.max_pool2d(tx, size)
    ty.backward(t(g))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    np.testing.assert_array_equal(layer.backward(g), tx.grad.numpy())


def test_max_pool_gives_a_tied_block_s_gradient_to_its_top_left_element():
    layer = MaxPool2D(2)
    layer.forward(np.array([[[[1.0, 1.0], [1.0, 0.0]]]]))
    np.testing.assert_array_equal(layer.backward(np.array([[[[5.0]]]]))[0, 0], [[5.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize("padding", PADDINGS)
def test_conv2d_gradients_are_central_differences(rng, padding):
    x, W, b = rng.normal(size=(2, 2, 5, 6)), rng.normal(size=(3, 2, 2, 2)), rng.normal(size=3)
    layer = Conv2D(W, b, padding)
    g = rng.normal(size=layer.forward(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * g))  # dL/dy = g
    loss()
    dx = layer.backward(g)
    analytic = {"x": dx, "W": layer.grads["W"].copy(), "b": layer.grads["b"].copy()}
    for name, a in (("x", x), ("W", W), ("b", b)):
        assert relative_error(analytic[name], numerical_grad(loss, a)) < 1e-8, name


def test_max_pool_and_reshapes_gradients_are_central_differences(rng):
    x = rng.normal(size=(2, 3, 5, 7))  # distinct values: no ties, so the max is differentiable
    layers = [MaxPool2D(2), Flatten()]
    g = rng.normal(size=(2, 3 * 2 * 3))

    def loss():
        h = x
        for layer in layers:
            h = layer.forward(h)
        return float(np.sum(h * g))
    loss()
    dx = layers[0].backward(layers[1].backward(g))
    assert relative_error(dx, numerical_grad(loss, x)) < 1e-8
    rows = rng.normal(size=(4, 16))
    images = ToImages(4).forward(rows)
    assert images.shape == (4, 1, 4, 4) and np.array_equal(images[2, 0, 1], rows[2, 4:8])
    assert np.array_equal(ToImages(4).backward(images), rows)


CNN = TrainConfig(dataset="digits", hidden_sizes=("c4k3", "p2", "c6k2v", 12), activation="tanh", output="softmax",
                  loss="cross_entropy", init="he")


def test_a_small_cnn_end_to_end_passes_the_gradient_check(digits):
    """Every parameter tensor of ToImages -> conv -> pool -> conv -> flatten -> dense -> dense, in float64."""
    model = build_model(CNN, 64, 10, dtype=np.float64)
    x, labels = digits.x_train[:6] / 255.0, digits.y_train[:6]

    def loss():
        return model.loss.forward(model.forward(x, train=False), labels)
    loss()
    model.backward(model.loss.backward())
    tensors = [(layer, k) for layer in model.layers for k in layer.params]
    assert len(tensors) == 8  # two convolutions and two dense layers, W and b each
    for layer, k in tensors:
        analytic = layer.grads[k].copy()
        assert relative_error(analytic, numerical_grad(loss, layer.params[k])) < 1e-7, (layer, k)


def test_engine_gradcheck_names_and_checks_every_conv_tensor(digits):
    model = build_model(CNN, 64, 10, dtype=np.float64)
    errors = gradcheck(model, digits.x_train[:8] / 255.0, digits.y_train[:8])
    assert set(errors) == {"conv0.W", "conv0.b", "conv1.W", "conv1.b", "0.W", "0.b", "1.W", "1.b"}
    assert max(errors.values()) < 1e-6


def test_batch_norm_after_a_convolution_is_refused_by_name():
    with pytest.raises(ConfigError, match="batch normalization after a convolution"):
        build_model(TrainConfig(dataset="digits", hidden_sizes=("c4k3bn", 16)), 64, 10)


@pytest.mark.parametrize("padding", PADDINGS)
def test_fast_conv_computes_the_textbook_conv_times_the_scale(rng, padding):
    x = rng.normal(size=(3, 2, 7, 6)).astype(np.float32)
    slow = Conv2D(rng.normal(size=(5, 2, 3, 3)).astype(np.float32), rng.normal(size=5).astype(np.float32), padding)
    fast = fast_twin(slow)
    assert isinstance(fast, FastConv2D) and fast.params["W"] is slow.params["W"]
    for rows in (3, 2, 3):  # the same shape again reuses the buffers
        xb = x[:rows]
        y = slow.forward(xb)
        np.testing.assert_allclose(fast.forward(xb.copy()), y, rtol=1e-5, atol=1e-5)
        g = rng.normal(size=y.shape).astype(np.float32)
        np.testing.assert_allclose(fast.backward(0.5 * g), 0.5 * slow.backward(g), rtol=1e-5, atol=1e-5)
        for k in ("W", "b"):
            np.testing.assert_allclose(fast.scaled_grads[k], 0.5 * slow.grads[k], rtol=1e-5, atol=1e-5)
    first = fast_twin(slow, needs_input_grad=False)
    first.forward(x)
    assert first.backward(np.ones((3, 5, 7, 6) if padding == "same" else (3, 5, 5, 4), np.float32)) is None


@pytest.mark.parametrize("size, shape", [(2, (2, 3, 8, 8)), (2, (2, 3, 7, 9)), (3, (2, 2, 7, 8))])
def test_fast_max_pool_is_the_textbook_one_ties_included(rng, size, shape):
    slow = MaxPool2D(size)
    fast = fast_twin(slow)
    assert isinstance(fast, FastMaxPool2D)
    for _ in range(2):
        x = rng.integers(0, 3, size=shape).astype(np.float32)
        y = slow.forward(x)
        np.testing.assert_array_equal(fast.forward(x), y)
        g = rng.normal(size=y.shape).astype(np.float32)
        np.testing.assert_array_equal(fast.backward(g), slow.backward(g))


@pytest.mark.parametrize("hidden, dataset", [
    (("c32k5", "p2", "c64k2", "p2", "d.25", 1000), "mnist"),
    (("c8k3v", "p3", "c5k2", 20), "mnist"),
    (("c4k3", "p2", "c6k2v"), "digits"),  # no dense layer: flattened before the output layer
    (("c4k8v", 10), "digits"),  # the kernel as large as the image: 1x1 left
])
def test_built_networks_have_the_parameters_the_config_counts(hidden, dataset):
    side = {"mnist": 28, "digits": 8}[dataset]
    model = build_model(TrainConfig(dataset=dataset, hidden_sizes=hidden), side * side, 10)
    assert model.n_params == n_parameters(hidden, n_in=side * side, side=side)
    assert model.forward(np.zeros((3, side * side), np.float32), train=False).shape == (3, 10)


def test_keras_cnn_is_the_tutorial_s_network():
    """Keras' model.summary() of the tutorial's CNN counts 3,156,098 parameters."""
    cfg = PRESETS["keras-cnn"].config
    model = build_model(cfg, 784, 10)
    assert model.n_params == 3_156_098
    assert [type(layer).__name__ for layer in model.layers] == [
        "ToImages", "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D", "Dropout", "Flatten",
        "Linear", "ReLU", "Linear"]
    assert (cfg.optimizer, cfg.learning_rate, cfg.betas, cfg.batch_size, cfg.epochs, cfg.init) == \
        ("adam", 1e-3, (0.9, 0.999), 32, 5, "xavier")


def test_glorot_counts_a_conv_s_fans_as_keras_does():
    """fan_in = channels k^2, fan_out = filters k^2: the bound sqrt(6 / (fan_in + fan_out)), reached at the edges."""
    W, b = conv_weights("xavier", 32, 2, 64, np.random.default_rng(0))
    limit = np.sqrt(6 / (32 * 4 + 64 * 4))
    assert W.shape == (64, 32, 2, 2) and not b.any()
    assert limit * 0.99 < np.abs(W).max() <= limit
    W, _ = conv_weights("he", 3, 5, 200, np.random.default_rng(0))
    assert W.std() == pytest.approx(np.sqrt(2 / 75), rel=0.02)


def test_conv_weights_come_from_the_seeded_init_stream_in_layer_order():
    cfg = TrainConfig(dataset="digits", hidden_sizes=("c4k3", "p2", 16), init="xavier", seed=3)
    a, b = build_model(cfg, 64, 10), build_model(cfg, 64, 10)
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(x, y)
    other = build_model(cfg.replace(seed=4), 64, 10)
    assert not np.array_equal(a.layers[1].params["W"], other.layers[1].params["W"])
    rng = np.random.default_rng(seed_streams(3)["init"])
    np.testing.assert_array_equal(a.layers[1].params["W"], conv_weights("xavier", 1, 3, 4, rng)[0].astype(np.float32))


def test_same_padding_puts_the_extra_row_after():
    assert [same_padding(k) for k in (1, 2, 3, 4, 5)] == [(0, 0), (0, 1), (1, 1), (1, 2), (2, 2)]


def test_a_cnn_saves_and_loads(tmp_path, rng):
    model = build_model(CNN, 64, 10)
    for p, _ in model.parameters():
        p[...] = rng.normal(size=p.shape)
    model.save(tmp_path / "cnn.npz")
    loaded = load_model(tmp_path / "cnn.npz")
    x = rng.random((5, 64)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(x, train=False), model.forward(x, train=False))
