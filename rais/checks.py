"""Value checks shared by the config loader and the probes.

A check takes a TOML value and returns it converted, or raises ValueError
whose message is the "what is wrong" part of a problem line. The config
loader (rais.config) checks its keys with these, and probe authors check
their options with them, so a probe option is worded like any key:
"PATH: services.web.port: must be 1..65535, got 70000".
"""

from __future__ import annotations

import datetime
import math
import re
import shlex
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], Any]

_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
    datetime.datetime: "a date-time",
    datetime.date: "a date",
    datetime.time: "a time",
}


def type_name(value: object) -> str:
    """What a TOML value is, in words: "an integer", "a table"."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def expect_type(value: object, expected: str, *kinds: type) -> None:
    """Raise "expected EXPECTED, got ..." unless ``value`` is exactly of one of ``kinds``."""
    # Exact type match: bool subclasses int, but `port = true` is a mistake.
    if type(value) not in kinds:
        raise ValueError(f"expected {expected}, got {type_name(value)}")


def _ranged(kinds: tuple[type, ...], expected: str, low: float, high: float | None = None,
            *, low_open: bool = False) -> Check:
    if high is None:
        bounds = f"greater than {low:g}" if low_open else f"at least {low:g}"
    else:
        bounds = f"over {low:g} and at most {high:g}" if low_open else f"{low:g}..{high:g}"

    def check(value: Any) -> Any:
        expect_type(value, expected, *kinds)
        # TOML allows inf and nan; neither is a usable interval or limit.
        if not math.isfinite(value):
            raise ValueError(f"must be a finite number, got {value}")
        above = value > low if low_open else value >= low
        if not (above and (high is None or value <= high)):
            raise ValueError(f"must be {bounds}, got {value}")
        return kinds[-1](value)  # float for numbers, so `timeout = 5` reads as 5.0

    return check


def integer(low: int, high: int) -> Check:
    """An integer in low..high."""
    return _ranged((int,), "an integer", low, high)


def number(low: float, high: float | None = None, *, low_open: bool = False) -> Check:
    """An integer or float from ``low`` (or over it, with ``low_open``) up to ``high``, as a float."""
    return _ranged((int, float), "a number", low, high, low_open=low_open)


def boolean(value: Any) -> bool:
    """true or false."""
    expect_type(value, "a boolean (true or false)", bool)
    return value


def text(parse: Callable[[str], Any] = str, expected: str = "a string") -> Check:
    """A non-empty string, passed through ``parse`` (which raises ValueError to reject it)."""

    def check(value: Any) -> Any:
        expect_type(value, expected, str)
        if not value:
            raise ValueError("must not be empty")
        return parse(value)

    return check


def choice(options: tuple[str, ...]) -> Check:
    """One of the strings ``options``."""

    def parse(given: str) -> str:
        if given not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {given!r}")
        return given

    return text(parse)


def pattern(value: Any) -> re.Pattern[str]:
    """A regular expression (Python syntax), compiled."""

    def parse(source: str) -> re.Pattern[str]:
        try:
            return re.compile(source)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from None

    return text(parse)(value)


def argv(value: Any) -> tuple[str, ...]:
    """A program and its arguments: an array of strings, or a string split into words
    like a shell would, without running one."""
    if type(value) is str:
        try:
            words = shlex.split(value)
        except ValueError as e:
            raise ValueError(f"cannot split into words: {e}") from None
    elif type(value) is list:
        for position, item in enumerate(value, 1):
            if type(item) is not str:
                raise ValueError(f"item {position} is {type_name(item)}, expected a string")
        words = value
    else:
        raise ValueError(f"expected a string or an array of strings, got {type_name(value)}")
    if not words or not words[0]:
        raise ValueError("must name a program to run")
    return tuple(words)
