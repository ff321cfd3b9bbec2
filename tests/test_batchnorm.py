"""Batch normalization and per-layer dropout: PyTorch's BatchNorm1d as the oracle, central differences in float64,
the fast twin, the three backends, the step planner, save/load and snapshots."""

import numpy as np
import pytest

from engine import TrainConfig, build_model, train
from engine.config import ConfigError, parse_hidden_sizes
from engine.fast import parallel
from engine.fast import step as fast_step
from engine.fast.model import fast_twin
from engine.fast.parallel import CpuShare
from engine.layers import BatchNorm, Dropout
from engine.model import load_model
from engine.train import make_splits

BN_NET = dict(dataset="digits", hidden_sizes=("48bn", "24bn"), activation="relu", output="softmax",
              loss="cross_entropy", optimizer="adam", learning_rate=2e-3, batch_size=50, epochs=2, init="he",
              val_split=0.1, train_limit=600)


def test_batch_norm_matches_torch_batchnorm1d_in_training_and_evaluation(rng):
    torch = pytest.importorskip("torch")
    ours = BatchNorm(5, dtype=np.float64)
    theirs = torch.nn.BatchNorm1d(5, momentum=0.1, eps=1e-5).double()
    gamma, beta = rng.normal(size=5), rng.normal(size=5)
    ours.params["gamma"][...], ours.params["beta"][...] = gamma, beta
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(gamma))
        theirs.bias.copy_(torch.from_numpy(beta))
    for rows in (8, 3, 8):  # the running averages move with each training batch, as PyTorch's do
        x, g = rng.normal(2, 3, size=(rows, 5)), rng.normal(size=(rows, 5))
        theirs.zero_grad()
        tx = torch.tensor(x, requires_grad=True)
        ty = theirs.train()(tx)
        ty.backward(torch.from_numpy(g))
        np.testing.assert_allclose(ours.forward(x.copy(), train=True), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours.backward(g.copy()), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(ours.grads["gamma"], theirs.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.grads["beta"], theirs.bias.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.state["running_mean"], theirs.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.state["running_var"], theirs.running_var.numpy(), rtol=1e-12)
    x = rng.normal(size=(4, 5))
    with torch.no_grad():
        expected = theirs.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours.forward(x, train=False), expected, rtol=1e-10)
    assert not np.allclose(ours.forward(x, train=False), ours.forward(x, train=True))  # eval: running averages


def _loss(model, x, t):
    return model.loss.forward(model.forward(x, train=True), t)


def test_a_batch_norm_network_backpropagates_what_central_differences_measure(rng):
    """Every parameter of Linear -> ReLU -> BatchNorm -> Linear in float64 (engine.gradcheck evaluates with the
    running averages, so it cannot check batch statistics: the nudges are done here, in training mode)."""
    cfg = TrainConfig(hidden_sizes=("7bn", "5bn"), activation="tanh", output="softmax", loss="cross_entropy",
                      init="xavier")
    model = build_model(cfg, 6, 4, dtype=np.float64)
    for norm in (layer for layer in model.layers if isinstance(layer, BatchNorm)):
        norm.params["gamma"][...] = rng.uniform(0.5, 2, size=norm.params["gamma"].shape)
        norm.params["beta"][...] = rng.normal(size=norm.params["beta"].shape)
    x, t = rng.normal(size=(9, 6)), rng.integers(0, 4, size=9)
    _loss(model, x, t)
    model.backward(model.loss.backward())
    eps = 1e-6
    for layer in model.layers:
        for k, p in layer.params.items():
            numeric = np.empty(p.size)
            flat = p.reshape(-1)
            for i in range(p.size):
                old = flat[i]
                flat[i] = old + eps
                plus = _loss(model, x, t)
                flat[i] = old - eps
                minus = _loss(model, x, t)
                flat[i] = old
                numeric[i] = (plus - minus) / (2 * eps)
            a = layer.grads[k].reshape(-1)
            error = np.linalg.norm(a - numeric) / (np.linalg.norm(a) + np.linalg.norm(numeric))
            assert error < 1e-7, (layer, k, error)


def test_the_fast_batch_norm_is_the_textbook_one_times_the_scale(rng):
    slow = BatchNorm(6, dtype=np.float64)
    slow.params["gamma"][...] = rng.uniform(0.5, 2, 6)
    reference = BatchNorm(6, dtype=np.float64)
    reference.params["gamma"][...] = slow.params["gamma"]
    fast = fast_twin(slow)
    assert fast.params["gamma"] is slow.params["gamma"] and fast.state["running_var"] is slow.state["running_var"]
    for rows in (7, 4, 7):
        x, g = rng.normal(1, 2, size=(rows, 6)), rng.normal(size=(rows, 6))
        np.testing.assert_allclose(fast.forward(x.copy()), reference.forward(x.copy()), rtol=1e-12)
        np.testing.assert_allclose(fast.backward(0.5 * g), 0.5 * reference.backward(g), rtol=1e-10, atol=1e-14)
        for k in ("gamma", "beta"):
            np.testing.assert_allclose(fast.scaled_grads[k], 0.5 * reference.grads[k], rtol=1e-10)
        for k in ("running_mean", "running_var"):  # the twin moves the textbook layer's own averages
            np.testing.assert_allclose(slow.state[k], reference.state[k], rtol=1e-12)
    np.testing.assert_allclose(fast.forward(x, train=False), reference.forward(x, train=False), rtol=1e-12)


def test_the_model_puts_batch_norm_after_the_activation_and_each_dropout_where_written():
    cfg = TrainConfig(hidden_sizes=parse_hidden_sizes("144bn.3,d.2,16bn"), activation="relu", dropout=0.1)
    kinds = [type(layer).__name__ for layer in build_model(cfg, 11, 6).layers]
    assert kinds == ["Linear", "ReLU", "BatchNorm", "Dropout", "Dropout", "Linear", "ReLU", "BatchNorm", "Dropout",
                     "Linear"]
    rates = [layer.p for layer in build_model(cfg, 11, 6).layers if isinstance(layer, Dropout)]
    assert rates == [0.3, 0.2, 0.1]  # a layer's own rate, the token's, then the config's for the others
    with pytest.raises(ConfigError, match="'64bn3' is not a whole number or a layer like 144bn.3"):
        parse_hidden_sizes("64bn3")


@pytest.mark.parametrize("backend, dtype, rel", [("numpy", np.float64, 1e-9), ("torch", np.float32, 2e-3)])
def test_a_batch_norm_network_trains_in_every_backend_as_the_textbook_one(digits, backend, dtype, rel):
    """The numpy backend's fast step in float64 is the textbook one to rounding; torch trains in float32 (there
    the two differ by float32 rounding, which batch norm's division by the batch's spread amplifies)."""
    if backend == "torch":
        pytest.importorskip("torch")
    cfg = TrainConfig(**BN_NET)
    textbook_model = build_model(cfg, digits.n_features, digits.n_classes, dtype=dtype)
    reference = list(train(cfg.replace(backend="textbook"), digits, model=textbook_model))
    model = build_model(cfg, digits.n_features, digits.n_classes, dtype=dtype)
    history = list(train(cfg.replace(backend=backend), digits, model=model))
    assert reference[-1].val_loss < reference[0].val_loss  # it learns
    for ours, theirs in zip(history, reference, strict=True):
        assert ours.train_loss == pytest.approx(theirs.train_loss, rel=rel)
        assert ours.val_loss == pytest.approx(theirs.val_loss, rel=rel)  # evaluation: the running averages
    if backend == "numpy":  # float32 Adam turns a rounding-sized gradient into a step of lr: torch's can't match
        for a, b in zip(model.get_weights(), textbook_model.get_weights(), strict=True):  # running averages too
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_the_planner_never_offers_threads_to_a_batch_norm_network(mnist, monkeypatch):
    """Each thread would normalize its part of the batch by that part's statistics: another network."""
    monkeypatch.setattr(parallel, "_SHARE", CpuShare(cores=2))
    wide = dict(activation="relu", output="softmax", loss="cross_entropy", batch_size=128, train_limit=512)
    plain = TrainConfig(hidden_sizes=(512,), **wide)
    step = fast_step.FastStep(plain, build_model(plain, 784, 10), make_splits(plain, mnist))
    assert {v.workers for v in step.candidates} == {1, 2}  # the same network without batch norm is offered both
    normed = TrainConfig(hidden_sizes=("512bn",), **wide)
    for workers in (None, 2):
        step = fast_step.FastStep(normed, build_model(normed, 784, 10), make_splits(normed, mnist), workers=workers)
        assert {v.workers for v in step.candidates} == {1}


def test_running_averages_are_saved_loaded_and_carried_by_snapshots(digits, tmp_path):
    cfg = TrainConfig(**BN_NET)
    model = build_model(cfg, digits.n_features, digits.n_classes)
    list(train(cfg, digits, model=model))
    norm = next(layer for layer in model.layers if isinstance(layer, BatchNorm))
    assert not np.allclose(norm.state["running_var"], 1)  # trained: the averages moved
    model.save(tmp_path / "bn.npz")
    loaded = load_model(tmp_path / "bn.npz")
    x = make_splits(cfg, digits).x_test
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    fresh = build_model(cfg, digits.n_features, digits.n_classes)
    fresh.set_weights(model.get_weights())  # a snapshot
    np.testing.assert_array_equal(fresh.predict_proba(x), model.predict_proba(x))
    with np.load(tmp_path / "bn.npz", allow_pickle=False) as f:
        assert {"bn0.running_mean", "bn0.running_var", "bn1.gamma", "bn1.beta"} <= set(f.files)
        arrays = {k: f[k] for k in f.files if k != "bn0.running_var"}
    np.savez(tmp_path / "missing.npz", **arrays)
    with pytest.raises(ValueError, match="do not match the configured network"):
        load_model(tmp_path / "missing.npz")


def test_torch_trains_each_layers_own_dropout_rate_and_the_dropout_token(digits):
    torch = pytest.importorskip("torch")
    from engine.backends.torch_layers import TorchNet, dense_path_fits

    for hidden in (("40.5", 30), ("d.5", 40, 30)):
        cfg = TrainConfig(dataset="digits", hidden_sizes=hidden, activation="relu", output="softmax",
                          loss="cross_entropy", optimizer="adam", learning_rate=1e-3, epochs=2, init="he",
                          backend="torch")
        model = build_model(cfg, 64, 10)
        assert not dense_path_fits(model)  # autograd trains it (torch_layers), each Dropout at its own rate
        net = TorchNet(cfg, model, torch.device("cpu"))
        x = torch.ones((500, 64))
        assert not torch.equal(net.forward(x, train=True), net.forward(x, train=True))  # each pass draws masks
        assert torch.equal(net.forward(x, train=False), net.forward(x, train=False))  # evaluation drops nothing
        history = list(train(cfg, digits))
        assert history[-1].train_loss < history[0].train_loss
