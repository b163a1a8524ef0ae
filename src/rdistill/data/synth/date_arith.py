"""Date arithmetic: "Today is 03/28/2021. What is the date 10 days from today in MM/DD/YYYY?", with one
step per shift of days, weeks, months or years, forward or back.

Month and year shifts are only drawn when the day of the month is at most 28, so they never land on a day
that does not exist (January 31 + 1 month): the answer never depends on a clamping convention.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from rdistill.data.synth._base import Candidate

DOMAIN = "logic"
ANSWER_TYPE = "text"
MAX_STEPS = 8
OPTIONS: dict[str, Any] = {}

_FIRST_DAY = dt.date(1980, 1, 1)
_LAST_DAY = dt.date(2040, 12, 31)
_AMOUNTS = {"day": (1, 60), "week": (1, 10), "month": (1, 18), "year": (1, 10)}
_ANSWER_FORMAT = "Answer in MM/DD/YYYY."


def make_candidate(rng: random.Random, steps: int, options: dict[str, Any]) -> Candidate:
    current = _FIRST_DAY + dt.timedelta(days=rng.randint(0, (_LAST_DAY - _FIRST_DAY).days))
    start = current
    shifts: list[tuple[int, str]] = []  # (signed amount, unit)
    lines = []
    for _ in range(steps):
        units = ["day", "week"] + (["month", "year"] if current.day <= 28 else [])
        unit = rng.choice(units)
        amount = rng.randint(*_AMOUNTS[unit]) * rng.choice((1, -1))
        following = shift(current, amount, unit)
        sign = "+" if amount > 0 else "-"
        lines.append(f"{fmt(current)} {sign} {_amount_text(abs(amount), unit)} = {fmt(following)}")
        shifts.append((amount, unit))
        current = following
    template = rng.choice(("from_today", "go", "reminder"))
    question = _QUESTION_BUILDERS[template](rng, start, shifts)
    return Candidate(question=question, answer=fmt(current), steps=lines,
                     metadata={"template": template, "start": fmt(start),
                               "shifts": [{"amount": a, "unit": u} for a, u in shifts]})


def fmt(day: dt.date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


def shift(day: dt.date, amount: int, unit: str) -> dt.date:
    if unit == "day":
        return day + dt.timedelta(days=amount)
    if unit == "week":
        return day + dt.timedelta(weeks=amount)
    months = amount * (12 if unit == "year" else 1)
    index = day.year * 12 + (day.month - 1) + months
    return day.replace(year=index // 12, month=index % 12 + 1)  # day <= 28 exists in every month


def _amount_text(amount: int, unit: str) -> str:
    return f"{amount} {unit}{'' if amount == 1 else 's'}"


def _from_today(rng: random.Random, start: dt.date, shifts: list[tuple[int, str]]) -> str:
    parts = []
    for i, (amount, unit) in enumerate(shifts):
        text = _amount_text(abs(amount), unit)
        if i == 0:
            parts.append(f"{text} {'from today' if amount > 0 else 'ago'}")
        else:
            parts.append(f"then {text} {'after' if amount > 0 else 'before'} that")
    opening = rng.choice(("Today is {d}.", "Suppose today is {d}."))
    return f"{opening.format(d=fmt(start))} What is the date {', '.join(parts)}? {_ANSWER_FORMAT}"


def _go(rng: random.Random, start: dt.date, shifts: list[tuple[int, str]]) -> str:
    moves = [f"{'forward' if a > 0 else 'back'} {_amount_text(abs(a), u)}" for a, u in shifts]
    route = moves[0] if len(moves) == 1 else ", then ".join(moves)
    return (f"Start on {fmt(start)} and go {route}. What date do you reach? {_ANSWER_FORMAT}")


def _reminder(rng: random.Random, start: dt.date, shifts: list[tuple[int, str]]) -> str:
    sentences = [f"A reminder is set for {fmt(start)}."]
    for i, (amount, unit) in enumerate(shifts):
        lead = "It is moved" if i == 0 else "Then it is moved"
        sentences.append(f"{lead} {'forward' if amount > 0 else 'back'} by {_amount_text(abs(amount), unit)}.")
    sentences.append(f"On what date is the reminder now? {_ANSWER_FORMAT}")
    return " ".join(sentences)


_QUESTION_BUILDERS = {"from_today": _from_today, "go": _go, "reminder": _reminder}
