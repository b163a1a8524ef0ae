"""Small statistics every report needs: intervals for accuracies, always with n.

One rule: a proportion (every accuracy, per problem) gets the Wilson interval, which stays honest at 0/n and n/n
where a percentile bootstrap collapses to zero width; a mean of other values (steps per answer, coherence
scores) and a paired difference get the percentile bootstrap.
"""

from __future__ import annotations

import math
import random
from typing import Sequence


def wilson_interval(successes: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval for a proportion; well-behaved at 0/n and n/n, unlike the normal one.

    `successes` may be fractional (a sum of per-problem shares in [0, 1]): their mean's variance is at most
    p(1-p)/n, so the interval is then conservative."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # The interval always holds p; min/max only undo rounding (1e-17 above 0 at 0/n), so error bars are never < 0.
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


def proportion(values: Sequence[float]) -> dict:
    """{"value", "ci": [lo, hi], "n"}: the share of `values` (one per problem, each 0/1 or a share in [0, 1])
    with its 95% Wilson interval; value and ci are None when there is nothing to count."""
    n = len(values)
    if n == 0:
        return {"value": None, "ci": None, "n": 0}
    total = float(sum(values))
    return {"value": total / n, "ci": list(wilson_interval(total, n)), "n": n}


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

    Paired, because both models answered the same problems: the interval (percentile bootstrap; the per-problem
    differences take -1, 0 or 1, so they are no proportion) and the exact McNemar p-value use the per-problem
    differences, which are much tighter than two separate intervals when the models fail on the same hard problems."""
    if len(first) != len(second):
        raise ValueError(f"paired results need the same problems: {len(first)} vs {len(second)}")
    diffs = [float(bool(a)) - float(bool(b)) for a, b in zip(first, second)]
    only_first = sum(1 for d in diffs if d > 0)
    only_second = sum(1 for d in diffs if d < 0)
    n = len(diffs)
    return {"difference": sum(diffs) / n if n else None,
            "ci": list(bootstrap_interval(diffs, seed=seed)) if n else None, "n": n, "only_first": only_first, "only_second": only_second,
            "p_value": mcnemar_exact_p(only_first, only_second)}
