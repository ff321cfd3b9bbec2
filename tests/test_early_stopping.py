"""Early stopping: it stops where patience runs out, records where and which epoch it kept, and the model ends with
exactly the weights of a run stopped by hand at that epoch, in every backend."""

import json

import numpy as np
import pytest

from engine import PRESETS, TrainConfig, build_model, train
from engine.backends.numpy_backend import numpy_train
from engine.cli import build_parser, config_from_args
from engine.train import EpochResult

# 300 digits overfit within about 15 epochs: the validation loss turns up and patience runs out.
OVERFITS = dict(dataset="digits", hidden_sizes=(64, 64), activation="relu", output="softmax", loss="cross_entropy",
                optimizer="adam", learning_rate=1e-2, batch_size=64, epochs=40, init="he", val_split=0.3,
                train_limit=300, patience=2)
BACKENDS = [("textbook", (64, 64)), ("numpy", (64, 64)), ("torch", (64, 64)),
            ("numpy", ("64bn", "64bn")), ("torch", ("64bn", "64bn"))]  # torch with batch norm: autograd's loop


def _run(cfg: TrainConfig, digits):
    """The history and the model after it; the numpy backend's variant is fixed (one thread, every column): the
    planner's choice by timing could differ between two runs, and with it the rounding."""
    model = build_model(cfg, digits.n_features, digits.n_classes)
    if cfg.backend == "numpy":
        return list(numpy_train(cfg, digits, model=model, workers=1, sparse=False)), model
    return list(train(cfg, digits, model=model)), model


@pytest.mark.parametrize("backend, hidden", BACKENDS)
def test_early_stopping_keeps_exactly_the_best_epochs_weights(digits, backend, hidden):
    if backend == "torch":
        pytest.importorskip("torch")
    cfg = TrainConfig(**OVERFITS).replace(backend=backend, hidden_sizes=hidden)
    history, model = _run(cfg, digits)
    last = history[-1]
    kept = last.kept_epoch
    assert len(history) < cfg.epochs and kept is not None  # it stopped early, and says which epoch it kept
    assert [r.kept_epoch for r in history[:-1]] == [None] * (len(history) - 1)
    val = [r.val_loss for r in history]
    assert kept == 1 + int(np.argmin(val)) and last.epoch == kept + cfg.patience
    assert all(v >= val[kept - 1] for v in val[kept:])  # no later epoch improved on it
    by_hand, hand_model = _run(cfg.replace(epochs=kept, patience=0), digits)
    assert by_hand[-1].kept_epoch is None and by_hand[-1].val_loss == val[kept - 1]
    for ours, theirs in zip(model.get_weights(), hand_model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_the_best_weights_come_back_even_when_the_caller_stops_asking_at_that_epoch(digits):
    cfg = TrainConfig(**OVERFITS, backend="numpy")
    full, _ = _run(cfg, digits)
    stop_at = full[-1].epoch
    model = build_model(cfg.replace(epochs=stop_at), digits.n_features, digits.n_classes)
    epochs = numpy_train(cfg.replace(epochs=stop_at), digits, model=model, workers=1, sparse=False)
    for result in epochs:  # as the app's worker does: it stops at the configured last epoch without asking again
        if result.epoch == stop_at:
            break
    epochs.close()
    _, hand_model = _run(cfg.replace(epochs=full[-1].kept_epoch, patience=0), digits)
    for ours, theirs in zip(model.get_weights(), hand_model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_without_a_validation_split_the_training_loss_is_watched_and_min_delta_counts(digits):
    cfg = TrainConfig(**{**OVERFITS, "val_split": 0.0, "epochs": 8, "patience": 2, "min_delta": 100.0})
    history, _ = _run(cfg, digits)
    assert history[0].val_loss is None
    # every epoch lowers the training loss, but never by 100: epoch 1 is the best, patience ends it at epoch 3
    assert [r.epoch for r in history] == [1, 2, 3] and history[-1].kept_epoch == 1
    history, _ = _run(cfg.replace(min_delta=0.0), digits)
    assert len(history) == 8 and history[-1].kept_epoch is None  # the training loss kept falling: no stop


def test_patience_and_min_delta_are_config_fields_with_cli_flags():
    args = build_parser().parse_args(["train", "--patience", "5", "--min-delta", "0.001"])
    cfg = config_from_args(args)
    assert (cfg.patience, cfg.min_delta) == (5, 0.001)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="Early stopping patience must be"):
        TrainConfig(patience=-1)


def test_the_kept_epoch_survives_json():
    result = EpochResult(7, 0.1, 0.9, 0.2, 0.8, 0.3, 0.7, kept_epoch=4)
    assert EpochResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.slow
def test_the_overfitting_preset_opens_a_gap_that_early_stopping_and_l2_close(mnist):
    """overfit-mnist memorises its 1,000 images: once the training loss nears 0, the test loss climbs and the gap
    between them grows. Early stopping keeps an epoch from before that, and L2 holds the weights back: a smaller
    loss gap, and accuracy within two points (bench/overfit.py: early stopping on the validation loss stops while the
    accuracy still climbs, so it keeps about a point less over three seeds)."""
    def gap(r: EpochResult) -> float:
        return r.test_loss - r.train_loss

    base = list(train(PRESETS["overfit-mnist"].config, mnist))
    lowest = min(base, key=lambda r: r.test_loss)
    assert base[-1].train_acc == 1.0 and lowest.epoch < 15 and base[-1].test_loss > lowest.test_loss + 0.03
    assert gap(base[-1]) > max(gap(r) for r in base[:2]) + 0.05
    early = list(train(PRESETS["overfit-mnist-early"].config, mnist))
    kept = early[-1].kept_epoch
    assert kept is not None and len(early) < len(base)
    assert gap(early[kept - 1]) < gap(base[-1]) - 0.03 and early[kept - 1].test_acc > base[-1].test_acc - 0.02
    l2 = list(train(PRESETS["overfit-mnist-l2"].config, mnist))
    assert gap(l2[-1]) < gap(base[-1]) - 0.03 and l2[-1].test_acc > base[-1].test_acc - 0.02


def test_an_early_stopped_run_in_the_app_reports_the_epoch_it_kept(digits):
    """One run, one model: the summary and Results' predictions are the kept epoch's, not the last one trained."""
    import threading

    from ui.runs import FINISHED, TrainingRun

    cfg = TrainConfig(dataset="digits", hidden_sizes=(64,), activation="relu", output="softmax", loss="cross_entropy",
                      optimizer="adam", learning_rate=0.05, batch_size=16, epochs=60, val_split=0.3, patience=2,
                      init="he")
    run = TrainingRun(cfg)
    run.start(digits, threading.BoundedSemaphore(1))
    run.join(300)
    kept = run.stopped_early
    assert run.status == FINISHED and kept is not None and kept < run.epochs_done < cfg.epochs, run.summary()
    kept_acc = run.history[kept - 1].test_acc
    assert f"keeps epoch {kept}'s weights, test accuracy {kept_acc:.2%}" in run.summary()
    probs = run.test_predictions(digits)
    assert np.mean(probs.argmax(axis=1) == digits.y_test) == kept_acc
