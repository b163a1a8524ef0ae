"""Last-letter concatenation (Wei et al., 2022): "Take the last letters of the words in 'Elon Musk Larry
Page' and concatenate them" -> "nkye". One step per word; words are first and last names, alternating.
"""

from __future__ import annotations

import random
from typing import Any

from rdistill.data.synth._base import Candidate
from rdistill.data.synth.vocab import FIRST_NAMES, LAST_NAMES

DOMAIN = "symbolic"
ANSWER_TYPE = "text"
MAX_STEPS = 12
OPTIONS: dict[str, Any] = {}

TEMPLATES: tuple[str, ...] = (
    'Take the last letters of the words in "{phrase}" and concatenate them.',
    'Concatenate the last letter of each word in "{phrase}".',
    'Write down the last letter of every word in "{phrase}", in order, joined into one string.',
    'What string do you get by joining the last letters of the words in "{phrase}"?',
)
_ANY_NAME = FIRST_NAMES + LAST_NAMES


def make_candidate(rng: random.Random, steps: int, options: dict[str, Any]) -> Candidate:
    if steps == 1:
        # A lone word may be either kind of name: it doubles the small space of one-word questions.
        words = [rng.choice(_ANY_NAME)]
    else:
        words = [rng.choice(FIRST_NAMES if i % 2 == 0 else LAST_NAMES) for i in range(steps)]
    template_id = rng.randrange(len(TEMPLATES))
    phrase = " ".join(words)
    lines, so_far = [], ""
    for word in words:
        letter = word[-1]
        lines.append(f'"{word}" ends in "{letter}"; "{so_far}" + "{letter}" = "{so_far + letter}"')
        so_far += letter
    return Candidate(question=TEMPLATES[template_id].format(phrase=phrase), answer=so_far, steps=lines,
                     metadata={"template": template_id, "words": words})
