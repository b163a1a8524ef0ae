"""Coin-flip state tracking (Wei et al., 2022): "A coin is heads up. Ann flips the coin. Bob does not flip
the coin. Is the coin still heads up?" -> "no". One step per person.

The question sometimes asks about the other side ("Is the coin tails up now?"), so that "yes" cannot be
learned as "an even number of flips" without tracking which side is up.
"""

from __future__ import annotations

import random
from typing import Any

from rdistill.data.synth._base import Candidate
from rdistill.data.synth.vocab import PEOPLE

DOMAIN = "logic"
ANSWER_TYPE = "boolean"
MAX_STEPS = 12
OPTIONS: dict[str, Any] = {}

_STARTS = ("A coin is {side} up.", "A coin lies {side} up on the table.")
_FLIPS = ("{who} flips the coin.", "{who} turns the coin over.", "{who} flips the coin over.")
# Every refusal says "not": the only word that tells a flip from a non-flip, as in the original task.
_KEEPS = ("{who} does not flip the coin.", "{who} does not touch the coin.", "{who} decides not to flip the coin.")
_SAME_SIDE_QUESTION = "Is the coin still {side} up?"
_OTHER_SIDE_QUESTION = "Is the coin {side} up now?"
_OTHER = {"heads": "tails", "tails": "heads"}


def make_candidate(rng: random.Random, steps: int, options: dict[str, Any]) -> Candidate:
    start_side = rng.choice(("heads", "tails"))
    asked_side = start_side if rng.random() < 0.75 else _OTHER[start_side]
    people = [p.name for p in rng.sample(PEOPLE, steps)]
    flips = [rng.random() < 0.5 for _ in people]

    sentences = [rng.choice(_STARTS).format(side=start_side)]
    lines, side = [], start_side
    for who, flipped in zip(people, flips):
        sentences.append(rng.choice(_FLIPS if flipped else _KEEPS).format(who=who))
        new_side = _OTHER[side] if flipped else side
        lines.append(f"{who} {'flips' if flipped else 'does not flip'}: {side} -> {new_side}")
        side = new_side
    question = _SAME_SIDE_QUESTION if asked_side == start_side else _OTHER_SIDE_QUESTION
    sentences.append(question.format(side=asked_side))
    return Candidate(question=" ".join(sentences), answer="yes" if side == asked_side else "no", steps=lines,
                     metadata={"start": start_side, "asked": asked_side, "people": people, "flips": flips})
