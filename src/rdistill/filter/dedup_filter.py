"""Near-duplicate filter: of traces of the same problem that say nearly the same thing, keep the first.

Texts are normalised (Unicode NFKC, case-folded, punctuation dropped, whitespace collapsed), cut into
overlapping runs of `SHINGLE_TOKENS` tokens, and compared by the Jaccard similarity of those sets. Only
traces that passed every other filter are compared, so the copy kept is the first good one.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict

from rdistill.filter.facts import TraceFacts
from rdistill.filter.verdicts import PASS, FilterVerdict, drop

SHINGLE_TOKENS = 3
# Digits, letters and operators carry the content of a reasoning step; other punctuation does not.
_TOKEN = re.compile(r"[^\W_]+|[+\-*/=×÷^<>]")


def normalise(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def shingles(text: str, k: int = SHINGLE_TOKENS) -> frozenset[int]:
    tokens = normalise(text)
    if len(tokens) < k:
        return frozenset({hash(tuple(tokens))})
    return frozenset(hash(tuple(tokens[i:i + k])) for i in range(len(tokens) - k + 1))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class Deduplicator:
    """Remembers the kept traces of each problem; `check` then `keep` for each trace, in order."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self._kept: dict[str, list[tuple[int, frozenset[int]]]] = defaultdict(list)

    def check(self, f: TraceFacts, index: int) -> FilterVerdict:
        mine = shingles(f.trace.reasoning)
        for other_index, other in self._kept[f.trace.problem_id]:
            # Cheap bound first: sets of very different sizes cannot reach the threshold.
            if min(len(mine), len(other)) < self.threshold * max(len(mine), len(other)):
                continue
            similarity = jaccard(mine, other)
            if similarity >= self.threshold:
                return drop("duplicate", duplicate_of=other_index, similarity=round(similarity, 4))
        self._kept[f.trace.problem_id].append((index, mine))
        return PASS
