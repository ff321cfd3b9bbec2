"""The NumPy engine on several threads: the same training as the serial step, and safe around errors."""

import threading

import numpy as np
import pytest

import engine.fast.layers as fast_layers
import engine.fast.parallel as parallel
import engine.fast.step as fast_step
from engine import PRESETS, TrainConfig, TrainingDiverged, build_model
from engine.backends.numpy_backend import numpy_train
from engine.fast.model import FastMLP, twin
from engine.fast.optim import FAST_OPTIMIZERS
from engine.fast.parallel import CpuShare, ParallelStep
from engine.optim import make_optimizer


def _losses(history):
    return [(r.train_loss, r.test_loss) for r in history]


@pytest.mark.parametrize("cfg", [
    PRESETS["keras-mlp"].config,
    PRESETS["notebook-mse"].config,  # sigmoid, MSE, SGD
    TrainConfig(hidden_sizes=(40, 30), activation="tanh", output="sigmoid", loss="cross_entropy",
                optimizer="momentum", learning_rate=0.1, batch_size=50, l2=1e-3),
    TrainConfig(hidden_sizes=(64,), activation="leaky_relu", optimizer="adam", learning_rate=1e-3,
                batch_size=32, l2=1e-4, output="softmax", loss="cross_entropy"),
    PRESETS["pytorch-mlp"].config.replace(dropout=0.3, hidden_sizes=(64, 32)),  # two dropout layers
    PRESETS["keras-mlp"].config.replace(dropout=0.2),
], ids=["keras-mlp", "notebook-mse", "tanh-momentum-l2", "leaky-adam-l2", "dropout-sgd", "dropout-keras"])
@pytest.mark.parametrize("workers", [2, 3])
def test_parallel_steps_train_as_the_serial_step(mnist, cfg, workers):
    # 1030 rows: the last batch is short (and for batch 32 of 1030, 6 rows: too few to share, so serial)
    cfg = cfg.replace(epochs=2, train_limit=1030, val_split=0.0)
    serial = list(numpy_train(cfg, mnist, workers=1))
    shared = list(numpy_train(cfg, mnist, workers=workers))
    # Same sums, cut differently: float32 rounding differs in the last bits and grows with training
    # (measured: 1e-5 after an epoch, 2e-4 after two, for 3 workers). A lost or doubled row is far more.
    np.testing.assert_allclose(_losses(shared)[0], _losses(serial)[0], rtol=1e-4)
    np.testing.assert_allclose(_losses(shared), _losses(serial), rtol=1e-3)
    assert [r.test_acc for r in shared] == pytest.approx([r.test_acc for r in serial], abs=2e-3)


@pytest.mark.parametrize("n, workers", [(n, w) for n in (16, 17, 24, 32, 39, 64, 100, 128, 717, 1000)
                                        for w in (2, 3, 4) if n >= parallel.MIN_ROWS_PER_WORKER * w])
def test_workers_shares_cover_every_row_once_cut_at_multiples_of_8(n, workers):
    step = ParallelStep.__new__(ParallelStep)
    step.workers = workers
    shares = [step._rows(n, w, multiple=8) for w in range(workers)]
    assert [s.start for s in shares] == [0] + [s.stop for s in shares[:-1]] and shares[-1].stop == n
    assert all(s.start % 8 == 0 for s in shares)
    sizes = [s.stop - s.start for s in shares]
    assert min(sizes) > 0 and max(sizes) - min(sizes) <= 8 + n % workers
    assert [step._rows(n, w) for w in range(workers)] == [slice(w * n // workers, (w + 1) * n // workers)
                                                         for w in range(workers)]


def test_parallel_weights_match_the_serial_weights(mnist):
    cfg = PRESETS["keras-mlp"].config.replace(hidden_sizes=(100,), epochs=1, train_limit=600)
    models = [build_model(cfg, 784, 10) for _ in range(2)]
    for model, workers in zip(models, (1, 2)):
        list(numpy_train(cfg, mnist, model=model, workers=workers))
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert not np.allclose(models[1].linears[0].params["W"], build_model(cfg, 784, 10).linears[0].params["W"])


def test_divergence_in_a_parallel_step_is_reported_where_the_serial_step_reports_it(mnist):
    cfg = TrainConfig(hidden_sizes=(32,), activation="relu", optimizer="sgd", learning_rate=50.0, batch_size=64,
                      epochs=3, train_limit=640, output="linear", loss="mse")
    where = []
    for workers in (1, 2):
        with pytest.raises(TrainingDiverged) as err:
            list(numpy_train(cfg, mnist, workers=workers))
        where.append((err.value.epoch, err.value.batch))
    assert where[0] == where[1] and where[0] != (1, 1)
    assert not any(t.name.startswith("mlp-lab-worker") for t in threading.enumerate())


def test_an_error_in_a_worker_reaches_the_caller_and_no_thread_is_left(mnist, monkeypatch):
    cfg = PRESETS["keras-mlp"].config.replace(hidden_sizes=(50,), epochs=1, train_limit=500)
    model = twin(build_model(cfg, 784, 10))
    optimizer = make_optimizer(cfg, model.parameters(), FAST_OPTIMIZERS)
    calls = []

    def failing(self, w, job):
        calls.append(w)
        if w == 1:
            raise MemoryError("worker 1 ran out")
        return original(self, w, job)

    original = ParallelStep._phase_b
    monkeypatch.setattr(ParallelStep, "_phase_b", failing)
    x, t = mnist.x_train[:100].astype(np.float32) / 255, mnist.y_train[:100]
    with pytest.raises(MemoryError, match="worker 1 ran out"):
        with ParallelStep(model, optimizer, 2) as step:
            for _ in range(3):
                step.step(x, t)
    assert 1 in calls
    assert not any(t.name.startswith("mlp-lab-worker") for t in threading.enumerate())


def test_stopping_between_batches_ends_the_helper_threads(mnist):
    cfg = PRESETS["keras-mlp"].config.replace(hidden_sizes=(50,), epochs=2, train_limit=1000)
    seen = []
    history = list(numpy_train(cfg, mnist, workers=2, should_stop=lambda: len(seen) >= 3,
                               on_batch=lambda b, n, loss: seen.append(b)))
    assert history == [] and len(seen) == 3
    assert not any(t.name.startswith("mlp-lab-worker") for t in threading.enumerate())


@pytest.mark.parametrize("slow", ["serial", "parallel"])
def test_the_step_planner_keeps_the_variant_measured_fastest(mnist, monkeypatch, slow):
    """Whichever variant is made slow, the planner measures it and keeps the other; training stays the same."""
    import time

    monkeypatch.setattr(parallel, "_SHARE", CpuShare(cores=2))
    cfg = PRESETS["keras-mlp"].config.replace(hidden_sizes=(200,), epochs=1, train_limit=4000)
    if slow == "parallel":
        original = ParallelStep.step
        monkeypatch.setattr(ParallelStep, "step", lambda self, x, t: time.sleep(0.05) or original(self, x, t))
    else:
        original = FastMLP.train_step_loss
        monkeypatch.setattr(FastMLP, "train_step_loss",
                            lambda self, *a: time.sleep(0.05) or original(self, *a))
    plans = []
    (planned,) = list(numpy_train(cfg, mnist, on_plan=plans.append))
    assert plans and plans[0].startswith("1 thread" if slow == "parallel" else "2 threads"), plans
    (serial,) = list(numpy_train(cfg, mnist, workers=1))
    assert planned.train_loss == pytest.approx(serial.train_loss, rel=1e-4)


def _machine(monkeypatch, serial_delay, threaded_delay: float) -> CpuShare:
    """A 2-core machine whose serial step sleeps serial_delay(batches so far, on one core) seconds more a batch, and
    whose threaded step sleeps threaded_delay more."""
    import time

    share = CpuShare(cores=2)
    monkeypatch.setattr(parallel, "_SHARE", share)
    batches = []
    serial, threaded = FastMLP.train_step_loss, ParallelStep.step

    def serial_step(self, *a):
        batches.append(None)
        time.sleep(serial_delay(len(batches), share.looping > 0))
        return serial(self, *a)

    def threaded_step(self, x, t):
        batches.append(None)
        time.sleep(threaded_delay)
        return threaded(self, x, t)

    monkeypatch.setattr(FastMLP, "train_step_loss", serial_step)
    monkeypatch.setattr(ParallelStep, "step", threaded_step)
    return share


# 400 batches an epoch, two or three candidates
PLANNED = PRESETS["keras-mlp"].config.replace(hidden_sizes=(200,), train_limit=40_000, val_split=0.0)


def test_a_busy_moment_during_planning_spoils_one_round_not_the_plan(mnist, monkeypatch):
    """The serial step is the faster (the threaded one sleeps 2 ms a batch), but for 72 batches early in the epoch
    the machine is busy and the serial step sleeps 6 ms: back to back, every counted round fell in those 72
    batches and two threads won; spread over the epoch (a round every 66 batches of 400), one round does and one
    thread wins."""
    _machine(monkeypatch, lambda n, one_core: 0.006 if 8 <= n <= 80 else 0, 0.002)
    plans = []
    list(numpy_train(PLANNED.replace(epochs=1), mnist, on_plan=plans.append))
    assert plans[0].startswith("1 thread"), plans


def test_the_step_measures_again_when_the_machine_slows_down(mnist, monkeypatch):
    """One thread wins the plan; in the second epoch, after the window that set its usual speed, every serial batch
    takes 6 ms more (a program took the core): the step notices, measures again and goes on with two threads,
    training what the serial step trains."""
    _machine(monkeypatch, lambda n, one_core: 0.006 if n > 400 + 2 * fast_step.RECHECK_WINDOW else 0, 0.002)
    cfg, plans = PLANNED.replace(epochs=2), []
    planned = list(numpy_train(cfg, mnist, on_plan=plans.append))
    assert len(plans) == 2 and plans[0].startswith("1 thread"), plans
    assert plans[1].startswith("2 threads") and "measured again once" in plans[1], plans
    monkeypatch.undo()
    np.testing.assert_allclose(_losses(planned), _losses(list(numpy_train(cfg, mnist, workers=1))), rtol=1e-4)


def test_a_step_on_one_core_wins_while_the_other_is_busy_and_is_measured_again_later(mnist, monkeypatch):
    """In the first epoch the serial step with BLAS on every core takes 3 ms more a batch (the host has the other
    core), so the step keeps to one core (1 ms more). That one's speed never changes, yet after RECHECK_ONE_CORE
    windows it is measured again and every core, free again since, wins."""
    share = _machine(monkeypatch, lambda n, one_core: 0.001 if one_core else 0.003 if n <= 400 else 0, 0.004)
    cfg, plans = PLANNED.replace(epochs=5), []
    planned = list(numpy_train(cfg, mnist, on_plan=plans.append))
    assert plans[0].startswith("1 thread on one core"), plans
    assert plans[-1].startswith("1 thread (") and "measured again" in plans[-1], plans
    assert share.looping == 0  # BLAS has every core back
    monkeypatch.undo()
    # five epochs of Adam in float32 whose batches ran three ways (BLAS on two threads or one, a shared step): the
    # sums' order differs, and the losses part by up to 6e-4 by the fifth epoch
    np.testing.assert_allclose(_losses(planned), _losses(list(numpy_train(cfg, mnist, workers=1))), rtol=2e-3)


def test_another_training_starting_or_ending_makes_the_step_measure_again(mnist, monkeypatch):
    """Speeds unchanged, but the process's trainings went from one to two for two windows: measured again."""
    from engine.train import make_splits

    share = CpuShare(cores=2)
    monkeypatch.setattr(parallel, "_SHARE", share)
    cfg = PLANNED.replace(epochs=1)
    step = fast_step.FastStep(cfg, build_model(cfg, 784, 10), make_splits(cfg, mnist))
    step.variant, step._planning = step.candidates[0], False
    with share.training():
        for _ in range(fast_step.RECHECK_WINDOW * 3):  # the usual window, then two alike
            step._watch(0.001)
        assert not step._planning and step.replans == 0
        with share.training():  # another training starts
            for _ in range(fast_step.RECHECK_WINDOW):
                step._watch(0.001)
            assert not step._planning  # one window is not enough
            for _ in range(fast_step.RECHECK_WINDOW):
                step._watch(0.001)
            assert step._planning and step.replans == 1


def test_small_batches_and_one_batch_epochs_still_measure_and_fuse(mnist, monkeypatch):
    """Batches of 4 rows (fewer than a worker's minimum) train with SGD inside the products, and the planner times
    them; an epoch of one batch (always the last, whose gradients are recorded) is not offered the fused update."""
    monkeypatch.setattr(parallel, "_SHARE", CpuShare(cores=2))
    fused_calls = []
    backward = fast_layers.FastLinear.backward
    monkeypatch.setattr(fast_layers.FastLinear, "backward",
                        lambda self, g: fused_calls.append(self.sgd_beta is not None) or backward(self, g))
    cfg = PRESETS["twolayernet"].config.replace(batch_size=4, train_limit=400, val_split=0.0, epochs=1)
    plans = []
    list(numpy_train(cfg, mnist, on_plan=plans.append))
    if fast_step.blas.available():
        assert sum(fused_calls) > len(fused_calls) / 2, plans
    assert "measured per batch: 1 thread" in plans[0], plans
    one = cfg.replace(batch_size=400)
    from engine.train import make_splits

    step = fast_step.FastStep(one, build_model(one, 784, 10), make_splits(one, mnist))
    assert not any(v.fused for v in step.candidates)


def test_the_planning_rounds_are_spread_over_the_first_epoch(mnist, monkeypatch):
    from engine.train import make_splits

    monkeypatch.setattr(parallel, "_SHARE", CpuShare(cores=2))
    cfg = PRESETS["keras-mlp"].config.replace(val_split=0.0)  # 600 batches
    step = fast_step.FastStep(cfg, build_model(cfg, 784, 10), make_splits(cfg, mnist))
    schedule = step._plan_batches(600)
    starts = [i for i, s in enumerate(schedule) if s is not None and (i == 0 or schedule[i - 1] is None)]
    assert len(starts) == fast_step.PLAN_ROUNDS and len(schedule) < 600
    assert starts[0] == 0 and starts[-1] > 400  # the last round late in the epoch
    assert len({b - a for a, b in zip(starts, starts[1:])}) == 1  # evenly
    for r in range(fast_step.PLAN_ROUNDS):
        ran = [v for s in schedule if s is not None and s[0] == r for v in [s[1]]]
        assert sorted(ran, key=str) == sorted(step.candidates * fast_step.PLAN_BATCHES, key=str)
        assert ran[0] == (step.candidates[0] if r % 2 == 0 else step.candidates[-1])  # the order alternates
    assert len(step.candidates) == 6  # one thread, on one core or not, two threads; skipping blank columns or not
    short = step._plan_batches(20)  # too short for six rounds of 24 batches: two, back to back
    assert len(short) == 2 * 24 and None not in short


def test_the_choice_compares_candidates_within_each_round():
    """Threads were denied (another training started) in the rounds where the machine was slow: their pooled
    median would be the lowest, but in the rounds where both ran, one thread was faster."""
    one, two = fast_step.Variant(1), fast_step.Variant(2)
    rounds = [{one: [1.0] * 4, two: [1.1] * 4}, {one: [1.0] * 4, two: [1.1] * 4},
              {one: [2.0] * 4}, {one: [2.0] * 4}, {one: [2.0] * 4}]
    assert fast_step.FastStep.choose(rounds, [one, two]) == one
    rounds[1] = {one: [1.0] * 4, two: [0.5] * 4}
    rounds.append({one: [2.0] * 4, two: [1.0] * 4})
    assert fast_step.FastStep.choose(rounds, [one, two]) == two  # faster in two rounds of three where it ran
    assert fast_step.FastStep.choose([], [one, two]) == one


def test_small_networks_are_not_shared_between_threads_and_one_core_has_one_serial_step(mnist, monkeypatch):
    from engine.train import make_splits

    monkeypatch.setattr(parallel, "_SHARE", CpuShare(cores=2))
    small = PRESETS["twolayernet"].config.replace(train_limit=1000)
    step = fast_step.FastStep(small, build_model(small, 784, 10), make_splits(small, mnist))
    sgd = fast_step.blas.available()  # twolayernet trains with SGD: made inside the products where it can be
    assert step.candidates == [fast_step.Variant(1, fused=sgd), fast_step.Variant(1, one_core=True, fused=sgd)]
    monkeypatch.setattr(parallel, "_SHARE", CpuShare(cores=1))
    step = fast_step.FastStep(small, build_model(small, 784, 10), make_splits(small, mnist))
    assert step.candidates == [fast_step.Variant(1, fused=sgd)] and step.plan.startswith("1 thread")
    keras = PRESETS["keras-mlp"].config.replace(train_limit=1000)
    step = fast_step.FastStep(keras, build_model(keras, 784, 10), make_splits(keras, mnist))
    assert step.candidates == [fast_step.Variant(1, False), fast_step.Variant(1, True)]
    monkeypatch.setattr(parallel, "_SHARE", CpuShare(cores=2))
    norm = keras.replace(hidden_sizes=("256bn",))  # never threads, but one core or every core is measured
    step = fast_step.FastStep(norm, build_model(norm, 784, 10), make_splits(norm, mnist))
    assert {v.workers for v in step.candidates} == {1} and {v.one_core for v in step.candidates} == {False, True}


def test_cpu_share_splits_cores_and_makes_blas_single_threaded_in_a_parallel_loop():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}

    before = blas_threads()
    share = CpuShare(cores=2)
    with share.training():
        assert share.workers() == 2 and blas_threads() == {2}
        with share.training():
            assert share.workers() == 1 and blas_threads() == {1}  # two trainings, a core each
        with share.parallel_loop():
            assert blas_threads() == {1}  # the workers are the parallelism; BLAS must not spin
        assert blas_threads() == {2}
    assert share.trainings == 0 and share.looping == 0
    threadpoolctl.threadpool_limits(max(before))


def test_a_training_uses_the_process_cpu_share(mnist, monkeypatch):
    share = CpuShare(cores=2)
    monkeypatch.setattr(parallel, "_SHARE", share)
    seen = []
    cfg = PRESETS["keras-mlp"].config.replace(hidden_sizes=(20,), epochs=1, train_limit=300)
    list(numpy_train(cfg, mnist, on_batch=lambda b, n, loss: seen.append(share.trainings)))
    assert seen and set(seen) == {1} and share.trainings == 0


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("workers", [1, 2])
def test_gradient_norms_are_the_last_batch_gradient_before_the_update(mnist, optimizer, workers):
    """One batch per epoch: its gradient is the one at the initial weights, recomputed here independently."""
    from engine.train import make_splits

    cfg = TrainConfig(hidden_sizes=(64, 32), optimizer=optimizer, learning_rate=0.05, batch_size=200,
                      train_limit=200, val_split=0.0, epochs=1, output="softmax", loss="cross_entropy")
    (result,) = list(numpy_train(cfg, mnist, workers=workers))
    fresh = build_model(cfg, 784, 10)
    splits = make_splits(cfg, mnist)
    fresh.loss.forward(fresh.forward(splits.x_train), splits.y_train)
    fresh.backward(fresh.loss.backward())
    expected = [np.linalg.norm(lin.grads["W"]) for lin in fresh.linears]
    assert [s["grad_norm"] for s in result.layer_stats] == pytest.approx(expected, rel=1e-4)


def test_the_planner_chooses_among_the_variants_that_ran_when_other_trainings_hold_the_cores(mnist, monkeypatch):
    """Offered threads when the run starts, then denied them while another training computes: the planner keeps a
    variant it timed (it had failed on the candidate without timings: 'no median for empty data')."""
    share = CpuShare(cores=2)
    monkeypatch.setattr(parallel, "_SHARE", share)
    cfg = PRESETS["keras-mlp"].config.replace(hidden_sizes=(200,), epochs=1, train_limit=8000)
    plans = []
    with share.training():  # another training, computing the whole time
        (result,) = list(numpy_train(cfg, mnist, on_plan=plans.append))
    assert plans[0].startswith("1 thread") and np.isfinite(result.train_loss)
