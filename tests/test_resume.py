"""Resuming a training from a Checkpoint: stopped after epoch k and resumed, a run ends with the history and weights
of the same run trained without a stop, in every backend and optimizer (the reference is the uninterrupted run, not
the checkpoint code)."""

import numpy as np
import pytest

from engine import TrainConfig, build_model
from engine.backends.numpy_backend import numpy_train, textbook_train
from engine.train import Checkpoint, train

SMALL = dict(dataset="digits", hidden_sizes=(32, 16), activation="relu", output="softmax", loss="cross_entropy",
             batch_size=32, epochs=5, init="he", seed=3)
MNIST = dict(dataset="mnist", hidden_sizes=(300,), activation="relu", output="softmax", loss="cross_entropy",
             batch_size=100, epochs=4, train_limit=3000, seed=5)

CASES = [
    # backend, dataset settings, optimizer settings, stop after
    ("textbook", SMALL, dict(optimizer="adam", learning_rate=3e-3, dropout=0.2), 2),
    ("numpy", SMALL, dict(optimizer="adam", learning_rate=3e-3, dropout=0.2), 2),
    ("numpy", SMALL, dict(optimizer="momentum", learning_rate=0.05, momentum=0.9, l2=1e-3), 3),
    ("numpy", SMALL, dict(optimizer="sgd", learning_rate=0.1, hidden_sizes=("32bn", 16)), 1),
    # trimmed inputs (MNIST's 67 blank pixels; standardized, folded into one column for momentum)
    ("numpy", MNIST, dict(optimizer="adam", learning_rate=1e-3), 2),
    ("numpy", MNIST, dict(optimizer="momentum", learning_rate=0.002, input_scaling="standardize"), 2),
    ("torch", SMALL, dict(optimizer="adam", learning_rate=3e-3, dropout=0.2), 2),
    ("torch", SMALL, dict(optimizer="momentum", learning_rate=0.05, momentum=0.9), 3),
    ("torch", SMALL, dict(optimizer="adam", learning_rate=3e-3, hidden_sizes=("32bn", "d.2", 16)), 2),  # autograd
]


def _train(cfg, data, model, **kw):
    """The numpy backend with its variant fixed (one thread, every column), so two runs round alike."""
    if cfg.backend == "numpy":
        return numpy_train(cfg, data, model=model, workers=1, sparse=False, **kw)
    if cfg.backend == "textbook":
        return textbook_train(cfg, data, model=model, **kw)
    return train(cfg, data, model=model, **kw)


def _stopped_after(cfg, data, stop_at):
    """The run stopped after epoch `stop_at` by a learner (the generator closed): its weights then, and its last
    checkpoint read back from a file."""
    model = build_model(cfg, data.n_features, data.n_classes)
    saved: list[Checkpoint] = []
    epochs = _train(cfg, data, model, on_checkpoint=saved.append)
    for result in epochs:
        if result.epoch == stop_at:
            break
    weights = model.get_weights()
    epochs.close()
    assert len(saved) == stop_at
    return weights, Checkpoint.from_npz(saved[-1].to_npz())


def _losses(history):
    return np.array([(r.train_loss, r.test_loss, r.test_acc) for r in history])


@pytest.mark.parametrize("backend, base, opt, stop_at", CASES)
def test_a_resumed_training_is_the_training_that_never_stopped(backend, base, opt, stop_at, request):
    if backend == "torch":
        pytest.importorskip("torch")
    data = request.getfixturevalue("mnist" if base is MNIST else "digits")
    cfg = TrainConfig(**{**base, **opt, "backend": backend})
    whole_model = build_model(cfg, data.n_features, data.n_classes)
    whole = list(_train(cfg, data, whole_model))

    weights, checkpoint = _stopped_after(cfg, data, stop_at)
    assert checkpoint.epoch == stop_at

    # a new process, as after a server restart: a fresh model given the saved weights
    resumed_model = build_model(cfg, data.n_features, data.n_classes)
    resumed_model.set_weights(weights)
    rest = list(_train(cfg, data, resumed_model, resume=checkpoint))

    assert [r.epoch for r in rest] == list(range(stop_at + 1, cfg.epochs + 1))
    np.testing.assert_allclose(_losses(rest), _losses(whole[stop_at:]), rtol=2e-4, atol=1e-6)
    for a, b in zip(resumed_model.get_weights(), whole_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-5)


def test_resuming_without_the_optimizer_state_would_differ(digits):
    """The check above can fail: Adam restarted with empty moments (what resuming from weights alone does) gives
    another training."""
    cfg = TrainConfig(**SMALL, optimizer="adam", learning_rate=3e-3)
    whole = list(_train(cfg, digits, build_model(cfg, digits.n_features, digits.n_classes)))
    model = build_model(cfg, digits.n_features, digits.n_classes)
    saved: list[Checkpoint] = []
    epochs = _train(cfg, digits, model, on_checkpoint=saved.append)
    next(epochs), next(epochs)
    epochs.close()
    forgetful = saved[-1]
    forgetful.optimizer = {k: np.zeros_like(v) for k, v in forgetful.optimizer.items()}
    rest = list(_train(cfg, digits, model, resume=forgetful))
    assert not np.allclose(_losses(rest), _losses(whole[2:]), rtol=2e-4)


def test_early_stopping_remembers_its_patience_across_a_resume(digits):
    """Patience 2, resumed after an epoch that did not improve: the run stops at the same epoch and keeps the same
    best epoch as without the stop."""
    cfg = TrainConfig(dataset="digits", hidden_sizes=(64, 64), activation="relu", output="softmax",
                      loss="cross_entropy", optimizer="adam", learning_rate=1e-2, batch_size=64, epochs=40, init="he",
                      val_split=0.3, train_limit=300, patience=2, backend="textbook")
    whole_model = build_model(cfg, digits.n_features, digits.n_classes)
    whole = list(_train(cfg, digits, whole_model))
    assert whole[-1].kept_epoch is not None and len(whole) < cfg.epochs
    stop_at = next(r.epoch for r in whole[1:] if r.val_loss > min(w.val_loss for w in whole[:r.epoch - 1]))
    weights, checkpoint = _stopped_after(cfg, digits, stop_at)
    assert checkpoint.early["wait"] >= 1  # it resumes mid-patience
    model = build_model(cfg, digits.n_features, digits.n_classes)
    model.set_weights(weights)
    rest = list(_train(cfg, digits, model, resume=checkpoint))
    assert rest[-1].epoch == whole[-1].epoch and rest[-1].kept_epoch == whole[-1].kept_epoch
    for a, b in zip(model.get_weights(), whole_model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_a_checkpoint_for_another_network_is_refused(digits):
    cfg = TrainConfig(**SMALL, optimizer="adam", learning_rate=3e-3, backend="textbook")
    saved: list[Checkpoint] = []
    epochs = _train(cfg, digits, build_model(cfg, digits.n_features, digits.n_classes), on_checkpoint=saved.append)
    next(epochs)
    epochs.close()
    other = cfg.replace(hidden_sizes=(32, 17))
    with pytest.raises(ValueError, match="optimizer state for 1.W.m"):
        list(_train(other, digits, build_model(other, digits.n_features, digits.n_classes), resume=saved[-1]))
    with pytest.raises(ValueError, match="unreadable"):
        Checkpoint.from_npz(b"not a checkpoint")


def test_the_numpy_and_textbook_steps_write_the_same_checkpoint(mnist):
    """The fast optimizers' scaled moments and the trimmed first layer's rows, given back in the textbook's names and
    units: the same arrays as the textbook step's (MNIST's 67 blank pixels trimmed, Adam)."""
    cfg = TrainConfig(**{**MNIST, "optimizer": "adam", "learning_rate": 1e-3, "epochs": 1})
    _, fast = _stopped_after(cfg, mnist, 1)
    _, book = _stopped_after(cfg.replace(backend="textbook"), mnist, 1)
    assert fast.optimizer.keys() == book.optimizer.keys() and int(fast.optimizer["steps"]) == 30
    for k, a in book.optimizer.items():
        np.testing.assert_allclose(fast.optimizer[k], a, rtol=1e-3, atol=1e-3 * np.abs(a).max(), err_msg=k)
    assert np.count_nonzero(book.optimizer["0.W.m"].any(axis=1)) < 784  # blank pixels' rows: zero in both
