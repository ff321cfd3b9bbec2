"""The training loop on real data: learning, determinism, stopping, divergence, splits, save/load."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import PRESETS, TrainConfig, TrainingDiverged, build_model, load_model, train
from engine.model import MLP, seed_streams
from engine.train import batch_order, make_splits

ROOT = Path(__file__).resolve().parent.parent
SMALL = TrainConfig(dataset="digits", hidden_sizes=(32,), activation="relu", output="softmax",
                    loss="cross_entropy", optimizer="sgd", learning_rate=0.1, batch_size=32, epochs=3, init="he")


def test_loss_falls_on_real_mnist_in_one_epoch(mnist):
    cfg = PRESETS["notebook-mse"].config.replace(epochs=1)
    model = build_model(cfg, 784, 10)
    before_loss, before_acc = model.evaluate(mnist.x_test, mnist.y_test)
    (r,) = list(train(cfg, mnist, model=model))
    assert r.test_loss < 0.5 * before_loss
    assert r.test_acc > 0.75 > before_acc + 0.3
    assert r.seconds == pytest.approx(r.train_seconds + r.eval_seconds, rel=1e-6)


def test_same_seed_same_history_other_seed_differs(digits):
    a = [r.test_loss for r in train(SMALL, digits)]
    b = [r.test_loss for r in train(SMALL, digits)]
    c = [r.test_loss for r in train(SMALL.replace(seed=1), digits)]
    assert a == b and a != c


def test_batch_order_shuffles_and_keeps_the_last_partial_batch():
    batches = batch_order(np.random.default_rng(0), 10, 4)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert np.concatenate(batches).tolist() != list(range(10))


@pytest.mark.parametrize("backend", ["textbook", "numpy"])
def test_every_example_is_seen_once_per_epoch(digits, monkeypatch, backend):
    seen = []
    original = MLP.forward
    monkeypatch.setattr(MLP, "forward", lambda self, x, train=True: (train and seen.append(x.copy()))
                        or original(self, x, train))
    next(train(SMALL.replace(batch_size=100, backend=backend), digits))
    assert [len(x) for x in seen[:-1]] == [100] * (len(digits.y_train) // 100)
    assert len(seen[-1]) == len(digits.y_train) % 100
    if backend == "textbook":  # every training image once (the fast path trains on fewer columns of them)
        rows, expected = np.concatenate(seen), make_splits(SMALL, digits).x_train
        np.testing.assert_array_equal(np.unique(rows, axis=0), np.unique(expected, axis=0))


@pytest.mark.parametrize("backend", ["textbook", "numpy"])
def test_should_stop_ends_between_batches_and_on_batch_gets_each_batch_loss(digits, backend):
    cfg = SMALL.replace(backend=backend)
    calls = []
    gen = train(cfg, digits, should_stop=lambda: len(calls) >= 5,
                on_batch=lambda b, n, loss: calls.append((b, n, loss)))
    assert list(gen) == []
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5] and calls[0][1] == -(-len(digits.y_train) // 32)
    # the first batch's loss is the loss of the initial weights on that batch
    splits = make_splits(cfg, digits)
    first = batch_order(np.random.default_rng(seed_streams(cfg.seed)["shuffle"]), len(splits.y_train), 32)[0]
    model = build_model(cfg, 64, 10)
    expected = model.loss.forward(model.forward(splits.x_train[first], train=True), splits.y_train[first])
    assert calls[0][2] == pytest.approx(expected, rel=1e-5)


def test_caller_stops_by_not_asking(digits):
    gen = train(SMALL.replace(epochs=50), digits)
    first = next(gen)
    gen.close()
    assert first.epoch == 1


@pytest.mark.parametrize("backend", ["numpy", "textbook"])
def test_divergence_raises_with_history(digits, backend):
    """Two epochs at a sane learning rate, then the same run resumed at 5.0: the error names the epoch and batch and
    carries exactly the two finished epochs; the batch whose loss blew up changed no weight."""
    cfg = TrainConfig(dataset="digits", hidden_sizes=(32,), activation="relu", output="linear", loss="mse",
                      learning_rate=0.01, batch_size=16, epochs=2, init="he", backend=backend)
    model = build_model(cfg, 64, 10)
    saved = []
    first = list(train(cfg, digits, model=model, on_checkpoint=saved.append))
    wild = cfg.replace(learning_rate=5.0, epochs=5)
    with pytest.raises(TrainingDiverged, match="learning rate") as info:
        list(train(wild, digits, model=model, resume=saved[-1]))
    error = info.value
    assert error.epoch == 3 and error.batch >= 1
    assert [r.epoch for r in error.history] == [1, 2]
    assert [r.test_loss for r in error.history] == [r.test_loss for r in first]
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_validation_split_and_train_limit(digits):
    cfg = SMALL.replace(val_split=0.2, train_limit=500, epochs=1)
    splits = make_splits(cfg, digits)
    assert len(splits.y_train) == 500 and len(splits.y_val) == round(0.2 * len(digits.y_train))
    assert splits.x_train.dtype == np.float32 and splits.x_train.max() <= 1.0
    (r,) = list(train(cfg, digits))
    assert r.val_loss is not None and 0 <= r.val_acc <= 1


def test_layer_stats_describe_each_linear_layer(digits):
    """The statistics against a float64 computation by hand: the last batch's gradient, the probe's activations."""
    cfg = SMALL.replace(epochs=1)
    splits = make_splits(cfg, digits)
    model = build_model(cfg, 64, 10)
    (r,) = list(train(cfg, digits, model=model))
    assert len(r.layer_stats) == 2
    probe = splits.x_test[:512].astype(np.float64)
    W1, b1 = (model.linears[0].params[k].astype(np.float64) for k in ("W", "b"))
    h = np.maximum(probe @ W1 + b1, 0)
    first = r.layer_stats[0]
    assert first["act_mean"] == pytest.approx(h.mean(), rel=1e-5)
    assert first["act_std"] == pytest.approx(h.std(), rel=1e-5)
    assert first["dead_frac"] == pytest.approx(np.mean(np.all(h <= 0, axis=0)))
    assert first["weight_std"] == pytest.approx(W1.std(), rel=1e-5)
    # the last batch's gradient, recomputed in float64 from the weights before its step is not at hand:
    # it must at least be the gradient the layer holds, and be finite and nonzero
    assert first["grad_norm"] == pytest.approx(float(np.linalg.norm(model.linears[0].grads["W"])), rel=1e-6)
    assert first["grad_norm"] > 0
    assert json.loads(json.dumps(r.to_dict()))["layer_stats"][1]["weight_mean"] == r.layer_stats[1]["weight_mean"]


def test_dropout_trains_and_is_off_for_evaluation(digits):
    cfg = SMALL.replace(dropout=0.3, epochs=5)
    model = build_model(cfg, 64, 10)
    results = list(train(cfg, digits, model=model))
    loss, acc = model.evaluate(digits.x_test, digits.y_test)
    assert acc == results[-1].test_acc  # evaluation is deterministic: dropout is off
    assert results[-1].test_acc > 0.8


def test_save_and_load_round_trip(digits, tmp_path):
    model = build_model(SMALL, 64, 10)
    list(train(SMALL, digits, model=model))
    path = tmp_path / "run.npz"
    model.save(path)
    loaded = load_model(path)
    assert loaded.config == SMALL
    np.testing.assert_array_equal(loaded.predict_proba(digits.x_test), model.predict_proba(digits.x_test))


def test_load_rejects_mismatched_shapes(tmp_path):
    model = build_model(SMALL, 64, 10)
    arrays = model.named_parameters()
    arrays["1.W"] = np.zeros((31, 10), np.float32)
    np.savez(tmp_path / "bad.npz", config=np.array(json.dumps(SMALL.to_dict())), **arrays)
    with pytest.raises(ValueError, match="1.W has shape"):
        load_model(tmp_path / "bad.npz")
    np.savez(tmp_path / "noconfig.npz", **model.named_parameters())
    with pytest.raises(ValueError, match="no readable configuration"):
        load_model(tmp_path / "noconfig.npz")


def test_config_round_trips_and_validates():
    for preset in PRESETS.values():
        cfg = preset.config
        assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    for bad, message in [(dict(hidden_sizes=(0,)), "at least one unit"), (dict(learning_rate=-1), "Learning rate"),
                         (dict(batch_size=0), "Batch size"), (dict(activation="gelu"), "Unknown hidden activation"),
                         (dict(dropout=1.0), "Dropout"), (dict(val_split=1.5), "Validation split")]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad)
    with pytest.raises(ValueError, match="Unknown configuration field"):
        TrainConfig.from_dict({"learning_rat": 0.1})


def test_network_size_is_capped_with_the_count_a_model_has():
    from engine.config import MAX_PARAMS, n_parameters, parse_hidden_sizes

    for sizes in [(1000,), (256, 128, 64), (64, 16), ()]:  # the count is the model's, not an estimate
        assert n_parameters(sizes) == build_model(SMALL.replace(dataset="mnist", hidden_sizes=sizes), 784, 10).n_params
    assert n_parameters((4096, 4096, 4096)) < MAX_PARAMS  # big but allowed
    parse_hidden_sizes("4096,4096,4096")
    for text, message in [("8192,8192", "73,629,706 parameters"), ("9000", "8192 units"),
                          ("64," * 11, "at most 10")]:
        with pytest.raises(ValueError, match=message):
            parse_hidden_sizes(text)
    with pytest.raises(ValueError, match="parameters; the limit"):
        TrainConfig(hidden_sizes=(8192, 8192))  # an uploaded or hand-written config too


@pytest.mark.parametrize("init, w_std, b_zero", [("notebook", 1.0, False), ("small", 0.01, True),
                                                  ("xavier", np.sqrt(2 / (784 + 300)), True),
                                                  ("he", np.sqrt(2 / 784), True)])
def test_initialisations_have_the_documented_spread(init, w_std, b_zero):
    model = build_model(TrainConfig(hidden_sizes=(300,), init=init), 784, 10)
    W, b = model.linears[0].params["W"], model.linears[0].params["b"]
    assert W.std() == pytest.approx(w_std, rel=0.02)
    assert (np.all(b == 0)) == b_zero


def test_engine_imports_no_ui_libraries():
    code = ("import sys, engine, engine.__main__, engine.train, engine.backends; "
            "bad = [m for m in ('streamlit', 'altair', 'pandas') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
