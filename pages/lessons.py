"""Lessons: each tutorial's experiment as a guided card: predict, run it, and read what happened, in its own numbers."""

import streamlit as st

from engine import TrainConfig
from ui import state
from ui.charts import compare_chart, compare_legend
from ui.lessons import LESSON_LIST, LESSONS, Lesson, batch_loss_chart, finished, new_runs
from ui.live import follow
from ui.resources import get_dataset, start_run

LIVE_SECONDS = 2.0


def records() -> dict:
    """Lesson id -> {"guess": the prediction, "runs": its run ids, "result": (right choice, explanation) or None}."""
    return st.session_state.setdefault(state.LESSON_RUNS, {})


def start(lesson: Lesson) -> None:
    """The Run button: keep the prediction, then run the experiment (or measure it at once)."""
    ss = st.session_state
    current = ss.get(state.CONFIG) or TrainConfig()  # the learner's backend, device and seed
    scale = ss.get(state.LESSON_SCALE, 1.0)
    record = {"guess": ss[state.LESSON_GUESS + lesson.id], "runs": [], "result": None}
    if lesson.measure is not None:
        record["result"] = lesson.measure(scale, current, get_dataset("mnist"))
    else:
        runs = new_runs(lesson, scale, current)
        for run in runs:
            state.runs().append(run)
            start_run(run)
        record["runs"] = [r.id for r in runs]
        ss[state.ACTIVE_RUN] = runs[-1].id
        ss[state.FOLLOWED_RUNS] = record["runs"]  # the Train page follows them too
    records()[lesson.id] = record


def verdict_line(guess: str, right: str) -> None:
    if guess == right:
        st.success(f"Your prediction, **{guess}**, was right.", icon=":material/check_circle:")
    else:
        st.warning(f"You predicted **{guess}**; the experiment says **{right}**.", icon=":material/lightbulb:")


def outcome(lesson: Lesson, record: dict) -> None:
    """What the experiment did: its runs' progress, then their charts, the explanation and the verdict."""
    if record["result"] is not None:
        right, text = record["result"]
        st.write(text)
        verdict_line(record["guess"], right)
        return
    runs = [r for r in map(state.run_by_id, record["runs"]) if r is not None]
    if not finished(runs):
        st.info("Running: " + "; ".join(f"{r.name} {r.status}, {r.epochs_text()} epochs" for r in runs),
                icon=":material/hourglass:")
        return
    plot, legend = st.columns([3, 1])
    plot.altair_chart(compare_chart(runs, lesson.metric), width="stretch")
    legend.altair_chart(compare_legend(runs), width="stretch")
    if lesson.batch_chart:
        st.altair_chart(batch_loss_chart(runs), width="stretch")
    right, text = lesson.verdict(runs)
    st.write(text)
    verdict_line(record["guess"], right)


def card(lesson: Lesson):
    """The lesson's question and button; returns the placeholder its outcome is drawn in."""
    ss = st.session_state
    record = records().get(lesson.id)
    runs = [r for r in map(state.run_by_id, record["runs"]) if r is not None] if record else []
    busy = any(r.in_progress for r in runs)
    with st.container(border=True):
        st.subheader(lesson.title)
        st.caption(f"{lesson.source}. The tutorial reported: {lesson.reference}.")
        st.markdown(f"**Predict first.** {lesson.question}")
        st.radio("Your prediction", lesson.choices, index=None, key=state.LESSON_GUESS + lesson.id, disabled=busy)
        guess = ss[state.LESSON_GUESS + lesson.id]
        st.button("Run the experiment" if lesson.measure is None else "Measure it", key=state.LESSON_RUN + lesson.id,
                  on_click=start, args=(lesson,), disabled=guess is None or busy, type="primary",
                  icon=":material/science:", help=None if guess else "Choose your prediction first.")
        return st.empty()


def page() -> None:
    st.title("Lessons")
    st.write("Each classic tutorial's experiment, one at a time: predict what will happen, run it, and read what "
             "the runs did. The runs also appear on Results and Compare.")
    ss = st.session_state
    if ss.get(state.LESSON) not in LESSONS:
        ss[state.LESSON] = LESSON_LIST[0].id
    st.selectbox("Lesson", list(LESSONS), key=state.LESSON, format_func=lambda i: LESSONS[i].title,
                 help="A teacher can link straight to one: /lessons?lesson=mse-vs-ce")
    lesson = LESSONS[ss[state.LESSON]]
    box = card(lesson)

    def draw() -> None:
        record = records().get(lesson.id)
        if record is not None:
            with box.container():
                outcome(lesson, record)

    follow(draw, LIVE_SECONDS)


state.run_app_first()
page()
