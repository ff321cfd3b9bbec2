"""Convolutional networks train in every backend: the same history in each, to float rounding."""

import numpy as np
import pytest

from engine import PRESETS, TrainConfig, build_model, train
from engine.backends.numpy_backend import numpy_train
from engine.fast.step import PARALLEL_MIN_PARAMS, FastStep
from engine.fast.trim import live_inputs
from engine.train import Splits, make_splits

# 8x8 digits: 'same' keeps the 3x3 convolution at 8x8, pooling makes it 4x4, the 'valid' 2x2 one 3x3
SMALL_CNN = TrainConfig(dataset="digits", hidden_sizes=("c8k3", "p2", "c16k2v", "d.25", 32), activation="relu",
                        output="softmax", loss="cross_entropy", optimizer="adam", learning_rate=3e-3, batch_size=32,
                        epochs=3, init="xavier")


def test_a_small_cnn_learns_the_digits(digits):
    history = list(train(SMALL_CNN, digits))
    assert history[-1].test_acc > 0.9
    assert history[-1].train_loss < history[0].train_loss
    assert len(history[-1].layer_stats) == 2  # one per Linear layer, as for an MLP
    assert sum(map(sum, history[-1].test_confusion)) == len(digits.y_test)


@pytest.mark.parametrize("cfg", [
    SMALL_CNN,
    SMALL_CNN.replace(hidden_sizes=("c6k5", "p3", 24), activation="tanh", optimizer="momentum", learning_rate=0.05,
                      l2=1e-3, init="he"),
    SMALL_CNN.replace(hidden_sizes=("c6k4v", "p2", "c5k2"), activation="sigmoid", optimizer="sgd", learning_rate=0.5,
                      init="pytorch", input_scaling="standardize", val_split=0.1),
], ids=["adam-dropout", "momentum-l2-tanh", "sgd-sigmoid-standardized"])
def test_the_numpy_backend_trains_a_cnn_as_the_textbook_backend(digits, cfg):
    models = {b: build_model(cfg, 64, 10) for b in ("textbook", "numpy")}
    histories = {b: list(train(cfg.replace(backend=b), digits, model=models[b])) for b in models}
    for key in ("train_loss", "test_loss", "val_loss"):
        np.testing.assert_allclose([getattr(r, key) or 0 for r in histories["numpy"]],
                                   [getattr(r, key) or 0 for r in histories["textbook"]], rtol=1e-4, err_msg=key)
    for a, b in zip(models["numpy"].get_weights(), models["textbook"].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_the_fast_step_keeps_a_cnn_s_pixels_and_one_thread(digits):
    """Trimming input columns would cut holes in the images; the threaded step updates Linear layers only."""
    dense = SMALL_CNN.replace(hidden_sizes=(32,))
    x = make_splits(dense, digits).x_train
    assert live_inputs(dense, x) is not None  # digits has pixels blank in every image: a dense first layer drops them
    assert live_inputs(SMALL_CNN, x) is None
    cfg = PRESETS["keras-cnn"].config
    rows = Splits(np.zeros((64, 784), np.float32), np.zeros(64, np.int64), x[:1], np.zeros(1, np.int64))
    model = build_model(cfg, 784, 10)
    assert model.n_params >= PARALLEL_MIN_PARAMS  # an MLP this size would have threads measured (on 2+ cores)
    assert {v.workers for v in FastStep(cfg, model, rows).candidates} == {1}  # one core or every core: measured


def test_the_torch_backend_trains_a_cnn_as_the_numpy_backend(digits):
    pytest.importorskip("torch")
    from engine.backends.torch_layers import dense_path_fits

    cfg = SMALL_CNN.replace(hidden_sizes=("c8k3", "p2", "c16k2v", 32), val_split=0.1)  # no dropout: other draws
    ours = build_model(cfg, 64, 10)
    theirs = build_model(cfg, 64, 10)
    assert not dense_path_fits(theirs) and dense_path_fits(build_model(cfg.replace(hidden_sizes=(32,)), 64, 10))
    a = list(train(cfg, digits, model=ours))
    b = list(train(cfg.replace(backend="torch", device="cpu"), digits, model=theirs))
    for key in ("train_loss", "test_loss", "val_loss", "test_acc"):
        np.testing.assert_allclose([getattr(r, key) for r in b], [getattr(r, key) for r in a], rtol=1e-4, atol=1e-4,
                                   err_msg=key)
    for x, y in zip(theirs.get_weights(), ours.get_weights()):  # copied back into the engine model
        np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-5)
    conv = theirs.layers[1]
    assert conv.grads["W"].any()  # the last batch's gradient too
    assert b[-1].test_confusion == a[-1].test_confusion


def test_the_torch_backend_draws_a_dropout_layer_s_masks_from_its_seeded_generator(digits):
    pytest.importorskip("torch")
    cfg = SMALL_CNN.replace(epochs=1, backend="torch", device="cpu")
    first, again = list(train(cfg, digits)), list(train(cfg, digits))
    assert first[0].train_loss == again[0].train_loss
    without = list(train(cfg.replace(hidden_sizes=("c8k3", "p2", "c16k2v", 32)), digits))
    assert without[0].train_loss != first[0].train_loss


def test_a_stopped_cnn_run_keeps_its_weights(digits):
    model = build_model(SMALL_CNN, 64, 10)
    start = model.layers[1].params["W"].copy()
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 5
    assert list(numpy_train(SMALL_CNN, digits, model=model, should_stop=stop)) == []
    assert not np.array_equal(model.layers[1].params["W"], start)


@pytest.mark.slow
def test_keras_cnn_beats_the_mlp_in_one_epoch_on_a_subset(mnist):
    """The tutorial's CNN, one epoch on 20,000 training images (about 30 s of a free core): keras-mlp needs 10
    epochs on all 60,000 for 98.1%. (On 10,000 images one epoch gave 96.7%, seed 0.)"""
    history = list(train(PRESETS["keras-cnn"].config.replace(epochs=1, train_limit=20_000), mnist))
    assert history[0].test_acc > 0.97


def test_the_benchmark_counts_keras_cnn_s_products():
    """Per image: conv 784x32x25, conv 196x64x128, dense 3136x1000 and 1000x10 multiply-adds, three times each
    (forward, weight and input gradients) except the first layer's input gradient."""
    from bench.cnn import step_flops

    macs = [784 * 32 * 25, 196 * 64 * 128, 3136 * 1000, 1000 * 10]
    model = build_model(PRESETS["keras-cnn"].config, 784, 10)
    assert step_flops(model, 32) == 32 * 2 * (2 * macs[0] + 3 * sum(macs[1:]))
