"""A wide first layer skips the input columns that are zero throughout a batch: the same training, less work.

MNIST's pixels near the border are blank in most images, so in a batch of 100 about 200 of the 717
live pixels are zero in every row. `FastLinear.sparse_input` leaves them out of the layer's products;
the columns are ordered from the most often lit, so a batch's nonzero columns are a prefix and a
few scattered ones (`column_support`). References: float64 products of every column, and the same
training with every column (`trim_inputs=False`).
"""

import numpy as np
import pytest

import engine.fast.trim as trim_module
from engine import PRESETS, build_model
from engine.backends.numpy_backend import numpy_train
from engine.fast.layers import Buffers, FastLinear, column_support, nonzero_columns, weight_grad_on
from engine.fast.parallel import PREFIX_ROW_WORK, ParallelStep
from engine.fast.trim import live_inputs
from engine.train import make_splits


def _batches(rng):
    """(name, x): batches with zero columns in the patterns training meets, and the corner cases."""
    n = 40
    x = np.zeros((24, n))
    x[:, :20] = (rng.random((24, 20)) < 0.5) * rng.random((24, 20))  # often lit: the prefix
    x[3, 35] = 0.7  # rare columns beyond it: scattered
    x[11, 38] = 0.2
    x[20, 26] = 1.0
    nan = x.copy()
    nan[:, 30] = 0
    nan[5, 30] = np.nan  # a NaN is not zero: it must reach the output
    yield "mnist-like", x.astype(np.float32)
    yield "all-zero", np.zeros((24, n), np.float32)
    yield "no-zero-column", (rng.random((24, n)) + 0.1).astype(np.float32)
    yield "one-column", np.eye(24, n, k=17, dtype=np.float32)
    yield "negative", (x * np.where(rng.random(x.shape) < 0.5, -1, 1)).astype(np.float32)
    yield "nan", nan.astype(np.float32)


@pytest.mark.parametrize("max_scattered", [0, 1, 3, 16])
def test_column_support_holds_every_nonzero_column_with_the_shortest_prefix(rng, max_scattered):
    for density in (0.0, 0.05, 0.3, 0.9, 1.0):
        for _ in range(20):
            mask = rng.random(60) < density
            prefix, scattered = column_support(mask, max_scattered)
            nonzero = set(np.flatnonzero(mask))
            assert nonzero <= set(range(prefix)) | set(scattered.tolist())
            assert scattered.tolist() == sorted(scattered.tolist()) and all(mask[scattered])
            assert all(s > prefix for s in scattered)  # a column right after the prefix joins it
            assert len(scattered) <= max_scattered
            assert prefix == 0 or mask[prefix - 1]  # no zero column closes the prefix
            # shortest: stopping before the prefix's last run of nonzero columns needs too many scattered
            run_start = prefix
            while run_start > 0 and mask[run_start - 1]:
                run_start -= 1
            assert run_start == 0 or mask[run_start:].sum() > max_scattered
    assert column_support(np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 1], bool), 2)[0] == 8  # 7, then 7 joins


@pytest.mark.parametrize("case", [name for name, _ in _batches(np.random.default_rng(0))])
def test_sparse_linear_is_the_dense_linear(rng, case):
    x = dict(_batches(rng))[case]
    W = rng.standard_normal((x.shape[1], 30)).astype(np.float32)
    b = rng.standard_normal(30).astype(np.float32)
    grad_out = rng.standard_normal((len(x), 30)).astype(np.float32)
    layer = FastLinear(W, b, needs_input_grad=False)
    layer.sparse_input = True
    y = layer.forward(x).copy()
    layer.backward(grad_out.copy())
    with np.errstate(invalid="ignore"):
        ref_y = x.astype(np.float64) @ W + b
        ref_dW = x.T.astype(np.float64) @ grad_out
    np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.scaled_grads["W"], ref_dW, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.scaled_grads["b"], grad_out.sum(0), rtol=1e-5, atol=1e-5)
    assert layer.support is not None and np.array_equal(layer.nonzero, x.astype(bool).any(0) | np.isnan(x).any(0))
    if case == "mnist-like":  # the case the layer is for: a prefix shorter than the row, and scattered columns
        assert layer.support.prefix <= 20 and layer.support.scattered.tolist() == [26, 35, 38]
    if case == "nan":
        assert np.isnan(y[5]).all() and np.isnan(layer.scaled_grads["W"][30]).all()
    layer.forward(x, train=False)  # evaluation multiplies every column: its batches are large
    assert layer.support is None


def test_weight_gradient_rows_are_those_of_the_full_product_and_nothing_else_is_written(rng):
    x = dict(_batches(rng))["mnist-like"]
    delta = rng.standard_normal((len(x), 7)).astype(np.float32)
    support = column_support(nonzero_columns(x, Buffers()), 1)
    ref = x.T.astype(np.float64) @ delta
    cuts = {0, support.prefix - 1, support.prefix, support.prefix + 1, *support.scattered.tolist(), x.shape[1]}
    for start in sorted(cuts):
        for stop in sorted(c for c in cuts if c >= start):
            out = np.full((x.shape[1], 7), 99.0, np.float32)
            weight_grad_on(x, delta, support, out, slice(start, stop))
            np.testing.assert_allclose(out[start:stop], ref[start:stop], rtol=1e-5, atol=1e-6)
            assert (out[:start] == 99).all() and (out[stop:] == 99).all()


def test_wide_mnist_layers_skip_zero_columns_ordered_by_how_often_they_are_lit(mnist):
    cfg = PRESETS["keras-mlp"].config  # 1000 ReLU units on pixels in [0, 1]
    x = make_splits(cfg, mnist).x_train
    trim = live_inputs(cfg, x)
    assert trim.sparse and sorted(trim.live.tolist()) == np.flatnonzero(x.any(0)).tolist()
    lit = (x[:, trim.live] != 0).mean(0)
    assert lit[:100].min() > 0.4 and lit[-100:].max() < 0.01  # most often lit first
    rank = np.argsort(np.argsort(-lit, kind="stable"))  # ordered from a sample: near-ties may swap
    assert np.corrcoef(rank, np.arange(len(lit)))[0, 1] > 0.995
    # with L2 every column stays (all weights decay) but they are still ordered for skipping
    l2 = live_inputs(cfg.replace(l2=1e-4), x)
    assert l2.sparse and len(l2.live) == 784 and sorted(l2.live.tolist()) == list(range(784))
    # Not a candidate where it never paid: narrow layers, and standardized pixels (no zeros)
    assert not live_inputs(PRESETS["notebook-mse"].config, x).sparse
    assert live_inputs(cfg.replace(hidden_sizes=(trim_module.SPARSE_MIN_UNITS - 1,)), x).sparse is False
    std = PRESETS["pytorch-mlp"].config.replace(hidden_sizes=(1000,))
    assert not live_inputs(std, make_splits(std, mnist).x_train).sparse


@pytest.mark.parametrize("optimizer, l2, workers", [
    ("adam", 0.0, 1), ("adam", 0.0, 2), ("adam", 0.0, 3), ("sgd", 0.0, 1), ("momentum", 1e-3, 2), ("adam", 1e-3, 2)])
def test_training_that_skips_zero_columns_is_the_training_with_every_column(mnist, monkeypatch, optimizer, l2, workers):
    monkeypatch.setattr(trim_module, "SPARSE_MIN_UNITS", 64)  # a narrower layer than in use, for speed
    cfg = PRESETS["keras-mlp"].config.replace(hidden_sizes=(96,), epochs=2, train_limit=2030, val_split=0.0,
                                               optimizer=optimizer, l2=l2,
                                               learning_rate=1e-3 if optimizer == "adam" else 0.05)
    assert live_inputs(cfg, make_splits(cfg, mnist).x_train).sparse
    skipped = []
    original = FastLinear.forward

    def forward(self, x, train=True):  # how much of the first layer the products left out
        y = original(self, x, train)
        if self.support is not None:
            skipped.append(1 - (self.support.prefix + len(self.support.scattered)) / x.shape[1])
        return y

    monkeypatch.setattr(FastLinear, "forward", forward)
    shared = []  # with workers > 1 the parallel step is used (asked for: with 96 units it would not pay)
    monkeypatch.setattr(ParallelStep, "__init__", lambda self, model, *args: shared.append(
        model.linears[0].sparse_input) or _original_init(self, model, *args))
    models, histories = [build_model(cfg, 784, 10) for _ in range(2)], []
    for model, trim in zip(models, (True, False)):
        histories.append(list(numpy_train(cfg, mnist, model=model, workers=workers, trim_inputs=trim, sparse=trim)))
    assert np.mean(skipped) > 0.1  # the premise: a good share of the columns was skipped
    assert shared == ([] if workers == 1 else [True] * cfg.epochs + [False] * cfg.epochs)
    for key in ("train_loss", "test_loss"):
        np.testing.assert_allclose([getattr(r, key) for r in histories[0]], [getattr(r, key) for r in histories[1]],
                                   rtol=1e-4)
    np.testing.assert_allclose([s["grad_norm"] for r in histories[0] for s in r.layer_stats],
                               [s["grad_norm"] for r in histories[1] for s in r.layer_stats], rtol=1e-3)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5)


_original_init = ParallelStep.__init__


@pytest.mark.parametrize("prefix", [0, 1, 100, 300, 500, 716, 717])
@pytest.mark.parametrize("workers", [2, 3, 4])
def test_weighted_shares_cover_every_row_once_and_even_out_the_work(prefix, workers):
    step = ParallelStep.__new__(ParallelStep)
    step.workers = workers
    n = 717
    shares = [step._weighted_rows(n, prefix, w) for w in range(workers)]
    assert shares[0].start == 0 and shares[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(shares, shares[1:]))
    assert all(s.start % 8 == 0 for s in shares)

    def work(s):
        in_prefix = max(0, min(s.stop, prefix) - s.start)
        return PREFIX_ROW_WORK * in_prefix + (s.stop - s.start - in_prefix)
    works = [work(s) for s in shares]
    assert max(works) - min(works) <= 8 * PREFIX_ROW_WORK + 1  # a cut moves at most 4 rows to a multiple of 8
