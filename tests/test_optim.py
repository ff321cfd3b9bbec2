"""One hand-computed step of each optimizer (hyperparameters are validated in TrainConfig: tests/test_config.py)."""

import numpy as np

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
