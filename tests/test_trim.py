"""Training without the input columns that are zero in every training row: the same training, less work.

The reference is the same training with every column (`trim_inputs=False`): the trimmed one must
match it up to float rounding, batch by batch, on one thread and on two, for every optimizer.
"""

from dataclasses import replace

import numpy as np
import pytest

from engine import PRESETS, TrainConfig, TrainingDiverged, build_model, load_model
from engine.backends.numpy_backend import numpy_train
from engine.fast.step import FastStep
from engine.fast.trim import live_inputs
from engine.train import make_splits

SMALL = PRESETS["keras-mlp"].config.replace(hidden_sizes=(100,), epochs=2, train_limit=1030, val_split=0.1)


def test_mnist_training_leaves_out_its_67_blank_pixels_and_nothing_else(mnist):
    blank = np.flatnonzero((mnist.x_train == 0).all(axis=0))  # from the raw uint8 pixels
    assert len(blank) == 67
    cfg = PRESETS["keras-mlp"].config
    trim = live_inputs(cfg, make_splits(cfg, mnist).x_train)
    assert np.setdiff1d(np.arange(784), trim.live).tolist() == blank.tolist()
    assert len(trim.folded) == 0 and trim.n_inputs == 717
    # Standardized, the blank pixels are a constant -0.4242: SGD folds them into one column, Adam keeps them
    sgd = PRESETS["pytorch-mlp"].config
    trim = live_inputs(sgd, make_splits(sgd, mnist).x_train)
    assert trim.folded.tolist() == blank.tolist() and len(trim.live) == 717 and trim.n_inputs == 718
    np.testing.assert_allclose(trim.values, -0.1307 / 0.3081, rtol=1e-6)
    assert live_inputs(sgd.replace(optimizer="adam"), make_splits(sgd, mnist).x_train) is None
    # a subset has more blank pixels than all 60k
    assert len(live_inputs(SMALL, make_splits(SMALL, mnist).x_train).live) < 717


def test_l2_moves_the_weights_of_blank_pixels_so_it_keeps_every_column(mnist):
    cfg = SMALL.replace(l2=1e-3, epochs=1)
    x = make_splits(cfg, mnist).x_train
    assert live_inputs(cfg, x) is None
    blank = ~x.any(axis=0)
    model, before = build_model(cfg, 784, 10), build_model(cfg, 784, 10).linears[0].params["W"]
    list(numpy_train(cfg, mnist, model=model))
    assert not np.allclose(model.linears[0].params["W"][blank], before[blank])


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("workers", [1, 2])
def test_trimmed_training_is_the_training_with_every_column(mnist, optimizer, workers):
    cfg = SMALL.replace(optimizer=optimizer, learning_rate=0.05 if optimizer != "adam" else 1e-3)
    x = make_splits(cfg, mnist).x_train
    blank = ~x.any(axis=0)
    step = FastStep(cfg, build_model(cfg, 784, 10), make_splits(cfg, mnist))
    assert step.net.linears[0].params["W"].shape == (784 - blank.sum(), 100)  # the premise: columns left out
    models, histories = [], []
    for trim in (True, False):
        model = build_model(cfg, 784, 10)
        histories.append(list(numpy_train(cfg, mnist, model=model, workers=workers, trim_inputs=trim)))
        models.append(model)
    for key in ("train_loss", "val_loss", "test_loss"):
        np.testing.assert_allclose([getattr(r, key) for r in histories[0]], [getattr(r, key) for r in histories[1]],
                                   rtol=1e-4)
    for name in ("grad_norm", "weight_std"):
        np.testing.assert_allclose([s[name] for r in histories[0] for s in r.layer_stats],
                                   [s[name] for r in histories[1] for s in r.layer_stats], rtol=1e-3)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    # The premise, on the run with every column: the blank pixels' weights never moved.
    initial = build_model(cfg, 784, 10).linears[0].params["W"]
    assert np.array_equal(models[1].linears[0].params["W"][blank], initial[blank])
    assert np.array_equal(models[0].linears[0].params["W"][blank], initial[blank])


def test_the_learners_model_is_whole_after_every_epoch(mnist, tmp_path):
    """The app reads and saves a training model after each epoch: every row trained so far is in it."""
    cfg = SMALL.replace(epochs=2)
    model, reference = build_model(cfg, 784, 10), build_model(cfg, 784, 10)
    runs = zip(numpy_train(cfg, mnist, model=model), numpy_train(cfg, mnist, model=reference, trim_inputs=False))
    for epoch, _ in enumerate(runs, 1):
        for a, b in zip(model.get_weights(), reference.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
        model.save(tmp_path / f"epoch{epoch}.npz")
        for a, b in zip(load_model(tmp_path / f"epoch{epoch}.npz").get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
    assert epoch == 2


def test_stopping_or_diverging_leaves_the_model_whole(mnist):
    cfg = SMALL.replace(epochs=1)
    stopped, reference = build_model(cfg, 784, 10), build_model(cfg, 784, 10)
    for model, trim in ((stopped, True), (reference, False)):
        calls = iter(range(3, -1, -1))
        list(numpy_train(cfg, mnist, model=model, trim_inputs=trim, should_stop=lambda c=calls: not next(c)))
    np.testing.assert_allclose(stopped.linears[0].params["W"], reference.linears[0].params["W"], rtol=1e-4, atol=1e-6)

    bad = TrainConfig(hidden_sizes=(32,), activation="relu", optimizer="sgd", learning_rate=50.0, batch_size=64,
                      epochs=3, train_limit=640, output="linear", loss="mse")
    model = build_model(bad, 784, 10)
    with pytest.raises(TrainingDiverged):
        list(numpy_train(bad, mnist, model=model))


def test_an_abandoned_training_hands_back_current_weights(mnist):
    cfg = SMALL.replace(epochs=3)
    model = build_model(cfg, 784, 10)
    gen = numpy_train(cfg, mnist, model=model)
    next(gen)
    after_one = model.get_weights()
    gen.close()  # the caller stops asking: the generator's cleanup runs
    for a, b in zip(model.get_weights(), after_one):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("optimizer, workers", [("sgd", 1), ("momentum", 1), ("sgd", 2)])
@pytest.mark.parametrize("scaling", ["standardize", "unit-with-constants"])
def test_folded_constant_columns_train_as_every_column(mnist, optimizer, workers, scaling):
    """Constant, non-zero columns are computed as one (SGD and momentum are linear in the gradient):
    standardized MNIST (one constant for 67 columns) and columns of several different constants."""
    cfg = SMALL.replace(optimizer=optimizer, learning_rate=0.05, hidden_sizes=(50,))
    data = mnist
    if scaling == "standardize":
        cfg = cfg.replace(input_scaling="standardize")
    else:  # a few columns set to different constants, besides the blank ones
        x = mnist.x_train.copy()
        cols = [0, 1, 300, 401, 783]
        x[:, cols] = [9, 200, 77, 255, 31]
        data = replace(mnist, x_train=x)
    trim = live_inputs(cfg, make_splits(cfg, data).x_train)
    assert len(trim.folded) >= 5 and trim.n_inputs == len(trim.live) + 1
    models, histories = [build_model(cfg, 784, 10) for _ in range(2)], []
    for model, flag in zip(models, (True, False)):
        # the reference is the serial step: two threads round the loss's scale differently, and
        # this network turns a last-bit difference in the learning rate into 4e-4 after an epoch
        histories.append(list(numpy_train(cfg, data, model=model, trim_inputs=flag, workers=workers if flag else 1)))
    for key in ("train_loss", "val_loss", "test_loss"):
        np.testing.assert_allclose([getattr(r, key) for r in histories[0]], [getattr(r, key) for r in histories[1]],
                                   rtol=1e-4 if workers == 1 else 1e-3)
    np.testing.assert_allclose([s["grad_norm"] for r in histories[0] for s in r.layer_stats],
                               [s["grad_norm"] for r in histories[1] for s in r.layer_stats], rtol=1e-3)
    W_folded, W_full = (m.linears[0].params["W"] for m in models)
    np.testing.assert_allclose(W_folded, W_full, rtol=1e-3, atol=1e-5)
    initial = build_model(cfg, 784, 10).linears[0].params["W"]
    assert not np.allclose(W_full[trim.folded], initial[trim.folded])  # the premise: these rows do move
