"""One hand-computed step of each optimizer, and hyperparameter validation."""

import numpy as np
import pytest

from engine.optim import SGD, Adam, Momentum


def pair(p, g):
    return np.array(p, dtype=np.float64), np.array(g, dtype=np.float64)


def test_sgd_step_by_hand():
    p, g = pair([1.0, -2.0], [0.5, 1.0])
    SGD([(p, g)], lr=0.1).step()
    np.testing.assert_allclose(p, [0.95, -2.1])


def test_momentum_two_steps_by_hand():
    p, g = pair([1.0], [1.0])
    opt = Momentum([(p, g)], lr=0.1, momentum=0.9)
    opt.step()  # v = 1, p = 1 - 0.1
    np.testing.assert_allclose(p, [0.9])
    g[...] = 1.0
    opt.step()  # v = 0.9 + 1 = 1.9, p = 0.9 - 0.19
    np.testing.assert_allclose(p, [0.71])


def test_adam_first_step_is_lr_times_sign():
    p, g = pair([1.0, 1.0], [0.3, -4.0])
    Adam([(p, g)], lr=0.01).step()  # bias-corrected m/sqrt(v) = sign(g) on the first step
    np.testing.assert_allclose(p, [0.99, 1.01], rtol=1e-6)


def test_adam_second_step_by_hand():
    p, g = pair([0.0], [1.0])
    opt = Adam([(p, g)], lr=0.1, betas=(0.5, 0.5), eps=0.0)
    opt.step()
    g[...] = 3.0
    opt.step()
    m = (0.5 * 0.5 * 1 + 0.5 * 3) / (1 - 0.25)  # = 2.333...
    v = (0.5 * 0.5 * 1 + 0.5 * 9) / (1 - 0.25)  # = 6.333...
    np.testing.assert_allclose(p, [-0.1 - 0.1 * m / np.sqrt(v)])


def test_l2_applies_to_weights_not_biases():
    W, gW = pair([[2.0]], [[0.0]])
    b, gb = pair([2.0], [0.0])
    SGD([(W, gW), (b, gb)], lr=0.5, weight_decay=0.1).step()
    np.testing.assert_allclose(W, [[1.9]])
    np.testing.assert_allclose(b, [2.0])


@pytest.mark.parametrize("make", [
    lambda pg: SGD(pg, lr=0),
    lambda pg: SGD(pg, lr=float("nan")),
    lambda pg: SGD(pg, lr=0.1, weight_decay=-1),
    lambda pg: Momentum(pg, lr=0.1, momentum=1.0),
    lambda pg: Adam(pg, lr=0.1, betas=(0.9, 1.0)),
])
def test_bad_hyperparameters_are_rejected(make):
    with pytest.raises(ValueError, match="Invalid"):
        make([pair([1.0], [1.0])])


@pytest.mark.parametrize("make", [
    lambda pg: SGD(pg, lr=0.3),
    lambda pg: SGD(pg, lr=0.3, weight_decay=0.1),
    lambda pg: Momentum(pg, lr=0.3, momentum=0.9, weight_decay=0.1),
    lambda pg: Adam(pg, lr=0.01, weight_decay=0.1),
])
@pytest.mark.parametrize("scale", ["grad_scale", 2.5])
def test_a_gradient_that_arrives_scaled_gives_the_same_steps(make, scale):
    """Training folds the optimizer's grad_scale into the loss gradient; any other factor is undone."""
    rng = np.random.default_rng(0)
    plain = [(rng.standard_normal((3, 4)), np.zeros((3, 4))), (rng.standard_normal(4), np.zeros(4))]
    scaled = [(p.copy(), g.copy()) for p, g in plain]
    start = plain[0][0].copy()
    a, b = make(plain), make(scaled)
    k = b.grad_scale if scale == "grad_scale" else scale
    for _ in range(3):
        grads = [rng.standard_normal(p.shape) for p, _ in plain]
        for (_, g), (_, gs), new in zip(plain, scaled, grads):
            g[...], gs[...] = new, k * new
        a.step()
        b.step(scaled_by=k)
    for (p, _), (ps, _) in zip(plain, scaled):
        np.testing.assert_allclose(ps, p, rtol=1e-12)
    assert not np.allclose(plain[0][0], start)


def test_sgd_folds_its_rate_in_so_its_step_leaves_the_gradient_untouched():
    p, g = pair([1.0, -2.0], [0.05, 0.1])  # lr * the gradient of test_sgd_step_by_hand
    opt = SGD([(p, g)], lr=0.1)
    assert opt.grad_scale == 0.1 and Adam([(p, g)], lr=0.1).grad_scale == 1.0
    opt.step(scaled_by=0.1)
    np.testing.assert_allclose(p, [0.95, -2.1])
    np.testing.assert_array_equal(g, [0.05, 0.1])  # one pass, p -= g: no rescaling of g
