"""The share link: the sidebar's setup as query parameters and back (pure: no Streamlit, so any query string can be
tried in a test).

Every value a link brings is checked by TrainConfig's own parser (engine.config.parse_value) before a widget gets it;
what cannot be used is left out and named in a notice, so a visitor never meets a traceback.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine import PRESETS, TrainConfig
from engine.config import FIELDS, ConfigError, parse_value

CUSTOM = "custom"
DEFAULT_PRESET = "notebook-mse"
PRESET, LOCK, HIDE, LESSON, QUICK_LOOK = "preset", "lock", "hide", "lesson", "quick_look"
SETTINGS = (PRESET, *FIELDS)  # what a classroom link may lock or hide
KEPT = ("ws", "run", "embed", "embed_options")  # other features' parameters (workspace, shared run, embedding)
FLAGS = {"1": True, "true": True, "on": True, "yes": True, "0": False, "false": False, "off": False, "no": False}
SHOWN = 40  # characters of a link's key or value a notice quotes
LONGEST = 300  # characters of a value: no setting needs more (ten layers like c1024k15vbn are 120)


def widget_value(name: str, value: Any) -> Any:
    """The sidebar widget's value for a TrainConfig field's value: text for hidden sizes and betas, 0 for 'all'."""
    if name == "hidden_sizes":
        return ",".join(str(h) for h in value)
    if name == "betas":
        return ",".join(f"{b:g}" for b in value)
    if name == "train_limit":
        return value or 0
    return value


def widget_values(cfg: TrainConfig) -> dict[str, Any]:
    """Every sidebar widget's value (keyed by field name) that shows cfg."""
    return {name: widget_value(name, getattr(cfg, name)) for name in FIELDS}


def quoted(text: str) -> str:
    text = str(text)
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")


def names_list(text: str) -> list[str]:
    return [n.strip() for n in str(text).split(",") if n.strip()]


@dataclass(frozen=True)
class Link:
    """What a query string asks for, every part of it checked."""

    preset: str  # the Preset box: a preset's name or CUSTOM
    values: dict[str, Any]  # every field's widget value
    config: TrainConfig | None  # the setup they describe (None: the notices say which field is wrong)
    locked: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    lesson: str | None = None
    quick_look: bool = False
    notices: tuple[str, ...] = field(default_factory=tuple)


def decode(params: Mapping[str, str], lessons: Collection[str] = ()) -> Link:
    """A query string's parameters -> the Link they describe; whatever cannot be used is named in `notices`."""
    notices: list[str] = []
    preset = str(params.get(PRESET, DEFAULT_PRESET))
    if preset not in PRESETS and preset != CUSTOM:
        notices.append(f"The link's preset {quoted(preset)} is not one of MLP Lab's presets; {DEFAULT_PRESET} "
                       "was loaded instead.")
        preset = DEFAULT_PRESET
    base = PRESETS[preset if preset in PRESETS else DEFAULT_PRESET].config
    given: dict[str, Any] = {}
    for name in FIELDS:
        if name not in params:
            continue
        if len(str(params[name])) > LONGEST:
            notices.append(f"The link's {name}={quoted(params[name])} was ignored: it is longer than any value of "
                           f"{name} ({len(str(params[name])):,} characters).")
            continue
        try:
            given[name] = parse_value(name, params[name])
        except ConfigError as err:
            notices.append(f"The link's {name}={quoted(params[name])} was ignored: {err}")
        except ValueError:  # e.g. a number with thousands of digits
            notices.append(f"The link's {name}={quoted(params[name])} was ignored: it could not be read.")
    config = None
    while config is None:
        try:
            config = base.replace(**given)
        except ConfigError as err:
            if err.field not in given:
                notices.append(str(err))
                break
            notices.append(f"The link's {err.field}={quoted(params[err.field])} was ignored: {err}")
            del given[err.field]
    values = widget_values(base) | {name: widget_value(name, v) for name, v in given.items()}

    def settings(key: str, what: str) -> tuple[str, ...]:
        names = names_list(params.get(key, ""))
        unknown = [n for n in names if n not in SETTINGS]
        if unknown:
            notices.append(f"The link asks to {what} settings MLP Lab does not have: "
                           f"{', '.join(map(quoted, unknown))}; they were ignored.")
        return tuple(dict.fromkeys(n for n in names if n in SETTINGS))

    locked, hidden = settings(LOCK, "lock"), settings(HIDE, "hide")
    lesson = params.get(LESSON)
    if lesson is not None and lesson not in lessons:
        notices.append(f"The link's lesson {quoted(lesson)} does not exist; the lessons are listed on the Lessons "
                       "page.")
        lesson = None
    quick = str(params.get(QUICK_LOOK, "0")).strip().lower()
    if quick not in FLAGS:
        notices.append(f"The link's quick_look={quoted(quick)} was ignored: it is 1 (on) or 0 (off).")
    unknown = [k for k in params if k not in (*SETTINGS, LOCK, HIDE, LESSON, QUICK_LOOK, *KEPT)]
    if unknown:
        notices.append(f"The link's {', '.join(map(quoted, unknown))} "
                       f"{'is not a setting' if len(unknown) == 1 else 'are not settings'} of MLP Lab and "
                       f"{'was' if len(unknown) == 1 else 'were'} ignored.")
    return Link(preset, values, config, locked, hidden, lesson, FLAGS.get(quick, False), tuple(notices))


def encode(values: Mapping[str, Any], preset: str, locked: Collection[str] = (), hidden: Collection[str] = (),
           lesson: str | None = None, quick_look: bool = False) -> dict[str, str]:
    """The query parameters of a setup (the sidebar's widget values) and of a classroom link's options."""
    query = {name: str(values[name]) for name in FIELDS}
    query[PRESET] = preset
    for key, names in ((LOCK, locked), (HIDE, hidden)):
        if names:
            query[key] = ",".join(names)
    if lesson:
        query[LESSON] = lesson
    if quick_look:
        query[QUICK_LOOK] = "1"
    return query
