"""rdistill.stats: the intervals and the paired test every comparison in a report rests on."""

from __future__ import annotations

import math

import pytest

from rdistill.stats import bootstrap_interval, mcnemar_exact_p, paired_difference, proportion, wilson_interval


def test_wilson_interval_matches_the_textbook_values_and_stays_inside_0_1():
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)  # Newcombe (1998), table I, method 3
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = [1.0] * 19 + [0.0] * 81
    lo, hi = bootstrap_interval(values)
    assert lo < 0.19 < hi and bootstrap_interval(values) == (lo, hi)
    assert bootstrap_interval([]) == (0.0, 0.0)


@pytest.mark.parametrize("only_first,only_second", [(10, 0), (7, 2), (5, 5), (0, 3), (14, 30), (1, 0)])
def test_mcnemar_exact_p_is_the_two_sided_binomial_test_on_discordant_pairs(only_first, only_second):
    stats = pytest.importorskip("scipy.stats")
    expected = stats.binomtest(only_first, only_first + only_second, 0.5).pvalue
    assert math.isclose(mcnemar_exact_p(only_first, only_second), expected, rel_tol=1e-9)


def test_mcnemar_without_discordant_pairs_finds_no_difference():
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(10, 0) == pytest.approx(2 / 1024)


def test_paired_difference_counts_discordant_problems_and_is_antisymmetric():
    first = [True] * 30 + [True] * 14 + [False] * 5 + [False] * 51
    second = [True] * 30 + [False] * 14 + [True] * 5 + [False] * 51
    d = paired_difference(first, second)
    assert d["n"] == 100 and d["difference"] == pytest.approx(0.09)
    assert (d["only_first"], d["only_second"]) == (14, 5)
    assert d["ci"][0] < 0.09 < d["ci"][1]
    assert d["p_value"] == pytest.approx(mcnemar_exact_p(14, 5))
    back = paired_difference(second, first)
    assert back["difference"] == pytest.approx(-0.09) and back["p_value"] == d["p_value"]


def test_pairing_is_tighter_than_two_separate_intervals_when_models_fail_together():
    # the student is right on every problem the baseline gets, plus 8 more: a clear paired gain
    baseline = [True] * 20 + [False] * 80
    student = [True] * 28 + [False] * 72
    d = paired_difference(student, baseline)
    assert d["ci"][0] > 0 and d["p_value"] < 0.01
    assert wilson_interval(20, 100)[1] > wilson_interval(28, 100)[0]  # the two separate intervals overlap


def test_paired_difference_needs_the_same_problems():
    with pytest.raises(ValueError, match="same problems"):
        paired_difference([True], [True, False])
    assert paired_difference([], [])["difference"] is None


@pytest.mark.parametrize("successes", [0, 50])
def test_a_proportion_at_0_or_n_keeps_a_wilson_interval_of_nonzero_width(successes):
    lo, hi = wilson_interval(successes, 50)
    assert hi - lo > 0.05  # a percentile bootstrap would give [0, 0] or [1, 1] here
    share = proportion([1.0] * successes + [0.0] * (50 - successes))
    assert share == {"value": successes / 50, "ci": [lo, hi], "n": 50}
    assert proportion([]) == {"value": None, "ci": None, "n": 0}
    assert bootstrap_interval([float(successes == 50)] * 50) in ((0.0, 0.0), (1.0, 1.0))  # why not the bootstrap


def test_a_proportion_of_per_problem_shares_is_wilson_on_their_sum():
    shares = [1 / 3, 2 / 3, 0.0, 1.0]  # e.g. each problem's share of right samples
    assert proportion(shares)["ci"] == pytest.approx(list(wilson_interval(2.0, 4)))
