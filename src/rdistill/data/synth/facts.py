"""Trivial arithmetic that needs one fact the question does not state: "Mia finds 3 spiders in the shed. How many legs
do the spiders have altogether?" -> 24 (a spider has 8 legs).

What a distilled student cannot have learned from arithmetic traces is knowledge: the traces state numbers that are in
their questions, not facts about the world. A student that keeps the teacher's accuracy on arithmetic but falls on
these has learned the procedure, not the facts. Steps: 1 = the fact alone ("How many legs does a spider have?"),
2 = the fact times a count, 3 = that plus a stated number.

Only facts with one exact answer that everyday usage agrees on (no leap years, no "about").
"""

from __future__ import annotations

import random
from typing import Any

from rdistill.data.synth._base import Candidate
from rdistill.data.synth.vocab import PEOPLE

DOMAIN = "knowledge"
ANSWER_TYPE = "numeric"
MAX_STEPS = 3
OPTIONS: dict[str, Any] = {}

# (the fact as a step states it, its value, the one-step question, the counted form with {name} and {k}, what a
# stated extra adds: "{m} more ..." in the unit of the answer)
FACTS: tuple[tuple[str, int, str, str, str], ...] = (
    ("a week has 7 days", 7, "How many days are there in a week?",
     "{name} goes on a trip for {k} weeks. How many days does the trip last?", "{m} more days"),
    ("a year has 12 months", 12, "How many months are there in a year?",
     "{name} pays rent every month for {k} years. How many rent payments is that?", "{m} more payments"),
    ("a day has 24 hours", 24, "How many hours are there in a day?",
     "A machine runs without stopping for {k} whole days. For how many hours does it run?", "{m} more hours"),
    ("an hour has 60 minutes", 60, "How many minutes are there in an hour?",
     "{name} practises the piano for {k} hours. How many minutes is that?", "{m} more minutes"),
    ("a spider has 8 legs", 8, "How many legs does a spider have?",
     "{name} finds {k} spiders in the shed. How many legs do the spiders have altogether?", "{m} more legs"),
    ("an insect has 6 legs", 6, "How many legs does an insect have?",
     "{name} watches {k} ants on a leaf. How many legs do the ants have altogether?", "{m} more legs"),
    ("a triangle has 3 sides", 3, "How many sides does a triangle have?",
     "{name} draws {k} triangles. How many sides do the triangles have altogether?", "{m} more sides"),
    ("a hexagon has 6 sides", 6, "How many sides does a hexagon have?",
     "{name} cuts out {k} hexagons. How many sides do the hexagons have altogether?", "{m} more sides"),
    ("an octagon has 8 sides", 8, "How many sides does an octagon have?",
     "{name} paints {k} stop-sign octagons. How many sides do they have altogether?", "{m} more sides"),
    ("a dozen is 12", 12, "How many eggs are there in a dozen eggs?",
     "{name} buys {k} dozen eggs. How many eggs is that?", "{m} more eggs"),
    ("a standard deck has 52 cards", 52, "How many cards are in a standard deck without jokers?",
     "{name} shuffles {k} standard decks together (no jokers). How many cards is that?", "{m} more cards"),
    ("a chessboard has 64 squares", 64, "How many squares does a chessboard have?",
     "A club sets up {k} chessboards. How many squares do the boards have altogether?", "{m} more squares"),
    ("a cube has 6 faces", 6, "How many faces does a cube have?",
     "{name} paints every face of {k} cubes. How many faces does {name} paint?", "{m} more faces"),
    ("a century is 100 years", 100, "How many years are there in a century?",
     "A castle has stood for {k} centuries. For how many years has it stood?", "{m} more years"),
    ("a decade is 10 years", 10, "How many years are there in a decade?",
     "{name} has lived in the town for {k} decades. For how many years is that?", "{m} more years"),
    ("a meter has 100 centimeters", 100, "How many centimeters are there in a meter?",
     "{name} buys {k} meters of ribbon. How many centimeters of ribbon is that?", "{m} more centimeters"),
    ("a kilogram has 1000 grams", 1000, "How many grams are there in a kilogram?",
     "{name} carries {k} kilograms of flour. How many grams of flour is that?", "{m} more grams"),
    ("a dollar has 100 cents", 100, "How many cents are there in a dollar?",
     "{name} has {k} dollars in coins. How many cents is that?", "{m} more cents"),
    ("the English alphabet has 26 letters", 26, "How many letters does the English alphabet have?",
     "{name} writes out the English alphabet {k} times. How many letters does {name} write?", "{m} more letters"),
    ("a tricycle has 3 wheels", 3, "How many wheels does a tricycle have?",
     "A shop has {k} tricycles. How many wheels do the tricycles have altogether?", "{m} more wheels"),
)


def make_candidate(rng: random.Random, steps: int, options: dict[str, Any]) -> Candidate:
    fact, value, recall, counted, extra = rng.choice(FACTS)
    if steps == 1:
        return Candidate(question=recall, answer=str(value), steps=[f"{fact}: {value}"], metadata={"fact": fact})
    # The count never equals the fact's value, so the question never states the fact's number.
    name, k = rng.choice(PEOPLE).name, rng.choice([x for x in range(2, 10) if x != value])
    question = counted.format(name=name, k=k)
    lines = [f"{fact}: {value}", f"{k} * {value} = {k * value}"]
    answer = k * value
    if steps == 3:
        m = rng.choice([x for x in range(2, 31) if x != value])
        question = question.replace("?", f", counting {extra.format(m=m)}?") if question.endswith("?") else question
        lines.append(f"{k * value} + {m} = {answer + m}")
        answer += m
    return Candidate(question=question, answer=str(answer), steps=lines, metadata={"fact": fact, "count": k})
