"""PyTorch as an oracle: one forward/backward of each layer and loss, steps of each optimizer, backend parity."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from engine import PRESETS, TrainConfig, TrainingDiverged, build_model, train  # noqa: E402
from engine.layers import Dropout, LeakyReLU, Linear, ReLU, Sigmoid, Tanh  # noqa: E402
from engine.losses import make_loss  # noqa: E402
from engine.optim import SGD, Adam, Momentum  # noqa: E402

ACTS = [(Sigmoid, torch.sigmoid), (Tanh, torch.tanh), (ReLU, F.relu), (LeakyReLU, lambda x: F.leaky_relu(x, 0.01))]


def t(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def test_linear_forward_backward_match_torch(rng):
    W, b, x, g = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    layer = Linear(W.copy(), b.copy())
    y = layer.forward(x.copy())
    tx, tW, tb = t(x, True), t(W, True), t(b, True)
    ty = tx @ tW + tb
    ty.backward(t(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(g.copy()), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], tW.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], tb.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("ours, theirs", ACTS, ids=lambda a: getattr(a, "__name__", ""))
def test_activation_matches_torch(ours, theirs, rng):
    x, g = rng.normal(size=(6, 4)) * 3, rng.normal(size=(6, 4))
    layer = ours()
    y = layer.forward(x.copy())
    tx = t(x, True)
    ty = theirs(tx)
    ty.backward(t(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(layer.backward(g.copy()), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_dropout_matches_torch_given_the_same_mask(rng):
    x, g = rng.normal(size=(200, 50)), rng.normal(size=(200, 50))
    layer = Dropout(0.3, np.random.default_rng(0))
    y = layer.forward(x.copy(), train=True)
    kept = y != 0
    assert 0.65 < kept.mean() < 0.75  # about 1 - p kept
    tx = t(x, True)
    ty = tx * t(kept) / 0.7  # torch's inverted dropout with this mask
    ty.backward(t(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.backward(g.copy()), tx.grad.numpy(), rtol=1e-12)
    assert np.array_equal(layer.forward(x.copy(), train=False), x)


def torch_loss(output, loss, z, labels):
    T = F.one_hot(labels, z.shape[1]).double()
    if loss == "cross_entropy" and output == "softmax":
        return F.cross_entropy(z, labels)
    if loss == "cross_entropy":
        return F.binary_cross_entropy(torch.sigmoid(z), T, reduction="sum") / len(z)
    y = {"sigmoid": torch.sigmoid, "softmax": lambda a: torch.softmax(a, 1), "linear": lambda a: a}[output](z)
    return ((y - T) ** 2).sum() / len(z)


@pytest.mark.parametrize("output, loss", [("sigmoid", "mse"), ("softmax", "mse"), ("linear", "mse"),
                                          ("sigmoid", "cross_entropy"), ("softmax", "cross_entropy")])
def test_loss_and_gradient_match_torch(output, loss, rng):
    z, labels = rng.normal(size=(8, 5)) * 2, rng.integers(0, 5, 8)
    ours = make_loss(loss, output)
    value = ours.forward(z.copy(), labels)
    tz = t(z, True)
    tl = torch_loss(output, loss, tz, torch.tensor(labels))
    tl.backward()
    assert value == pytest.approx(tl.item(), rel=1e-12)
    np.testing.assert_allclose(ours.backward(), tz.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name, ours, theirs", [
    ("sgd", lambda pg: SGD(pg, 0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    ("momentum", lambda pg: Momentum(pg, 0.1, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9)),
    ("adam", lambda pg: Adam(pg, 0.01, betas=(0.8, 0.95)), lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95))),
    ("sgd-l2", lambda pg: SGD(pg, 0.1, weight_decay=0.05),
     lambda ps: torch.optim.SGD([{"params": ps[:1], "weight_decay": 0.05}, {"params": ps[1:]}], lr=0.1)),
    ("adam-l2", lambda pg: Adam(pg, 0.01, weight_decay=0.05),
     lambda ps: torch.optim.Adam([{"params": ps[:1], "weight_decay": 0.05}, {"params": ps[1:]}], lr=0.01)),
])
def test_optimizer_steps_match_torch(name, ours, theirs, rng):
    W, b = rng.normal(size=(4, 3)), rng.normal(size=3)
    gW, gb = np.zeros_like(W), np.zeros_like(b)
    opt = ours([(W, gW), (b, gb)])
    tW, tb = t(W, True), t(b, True)
    topt = theirs([tW, tb])
    for _ in range(5):
        grads = rng.normal(size=(4, 3)), rng.normal(size=3)
        gW[...], gb[...] = grads
        opt.step()
        tW.grad, tb.grad = t(grads[0]), t(grads[1])
        topt.step()
    np.testing.assert_allclose(W, tW.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, tb.detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("preset, rtol, atol_acc", [
    ("notebook-mse", 1e-4, 2e-3),
    # ReLU kinks: a pre-activation within rounding of 0 can flip between float32 BLAS libraries
    # and change one gradient; the engine was checked to stay with a float64 run when torch flips.
    ("pytorch-mlp", 2e-2, 1e-2),
])
def test_numpy_and_torch_backends_overlay(mnist, preset, rtol, atol_acc):
    cfg = PRESETS[preset].config.replace(epochs=2, train_limit=3000)
    ours = list(train(cfg, mnist))
    theirs = list(train(cfg.replace(backend="torch", device="cpu"), mnist))
    assert len(ours) == len(theirs) == 2
    for a, b in zip(ours, theirs):
        assert a.train_loss == pytest.approx(b.train_loss, rel=rtol)
        assert a.test_loss == pytest.approx(b.test_loss, rel=rtol)
        assert abs(a.test_acc - b.test_acc) <= atol_acc
    assert ours[0].train_loss == pytest.approx(theirs[0].train_loss, rel=1e-4)  # first epoch: tight


def test_torch_backend_returns_weights_to_the_model(mnist):
    cfg = TrainConfig(dataset="mnist", hidden_sizes=(16,), activation="relu", output="softmax", loss="cross_entropy",
                      optimizer="adam", learning_rate=1e-3, epochs=1, train_limit=1000, init="he",
                      backend="torch", device="cpu", val_split=0.1, dropout=0.2)
    model = build_model(cfg, 784, 10)
    before = model.linears[0].params["W"].copy()
    (result,) = list(train(cfg, mnist, model=model))
    assert not np.allclose(before, model.linears[0].params["W"])
    assert result.val_acc is not None
    loss, acc = model.evaluate(mnist.x_test, mnist.y_test)  # the NumPy model now holds torch's weights
    assert acc == pytest.approx(result.test_acc, abs=1e-3)
    assert loss == pytest.approx(result.test_loss, rel=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_backend_overlays_numpy(mnist):
    cfg = PRESETS["notebook-mse"].config.replace(epochs=2, train_limit=3000)
    ours = list(train(cfg, mnist))
    theirs = list(train(cfg.replace(backend="torch", device="cuda"), mnist))
    for a, b in zip(ours, theirs):
        assert a.test_loss == pytest.approx(b.test_loss, rel=1e-3)


def test_asking_for_cuda_without_a_gpu_explains(mnist):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    cfg = TrainConfig(backend="torch", device="cuda", epochs=1, train_limit=100)
    with pytest.raises(ValueError, match="no CUDA GPU"):
        next(train(cfg, mnist))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("preset, dropout", [("notebook-mse", 0.0), ("keras-mlp", 0.0), ("keras-mlp", 0.3)])
def test_cuda_graph_steps_equal_eager_steps(mnist, preset, dropout):
    """With dropout too: a replay must draw fresh masks, the ones an eager step draws."""
    from engine.backends.torch_backend import torch_train

    cfg = PRESETS[preset].config.replace(epochs=2, train_limit=3050, backend="torch", device="cuda", dropout=dropout)
    graphed = [r.train_loss for r in torch_train(cfg, mnist, cuda_graphs=True)]
    eager = [r.train_loss for r in torch_train(cfg, mnist, cuda_graphs=False)]
    assert graphed == pytest.approx(eager, rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("optimizer, dropout", [("sgd", 0.0), ("momentum", 0.0), ("adam", 0.0), ("adam", 0.3)])
def test_cuda_graph_captures_the_fused_kernels(optimizer, dropout):
    """Capture must succeed: a refused capture falls back to eager steps, correct but ~5x slower."""
    from engine.backends.torch_backend import TorchMLP, TrainStep, with_ones

    cfg = TrainConfig(hidden_sizes=(32,), optimizer=optimizer, batch_size=16, l2=1e-4, dropout=dropout)
    device = torch.device("cuda")
    net = TorchMLP(cfg, build_model(cfg, 20, 10), device)
    X1 = with_ones(np.random.default_rng(0).normal(size=(64, 20)), device)
    step = TrainStep(net, cfg, X1, torch.randint(0, 10, (64,), device=device), use_graph=True)
    assert step.graph is not None
    before = [p.detach().clone() for p in net.parameters()]
    step(torch.arange(16, device=device))
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters()))  # the replay stepped


@pytest.mark.parametrize("optimizer, theirs", [
    ("sgd", lambda groups: torch.optim.SGD(groups, lr=0.1, foreach=False)),
    ("momentum", lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.8, foreach=False)),
    ("adam", lambda groups: torch.optim.Adam(groups, lr=0.1, betas=(0.8, 0.95), foreach=False)),
])
@pytest.mark.parametrize("l2", [0.0, 0.05])
@pytest.mark.parametrize("pieces", [1, 5])
def test_fused_optimizer_matches_torch_optim(optimizer, theirs, pieces, l2, rng):
    """The backend calls PyTorch's fused kernels itself (on a GPU with tensors cut into row blocks);
    torch.optim's plain loop is the reference."""
    from types import SimpleNamespace

    from engine.backends.torch_backend import FusedOptimizer

    cfg = TrainConfig(optimizer=optimizer, learning_rate=0.1, momentum=0.8, betas=(0.8, 0.95), l2=l2)
    shapes = [(6, 4), (4, 3)], [(4,), (3,)]
    ours = SimpleNamespace(weights=[torch.tensor(rng.normal(size=s), dtype=torch.float32, requires_grad=True)
                                    for s in shapes[0]],
                           biases=[torch.tensor(rng.normal(size=s), dtype=torch.float32, requires_grad=True)
                                   for s in shapes[1]])
    ref = [p.detach().clone().requires_grad_() for p in ours.weights + ours.biases]
    opt = FusedOptimizer(cfg, ours, pieces=pieces)
    ref_opt = theirs([{"params": ref[:2], "weight_decay": l2}, {"params": ref[2:], "weight_decay": 0.0}])
    for _ in range(6):
        for p, q in zip(ours.weights + ours.biases, ref):
            p.grad = torch.tensor(rng.normal(size=p.shape), dtype=torch.float32)
            q.grad = p.grad.clone()
        opt.step()
        ref_opt.step()
    for p, q in zip(ours.weights + ours.biases, ref):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert sum(len(lists["params"]) for lists in opt._lists[1]) == (4 if pieces == 1 else 3 + 2 + 1 + 1)
    opt.reset()
    assert all(v.abs().max().item() == 0 for state in opt.state.values() for v in state.values())


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_fused_optimizer_in_pieces_gives_the_same_update(optimizer, rng):
    from types import SimpleNamespace

    from engine.backends.torch_backend import FusedOptimizer

    cfg = TrainConfig(optimizer=optimizer, learning_rate=0.1, momentum=0.8)
    nets = [SimpleNamespace(weights=[torch.ones(50, 30), torch.ones(30, 10)], biases=[torch.ones(30), torch.ones(10)])
            for _ in range(2)]
    opts = [FusedOptimizer(cfg, nets[0]), FusedOptimizer(cfg, nets[1], pieces=16)]
    for _ in range(3):
        grads = [torch.tensor(rng.normal(size=p.shape), dtype=torch.float32) for p in nets[0].weights + nets[0].biases]
        for net, opt in zip(nets, opts):
            for p, g in zip(net.weights + net.biases, grads):
                p.grad = g.clone()
            opt.step()
    for p, q in zip(nets[0].weights + nets[0].biases, nets[1].weights + nets[1].biases):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)  # a vector lane's fused multiply-add, at most
    assert sum(len(lists["params"]) for lists in opts[1]._lists[1]) > 10


def test_torch_backend_never_imports_the_compiler_stack():
    """Building a torch.optim optimizer imports torch._dynamo (seconds of start-up); a run must not need it."""
    import subprocess
    import sys

    code = ("import sys; from engine import PRESETS, load_dataset, train; "
            "cfg = PRESETS['keras-mlp'].config.replace(epochs=1, train_limit=500, backend='torch', device='cpu'); "
            "list(train(cfg, load_dataset('mnist'))); "
            "print(sorted(m for m in sys.modules if m.startswith(('torch._dynamo', 'torch._inductor'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("output, loss", [("sigmoid", "mse"), ("softmax", "mse"), ("linear", "mse"),
                                          ("softmax", "cross_entropy"), ("sigmoid", "cross_entropy")])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu"])
def test_backprop_gradients_equal_autograd(activation, output, loss, dropout, rng):
    """The backend's hand-written backward pass against autograd's, on a short batch with a repeated row."""
    from engine.backends.torch_backend import Backprop, TorchMLP, with_ones

    cfg = TrainConfig(hidden_sizes=(7, 5), activation=activation, output=output, loss=loss, dropout=dropout,
                      batch_size=8, init="xavier")
    cpu = torch.device("cpu")
    net = TorchMLP(cfg, build_model(cfg, 6, 4), cpu)
    X1, Y = with_ones(rng.normal(size=(11, 6)), cpu), torch.tensor(rng.integers(0, 4, 11))
    sel = torch.tensor([3, 0, 7, 7, 10])  # 5 rows of a batch of 8: the last, short batch of an epoch
    backprop = Backprop(net, cfg, X1, torch.eye(4)[Y], batch=8)
    net.gen.manual_seed(5)
    backprop(sel)
    ours = [p.grad.clone() for p in net.parameters()]
    for p in net.parameters():
        p.grad = None
    net.gen.manual_seed(5)  # the same dropout masks
    net.loss(net.forward(X1[sel][:, :6], train=True), Y[sel]).backward()
    for a, p in zip(ours, net.parameters()):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-6)
    assert any(a.abs().max() > 1e-3 for a in ours)


def test_torch_backend_divergence_keeps_the_last_finite_weights(digits):
    cfg = TrainConfig(dataset="digits", hidden_sizes=(32,), activation="relu", output="linear", loss="mse",
                      learning_rate=5.0, batch_size=16, epochs=5, init="he", backend="torch", device="cpu")
    model = build_model(cfg, 64, 10)
    with pytest.raises(TrainingDiverged, match="learning rate") as info:
        list(train(cfg, digits, model=model))
    assert info.value.epoch == len(info.value.history) + 1
    assert all(np.isfinite(lin.params["W"]).all() for lin in model.linears)


@pytest.mark.parametrize("preset", ["keras-mlp", "pytorch-mlp"])
def test_backend_kernels_train_as_torch_optim(mnist, preset):
    """The benchmarks' reference (torch.optim) and the backend (its kernels, called directly) are one training."""
    from engine.backends.torch_backend import torch_train

    cfg = PRESETS[preset].config.replace(epochs=2, train_limit=2000, backend="torch", device="cpu")
    ours = [(r.train_loss, r.test_loss) for r in torch_train(cfg, mnist)]
    reference = [(r.train_loss, r.test_loss) for r in torch_train(cfg, mnist, torch_optim=True)]
    np.testing.assert_allclose(ours, reference, rtol=1e-5)
