"""The gradient check: it passes on every layer/loss pairing, fails on each planted bug exactly where the bug is,
agrees with closed-form and PyTorch gradients, and its command line exits 1 on a failure."""

import itertools

import numpy as np
import pytest

from engine import TrainConfig, build_model
from engine.cli import main
from engine.gradcheck import (
    BUGS,
    NEEDS_HIDDEN,
    GradientCost,
    analytic_gradients,
    break_backward,
    bugs_for,
    check_batch,
    check_gradients,
    checking_model,
    duration_text,
    gradcheck,
    measure_cost,
    relative_error,
    train_steps,
)
from engine.layers import ACTIVATIONS
from engine.losses import LOSSES, OUTPUTS

PAIRS = [(o, loss) for o, loss in itertools.product(OUTPUTS, LOSSES) if not (o == "linear" and loss == "cross_entropy")]


def small(activation="tanh", output="softmax", loss="cross_entropy", hidden=(7, 5), **kw):
    cfg = TrainConfig(hidden_sizes=hidden, activation=activation, output=output, loss=loss, init="xavier", seed=3, **kw)
    rng = np.random.default_rng(0)
    return build_model(cfg, 6, 4, dtype=np.float64), rng.normal(size=(9, 6)), rng.integers(0, 4, 9)


def test_relative_error_by_hand():
    a = np.array([3.0, 4.0])
    assert relative_error(a, a) == 0
    assert relative_error(a, -a) == 1
    assert relative_error(a, np.zeros(2)) == 1
    assert relative_error(np.zeros(2), np.zeros(2)) == 0  # zero both ways: agreement, not 0/0
    assert relative_error(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(np.sqrt(2) / 2)
    assert relative_error(a, a * (1 + 2e-6)) == pytest.approx(1e-6, rel=1e-6)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("output, loss", PAIRS)
def test_backprop_passes_for_every_pairing(activation, output, loss):
    model, x, t = small(activation, output, loss)
    errors = gradcheck(model, x, t)
    assert set(errors) == {"0.W", "0.b", "1.W", "1.b", "2.W", "2.b"}
    assert max(errors.values()) < 1e-7, errors


def test_numerical_gradient_matches_the_closed_form():
    """No hidden layer, linear output, squared error: dL/dW = 2/N x^T (xW + b - T), dL/db = 2/N sum (xW + b - T)."""
    model, x, t = small(output="linear", loss="mse", hidden=())
    W, b = model.linears[0].params["W"], model.linears[0].params["b"]
    r = x @ W + b - np.eye(4)[t]
    grads = analytic_gradients(model, x, t)
    assert np.allclose(grads["0.W"], 2 / len(x) * x.T @ r, rtol=1e-12)
    assert np.allclose(grads["0.b"], 2 / len(x) * r.sum(axis=0), rtol=1e-12)
    assert max(gradcheck(model, x, t).values()) < 1e-8


def test_backprop_agrees_with_pytorch_autograd():
    torch = pytest.importorskip("torch")
    model, x, t = small("sigmoid", "sigmoid", "mse")
    ours = analytic_gradients(model, x, t)
    params = [torch.tensor(p, requires_grad=True) for p, _ in model.parameters()]
    h = torch.tensor(x)
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        h = torch.sigmoid(h)  # hidden sigmoids, and the sigmoid output
    loss = ((h - torch.nn.functional.one_hot(torch.tensor(t), 4)) ** 2).sum(1).mean()
    loss.backward()
    for name, p in zip(ours, params):
        assert np.allclose(ours[name], p.grad.numpy(), rtol=1e-10, atol=1e-14), name


WHERE = {  # which tensors each bug makes wrong in a 6-7-5-4 network
    "activation_derivative": {"0.W", "0.b", "1.W", "1.b"},
    "bias_gradient": {"0.b", "1.b", "2.b"},
    "reshape_not_transpose": {"0.W", "0.b", "1.W", "1.b"},
    "batch_mean": {"0.W", "0.b", "1.W", "1.b", "2.W", "2.b"},
    "sign": {"0.W", "0.b", "1.W", "1.b", "2.W", "2.b"},
}


@pytest.mark.parametrize("bug", [b for b in BUGS if b != "none"])
def test_each_bug_fails_the_check_exactly_where_it_is(bug):
    model, x, t = small("sigmoid", "sigmoid", "mse")
    checks = check_gradients(break_backward(model, bug), x, t)
    assert {c.name for c in checks if not c.passed} == WHERE[bug]
    assert all(c.relative_error > 1e-2 for c in checks if not c.passed)


def test_bugs_that_need_a_hidden_layer_are_not_offered_without_one():
    assert set(bugs_for(TrainConfig(hidden_sizes=()))) == set(BUGS) - set(NEEDS_HIDDEN)
    assert bugs_for(TrainConfig()) == list(BUGS)
    with pytest.raises(ValueError, match="Unknown bug"):
        break_backward(small()[0], "typo")


def test_sampling_checks_max_entries_per_tensor():
    model, x, t = small(hidden=(40,))
    checks = {c.name: c for c in check_gradients(model, x, t, max_entries=50)}
    assert checks["0.W"].n_checked == 50 and checks["0.b"].n_checked == 40 and checks["1.W"].n_checked == 50
    assert all(c.passed for c in checks.values())


def test_cost_extrapolates_two_forward_passes_per_parameter(mnist):
    cfg = TrainConfig(hidden_sizes=(32,), batch_size=100, train_limit=1000)
    cost = measure_cost(cfg, mnist, budget=0.05)
    assert cost.n_params == 785 * 32 + 33 * 10 and cost.batches_per_epoch == 10
    assert cost.numerical_seconds == pytest.approx(2 * cost.n_params * cost.forward_seconds)
    assert cost.ratio > 100  # 50k forward passes against one forward and one backward
    assert cost.epoch_numerical_seconds == pytest.approx(10 * cost.numerical_seconds)
    assert GradientCost(10, 5, 3, 0.5, 0.25).ratio == 10


def test_duration_text():
    assert duration_text(0.00021) == "210 µs"
    assert duration_text(0.021) == "21 ms"
    assert duration_text(11.9) == "11.9 s"
    assert duration_text(7200) == "2 hours"
    assert duration_text(3 * 365.25 * 86400) == "3 years"


def test_a_broken_gradient_does_damage_a_healthy_one_does_not(mnist):
    cfg = TrainConfig(hidden_sizes=(32,), activation="relu", output="softmax", loss="cross_entropy", init="he",
                      learning_rate=0.1, batch_size=50, train_limit=3000)
    healthy = train_steps(cfg, mnist, "none", steps=150)
    flipped = train_steps(cfg, mnist, "sign", steps=150)
    assert healthy.losses[-20:].mean() < 0.5 * healthy.losses[:5].mean() and healthy.test_acc > 0.8
    reached = flipped.losses[~np.isnan(flipped.losses)]
    assert np.isnan(flipped.losses[-1]) or reached[-20:].mean() > 2 * reached[:5].mean()  # diverged, or climbed
    assert not flipped.test_acc > 0.3
    assert healthy.losses[0] == flipped.losses[0]  # same weights, same first batch


def test_cli_exit_status(capsys):
    flags = ["gradcheck", "--preset", "twolayernet", "--hidden", "12", "--examples", "8", "--no-cost"]
    assert main(flags) == 0
    out = capsys.readouterr().out
    assert "layer 1 weights W (784x12)" in out and "WRONG" not in out and "relative error" in out
    assert main([*flags, "--break", "bias_gradient"]) == 1
    out = capsys.readouterr().out
    assert out.count("WRONG") == 2 and "FAILED: 0.b, 1.b" in out


def test_cli_prints_the_cost(capsys):
    assert main(["gradcheck", "--hidden", "8", "--examples", "4", "--max-entries", "5"]) == 0
    assert "numerical" in capsys.readouterr().out


def test_batch_norm_and_convolutions_are_checked_as_training_computes_them(digits):
    """Every layer with parameters, named as models save them; the loss on the batch's statistics (batch norm's
    running averages put back afterwards); a layer's own dropout left out of the checking model."""
    try:
        bn_cfg = TrainConfig(hidden_sizes=("7bn", "5bn"), activation="tanh", output="softmax",
                             loss="cross_entropy", init="xavier")
        cnn_cfg = TrainConfig(dataset="digits", hidden_sizes=("c4k3", "p2", "12.3"), activation="tanh",
                              output="softmax", loss="cross_entropy", init="he")
    except ValueError:
        pytest.skip("this engine has no batch norm or convolutions")
    rng = np.random.default_rng(5)
    model = build_model(bn_cfg, 6, 4, dtype=np.float64)
    norms = [layer for layer in model.layers if "gamma" in layer.params]
    for norm in norms:
        norm.params["gamma"][...] = rng.uniform(0.5, 2, norm.params["gamma"].shape)
    before = [norm.state["running_var"].copy() for norm in norms]
    checks = check_gradients(model, rng.normal(size=(9, 6)), rng.integers(0, 4, 9))
    assert {"bn0.gamma", "bn0.beta", "bn1.gamma", "2.W"} <= {c.name for c in checks}
    assert all(c.passed for c in checks), [(c.name, c.relative_error) for c in checks]
    assert all(np.array_equal(b, norm.state["running_var"]) for b, norm in zip(before, norms))
    x, t = check_batch(cnn_cfg, digits, 6)
    checks = check_gradients(checking_model(cnn_cfg, digits), x, t, max_entries=30)
    assert checks[0].name == "conv0.W" and checks[0].label == "convolution 1 weights W (4x1x3x3)"
    assert all(c.passed for c in checks)
