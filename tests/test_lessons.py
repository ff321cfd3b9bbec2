"""Lessons: every card runs to its explanation on a small subset and judges the prediction by the runs' own numbers;
a link opens a lesson; the verdicts read histories right."""

import time

import pytest
from streamlit.testing.v1 import AppTest

from engine import EpochResult, TrainConfig
from engine.config import BUILT_KINDS, FIELDS
from ui.lessons import LESSON_LIST, LESSONS, OVERFIT_CHOICES, REMEDIES, overfit_verdict, rates_verdict
from ui.runs import DIVERGED, FINISHED, TrainingRun

APP = "../app.py"
SCALE = 0.02  # lessons on 100-1,200 images for one epoch


def lessons_app(**params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.session_state["follow_seconds"] = 0
    at.session_state["lesson_scale"] = SCALE
    at.query_params.update(params)
    at.switch_page("pages/lessons.py")
    return at.run()


def texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


@pytest.mark.parametrize("lesson", LESSON_LIST, ids=lambda lesson: lesson.id)
def test_every_lesson_card_runs_to_its_explanation(lesson):
    at = lessons_app()
    at.selectbox(key="lesson").set_value(lesson.id).run()
    assert not at.exception
    assert lesson.reference in texts(at.caption)  # the tutorial's figure is stated
    run_button = at.button(key=f"lesson_run_{lesson.id}")
    assert run_button.disabled  # predict first
    guess = lesson.choices[0]
    at.radio(key=f"lesson_guess_{lesson.id}").set_value(guess).run()
    at.button(key=f"lesson_run_{lesson.id}").click().run()
    deadline = time.monotonic() + 240
    while not (at.success or at.warning):
        assert time.monotonic() < deadline, "the lesson did not finish"
        assert not at.exception and not at.error
        time.sleep(0.5)
        at.run()
    verdict = texts(at.success) + texts(at.warning)
    assert f"**{guess}**" in verdict
    right = "was right" in verdict
    explanation = texts(at.markdown)
    assert ("%" in explanation or " ms" in explanation) and "{" not in explanation  # its own numbers, filled in
    runs = [r for r in at.session_state["runs"] if f" {lesson.id}: " in r.name]
    if lesson.measure is None:
        assert runs and all(r.status in (FINISHED, DIVERGED) for r in runs)
        assert all(r.config.train_limit <= 1200 and r.config.epochs == 1 for r in runs)  # the scale shrank them
        assert lesson.verdict(runs)[0] == guess if right else lesson.verdict(runs)[0] != guess
        assert at.get("vega_lite_chart")  # the runs' curves
    else:
        assert not runs


def test_a_link_opens_a_lesson():
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["follow_seconds"] = 0
    at.query_params.update(lesson="overfitting")
    at.run()
    assert not at.exception
    assert at.title[0].value == "Lessons" and at.selectbox(key="lesson").value == "overfitting"
    assert LESSONS["overfitting"].question in texts(at.markdown)


def test_the_overfitting_card_adds_the_remedies_the_engine_has():
    names = [name for name, _ in REMEDIES]
    assert ("early stopping (patience 3)" in names) == ("patience" in FIELDS)
    assert ("batch norm" in names) == ("batch_norm" in BUILT_KINDS)
    assert {"dropout 0.5", "L2 0.001"} <= set(names)


def fake_run(status: str, val_losses: list[float], test_accs: list[float]) -> TrainingRun:
    history = [EpochResult(epoch=i + 1, train_loss=1 / (i + 1), train_acc=0.9, test_loss=v, test_acc=a, val_loss=v,
                           val_acc=a) for i, (v, a) in enumerate(zip(val_losses, test_accs))]
    return TrainingRun(TrainConfig(), status=status, history=history)


def test_the_verdicts_read_the_histories():
    turned = fake_run(FINISHED, [0.5, 0.3, 0.35, 0.5], [0.8, 0.85, 0.86, 0.86])
    falling = fake_run(FINISHED, [0.5, 0.4, 0.35, 0.3], [0.8, 0.85, 0.86, 0.87])
    extra = [falling] * len(REMEDIES)
    assert overfit_verdict([turned, *extra])[0] == OVERFIT_CHOICES[1]
    assert overfit_verdict([falling, *extra])[0] == OVERFIT_CHOICES[0]
    low, mid = fake_run(FINISHED, [2.0], [0.6]), fake_run(FINISHED, [0.3], [0.93])
    high = fake_run(DIVERGED, [], [])
    right, text = rates_verdict([low, mid, high])
    assert right.startswith("0.1") and "learning rate 10: diverged in epoch 1" in text
