"""Small statistics every report needs: intervals for accuracies, always with n."""

from __future__ import annotations

import math
import random
from typing import Sequence


def wilson_interval(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for a proportion; well-behaved at 0/n and n/n, unlike the normal one."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_interval(values: Sequence[float], *, iterations: int = 2000, alpha: float = 0.05,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean, seeded so reports are reproducible."""
    n = len(values)
    if n == 0:
        return (0.0, 0.0)
    rng = random.Random(seed)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(iterations))
    lo = means[int(alpha / 2 * iterations)]
    hi = means[min(iterations - 1, int((1 - alpha / 2) * iterations))]
    return (lo, hi)


def mcnemar_exact_p(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar test: under "no difference", each discordant problem (one model right, the other
    wrong) is a fair coin, so the p-value is a binomial tail over the discordant pairs only."""
    discordant = only_first + only_second
    if discordant == 0:
        return 1.0
    tail = sum(math.comb(discordant, i) for i in range(min(only_first, only_second) + 1)) / 2 ** discordant
    return min(1.0, 2 * tail)


def paired_difference(first: Sequence[bool], second: Sequence[bool], *, seed: int = 0) -> dict:
    """Accuracy of `first` minus accuracy of `second` on the same problems, in the same order.

    Paired, because both models answered the same problems: the interval (percentile bootstrap over problems, as
    for accuracies) and the exact McNemar p-value use the per-problem differences, which are much tighter than
    two separate intervals when the models fail on the same hard problems."""
    if len(first) != len(second):
        raise ValueError(f"paired results need the same problems: {len(first)} vs {len(second)}")
    diffs = [float(bool(a)) - float(bool(b)) for a, b in zip(first, second)]
    only_first = sum(1 for d in diffs if d > 0)
    only_second = sum(1 for d in diffs if d < 0)
    n = len(diffs)
    return {"difference": sum(diffs) / n if n else None,
            "ci": list(bootstrap_interval(diffs, seed=seed)) if n else None, "n": n, "only_first": only_first, "only_second": only_second,
            "p_value": mcnemar_exact_p(only_first, only_second)}
