"""engine/fast computes what the textbook modules compute: each twin against its textbook class, then whole trainings.

The textbook classes are themselves held to PyTorch (test_torch_oracle.py) and to central differences
(test_gradients.py); here the references are the textbook classes.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import PRESETS, TrainConfig, build_model, train
from engine.backends.numpy_backend import numpy_train
from engine.fast import blas
from engine.fast.layers import column_sums
from engine.fast.losses import fast_loss, row_sums
from engine.fast.model import fast_twin
from engine.fast.optim import FAST_OPTIMIZERS
from engine.layers import ACTIVATIONS, Dropout, Linear
from engine.losses import LOSSES, OUTPUTS, make_loss
from engine.optim import OPTIMIZERS, make_optimizer

PAIRS = [(o, loss) for o, loss in itertools.product(OUTPUTS, LOSSES) if not (o == "linear" and loss == "cross_entropy")]


def _twins(layer):
    """A textbook layer and its fast twin, sharing parameters."""
    return layer, fast_twin(layer)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_fast_activations_are_the_textbook_ones(rng, name):
    slow, fast = _twins(ACTIVATIONS[name]())
    for rows in (5, 7, 5):  # a second batch of a shape reuses the fast layer's buffers
        x = rng.standard_normal((rows, 6)).astype(np.float32)
        x[0, :3] = [0.0, -0.0, np.nan]
        g = rng.standard_normal(x.shape).astype(np.float32)
        y = slow.forward(x.copy())
        np.testing.assert_array_equal(fast.forward(x.copy()), y)  # NaN in the same places
        np.testing.assert_allclose(fast.backward(g.copy()), slow.backward(g), rtol=1e-6)


def test_fast_linear_is_the_textbook_linear_times_the_scale(rng):
    W, b = rng.standard_normal((8, 5)), rng.standard_normal(5)
    slow = Linear(W, b)
    fast = fast_twin(slow)
    assert fast.params["W"] is W and fast.params["b"] is b  # twins share parameters
    x, g = rng.standard_normal((6, 8)), rng.standard_normal((6, 5))
    np.testing.assert_allclose(fast.forward(x), slow.forward(x), rtol=1e-12)
    np.testing.assert_allclose(fast.backward(0.5 * g), slow.backward(g) * 0.5, rtol=1e-12)
    for k in ("W", "b"):
        np.testing.assert_allclose(fast.scaled_grads[k], 0.5 * slow.grads[k], rtol=1e-12)


@pytest.mark.parametrize("layout", ["rows", "a view of wider rows", "no BLAS found"])
def test_sgd_inside_the_weight_product_is_the_textbook_update(rng, monkeypatch, layout):
    """W = (1 - lr l2) W - lr dW and b -= lr db, made in backward; dL/dx still from the weights before the update."""
    lr, l2 = 0.1, 0.01
    n_in, n_out = 130, 128  # weights enough for BLAS's call to pay (blas.MIN_SIZE)
    assert n_in * n_out >= blas.MIN_SIZE
    W, b = rng.standard_normal((n_in, n_out)).astype(np.float32), rng.standard_normal(n_out).astype(np.float32)
    slow, fast = Linear(W.copy(), b.copy()), fast_twin(Linear(W.copy(), b.copy()))
    fast.sgd_beta = 1 - lr * l2
    x = rng.standard_normal((6, n_in + 3)).astype(np.float32)[:, :n_in] if layout == "a view of wider rows" \
        else rng.standard_normal((6, n_in)).astype(np.float32)
    if layout == "no BLAS found":
        monkeypatch.setattr(blas, "_functions", lambda: {})
    g = rng.standard_normal((6, n_out)).astype(np.float32)
    slow.forward(x)
    dx = slow.backward(g)
    fast.forward(x)
    np.testing.assert_allclose(fast.backward(lr * g), lr * dx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast.params["W"], W - lr * (slow.grads["W"] + l2 * W), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.params["b"], b - lr * slow.grads["b"], rtol=1e-5, atol=1e-6)


def test_numpy_s_own_blas_is_found_where_numpy_bundles_openblas():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not any("numpy" in lib["filepath"] and lib["internal_api"] == "openblas"
               for lib in threadpoolctl.threadpool_info()):
        pytest.skip("NumPy here does not bundle OpenBLAS")
    assert blas.available()
    x, d, W = (np.arange(n, dtype=np.float64).reshape(shape) for n, shape in ((6, (2, 3)), (8, (2, 4)), (12, (3, 4))))
    expected = 0.5 * W - x.T @ d
    assert blas.weight_update(x, d, W, 0.5, min_size=0) and np.array_equal(W, expected)
    assert not blas.weight_update(x.astype(np.float32), d, W, min_size=0)  # mixed dtypes: refused, W untouched
    assert not blas.weight_update(W[:2, :3], d[:, :3].copy(), W[:3, :3], min_size=0)  # gemm's C must not overlap
    assert not blas.weight_update(x, d, W, 0.5)  # 12 weights: NumPy's own pass is cheaper than the call
    assert np.array_equal(W, expected)


@settings(max_examples=200, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), batch=st.integers(1, 5), n_in=st.integers(1, 6),
       n_out=st.integers(1, 6), layout=st.sampled_from(["rows", "wider rows", "every other row", "reversed",
                                                        "broadcast", "columns", "other dtype"]))
def test_the_gemm_update_computes_the_update_or_refuses_and_leaves_the_weights(dtype, batch, n_in, n_out, layout):
    """Whatever layout x arrives in: W = 0.9 W - x.T @ delta, or False and W untouched; never a wrong W."""
    rng = np.random.default_rng(batch * 100 + n_in * 10 + n_out)
    x = rng.standard_normal((2 * batch, n_in + 3)).astype(dtype)
    x = {"rows": x[:batch, :n_in].copy(), "wider rows": x[:batch, :n_in], "every other row": x[::2, :n_in],
         "reversed": x[:batch, :n_in][::-1], "broadcast": np.broadcast_to(x[0, :n_in], (batch, n_in)),
         "columns": np.asfortranarray(x[:batch, :n_in]), "other dtype": x[:batch, :n_in].astype(np.float16)}[layout]
    delta = rng.standard_normal((batch, n_out)).astype(dtype)
    W = rng.standard_normal((n_in, n_out)).astype(dtype)
    before = W.copy()
    if blas.weight_update(x, delta, W, 0.9, min_size=0):
        expected = 0.9 * before - x.astype(dtype).T @ delta
        np.testing.assert_allclose(W, expected, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-5)
    else:
        assert np.array_equal(W, before)
        assert layout in ("reversed", "broadcast", "columns", "other dtype") or not blas.available()


@settings(max_examples=200, deadline=None)
@given(dtype=st.sampled_from([np.float32, np.float64]), n=st.integers(0, 40), a=st.floats(-3, 3),
       b=st.sampled_from([1.0, 0.9, 0.0, -2.0]),
       layout=st.sampled_from(["contiguous", "every other", "reversed", "broadcast", "other dtype", "other shape",
                               "overlapping", "read-only", "rows of a matrix"]))
def test_the_blas_multiply_add_computes_it_or_refuses_and_leaves_y(dtype, n, a, b, layout):
    """Whatever layout the arrays arrive in: y = a x + b y, or False and y untouched; never a wrong y."""
    rng = np.random.default_rng(n)
    base = rng.standard_normal(2 * n + 2).astype(dtype)
    y = rng.standard_normal(n).astype(dtype)
    x = {"contiguous": base[:n].copy(), "every other": base[:2 * n:2], "reversed": base[:n][::-1],
         "broadcast": np.broadcast_to(base[0], (n,)), "other dtype": base[:n].astype(np.float16),
         "other shape": base[:n + 1], "overlapping": y, "read-only": base[:n], "rows of a matrix": base[:n]}[layout]
    if layout == "read-only":
        y.flags.writeable = False
    if layout == "rows of a matrix" and n:  # a parallel step's share of a parameter: rows of a 2-D array
        x, y = base[:2 * n].reshape(2, n)[1:], rng.standard_normal((3, n)).astype(dtype)[1:2]
    before = y.copy()
    expected = a * x.astype(dtype) + b * before if x.shape == y.shape else None
    if blas.scaled_add(a, x, b, y, min_size=0):
        np.testing.assert_allclose(y, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    else:
        assert np.array_equal(y, before)
        found = blas._functions().get("axpy" if b == 1 else "axpby", {})
        assert layout in ("every other", "reversed", "broadcast", "other dtype", "other shape", "overlapping",
                          "read-only") or b == 0 or dtype not in found


@pytest.mark.parametrize("a, b, where", [(1.0, 0.0, "y"), (0.0, 1.0, "x"), (0.0, 0.5, "x"), (2.0, 0.9, "y")])
def test_the_blas_multiply_add_keeps_a_nan_where_numpy_would(a, b, where):
    """0 * NaN is NaN: a diverged value in x or y spreads, whatever the factors, as it does with NumPy."""
    x, y = np.ones(blas.MIN_SIZE, np.float32), np.ones(blas.MIN_SIZE, np.float32)
    (x if where == "x" else y)[7] = np.nan
    blas.scaled_add(a, x, b, y) or np.add(a * x, b * y, out=y)
    assert np.isnan(y[7]) and np.isfinite(np.delete(y, 7)).all()


def test_fast_dropout_draws_the_textbook_masks(rng):
    slow = Dropout(0.3, np.random.default_rng(5))
    fast = fast_twin(Dropout(0.3, np.random.default_rng(5)))
    for _ in range(3):
        x = rng.standard_normal((9, 4)).astype(np.float32)
        np.testing.assert_allclose(fast.forward(x.copy()), slow.forward(x), rtol=1e-6)
        np.testing.assert_allclose(fast.backward(np.ones_like(x)), slow.backward(np.ones_like(x)), rtol=1e-6)
    assert slow.forward(x, train=False) is x


@pytest.mark.parametrize("output, loss", PAIRS)
def test_fast_losses_are_the_textbook_ones_and_scale_their_gradient(rng, output, loss):
    """Training folds SGD's learning rate into the loss gradient: backward(scale) = scale * dL/dz."""
    slow = make_loss(loss, output)
    fast = fast_loss(slow)
    assert fast.output_name == slow.output_name
    for rows in (6, 3, 6):
        z, t = rng.standard_normal((rows, 10)), rng.integers(0, 10, rows)
        assert fast.forward(z, t) == pytest.approx(slow.forward(z, t), rel=1e-12)
        np.testing.assert_allclose(fast.output, slow.output, rtol=1e-12)
        np.testing.assert_allclose(fast.backward(0.37), 0.37 * slow.backward(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("with_blas", [True, False], ids=["BLAS multiply-adds", "NumPy only"])
@pytest.mark.parametrize("optimizer, kwargs", [
    ("sgd", {}), ("sgd", {"l2": 0.1}), ("momentum", {"l2": 0.1, "momentum": 0.8}),
    ("adam", {}), ("adam", {"l2": 0.1, "betas": (0.8, 0.95)})])
def test_fast_optimizers_take_the_textbook_steps_from_scaled_gradients(rng, monkeypatch, optimizer, kwargs,
                                                                       with_blas):
    if not with_blas:
        monkeypatch.setattr(blas, "_functions", lambda: {})
    cfg = TrainConfig(optimizer=optimizer, learning_rate=0.03, **kwargs)
    big = (130, 128)  # at least blas.MIN_SIZE elements: where BLAS is found, its multiply-adds make the update
    slow_params = [(rng.standard_normal(big), np.zeros(big)), (rng.standard_normal(4), np.zeros(4))]
    fast_params = [(p.copy(), g.copy()) for p, g in slow_params]
    slow, fast = make_optimizer(cfg, slow_params), make_optimizer(cfg, fast_params, FAST_OPTIMIZERS)
    start = slow_params[0][0].copy()
    for _ in range(4):
        for (_, g), (_, gf) in zip(slow_params, fast_params):
            g[...] = rng.standard_normal(g.shape)
            gf[...] = fast.grad_scale * g  # as the fast loss hands them over
        slow.step()
        fast.step(scaled_by=fast.grad_scale)
    for (p, _), (pf, _) in zip(slow_params, fast_params):
        np.testing.assert_allclose(pf, p, rtol=1e-12)
    assert not np.allclose(slow_params[0][0], start)
    assert set(OPTIMIZERS) == set(FAST_OPTIMIZERS)


@pytest.mark.parametrize("shape", [(1, 1), (1, 10), (64, 10), (64, 256), (100, 1000), (3, 7)])
def test_blas_sums_match_numpy_reductions(shape):
    """Bias gradients and softmax denominators are sums computed as products with a vector of ones."""
    rng = np.random.default_rng(1)
    for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
        a = rng.standard_normal(shape).astype(dtype)
        out = np.empty(shape[1], dtype)
        np.testing.assert_allclose(column_sums(a, out=out), a.astype(np.float64).sum(axis=0), rtol=tol, atol=tol)
        np.testing.assert_allclose(row_sums(a), a.astype(np.float64).sum(axis=1), rtol=tol, atol=tol)
    a = np.array([[1.0, np.inf], [np.nan, 2.0]], dtype=np.float32)
    assert np.isnan(column_sums(a, out=np.empty(2, np.float32))[0])  # divergence must stay visible
    assert np.isnan(row_sums(a)[1])


def test_fast_relus_cached_zeros_are_never_written(rng):
    relu = fast_twin(ACTIVATIONS["relu"]())
    for _ in range(3):
        relu.backward(np.ones((5, 4), np.float32) * relu.forward(rng.standard_normal((5, 4)).astype(np.float32)))
    zeros = relu._buffer("zeros", (5, 4), np.dtype(np.float32), fill=0)
    assert not zeros.any() and not zeros.flags.writeable


@pytest.mark.parametrize("cfg", [
    PRESETS["notebook-mse"].config,
    PRESETS["notebook-ce"].config,
    PRESETS["pytorch-mlp"].config.replace(hidden_sizes=(64, 32)),  # standardized: folded constant columns
    PRESETS["pytorch-mlp"].config.replace(hidden_sizes=(64, 32), l2=1e-3, dropout=0.2),  # SGD inside the products
    PRESETS["keras-mlp"].config.replace(hidden_sizes=(300,)),
    PRESETS["keras-mlp"].config.replace(hidden_sizes=(64,), dropout=0.3, l2=1e-4),
    TrainConfig(hidden_sizes=(40, 30), activation="tanh", output="softmax", loss="mse", optimizer="momentum",
                learning_rate=0.03, batch_size=50, l2=1e-3),  # at lr 0.1 float32 and float64 part by 4e-3
    TrainConfig(hidden_sizes=(32,), activation="leaky_relu", output="linear", loss="mse", optimizer="sgd",
                learning_rate=0.01, batch_size=32, init="he"),
], ids=["notebook-mse", "notebook-ce", "pytorch-mlp-small", "pytorch-mlp-l2-dropout", "keras-300",
        "keras-dropout-l2", "tanh-softmax-mse", "leaky-linear"])
def test_the_numpy_backend_trains_as_the_textbook_backend(mnist, cfg):
    """Same seed, same history and weights, to float32 rounding: every trick of engine/fast changes no maths."""
    cfg = cfg.replace(epochs=2, train_limit=2000, val_split=0.1)
    models = {b: build_model(cfg, 784, 10) for b in ("textbook", "numpy")}
    histories = {b: list(train(cfg.replace(backend=b), mnist, model=models[b])) for b in models}
    for key in ("train_loss", "val_loss", "test_loss"):
        np.testing.assert_allclose([getattr(r, key) for r in histories["numpy"]],
                                   [getattr(r, key) for r in histories["textbook"]], rtol=2e-4, err_msg=key)
    np.testing.assert_allclose([s["grad_norm"] for r in histories["numpy"] for s in r.layer_stats],
                               [s["grad_norm"] for r in histories["textbook"] for s in r.layer_stats], rtol=2e-3)
    for a, b in zip(models["numpy"].get_weights(), models["textbook"].get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)


@pytest.mark.parametrize("preset, workers, sparse", [("keras-mlp", 2, False), ("keras-mlp", 2, True),
                                                     ("keras-mlp", 1, True), ("pytorch-mlp", 2, False)])
def test_every_fast_variant_trains_as_the_textbook_backend(mnist, preset, workers, sparse):
    """Each variant fixed, not left to the planner: threads sharing the step (Adam; SGD on standardized inputs with
    their constant columns folded), skipping batch-blank columns. The losses and the weights after the epoch are the
    textbook's; the gradients recorded are the last batch's, which every variant computes serially."""
    cfg = PRESETS[preset].config.replace(hidden_sizes=(300,), epochs=1, train_limit=2000)
    models = {b: build_model(cfg, 784, 10) for b in ("textbook", "numpy")}
    textbook = list(train(cfg.replace(backend="textbook"), mnist, model=models["textbook"]))
    fast = list(numpy_train(cfg, mnist, model=models["numpy"], workers=workers, sparse=sparse))
    assert fast[0].train_loss == pytest.approx(textbook[0].train_loss, rel=2e-4)
    assert fast[0].test_loss == pytest.approx(textbook[0].test_loss, rel=2e-4)
    np.testing.assert_allclose([s["grad_norm"] for s in fast[0].layer_stats],
                               [s["grad_norm"] for s in textbook[0].layer_stats], rtol=2e-3)
    for a, b in zip(models["numpy"].get_weights(), models["textbook"].get_weights()):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5)
