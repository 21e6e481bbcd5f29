"""mgnm_pyg.experiments.stats: the paired t-test the benchmark tables report, against
closed forms, printed tables and (when installed) scipy."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from t_closed_forms import p_two_sided_df1, p_two_sided_df2

from mgnm_pyg.experiments.stats import (
    mean_std,
    paired_t_test,
    regularized_incomplete_beta,
    student_t_two_sided_p,
)


@pytest.mark.parametrize(("t", "df", "p"), [
    (2.776, 4, 0.05), (12.706, 1, 0.05), (4.303, 2, 0.05), (2.228, 10, 0.05),
    (4.604, 4, 0.01), (1.960, 10**6, 0.05), (0.0, 3, 1.0),
])
def test_t_p_value_matches_the_tables(t, df, p):
    assert student_t_two_sided_p(t, df) == pytest.approx(p, abs=2e-4)
    assert student_t_two_sided_p(-t, df) == student_t_two_sided_p(t, df)


@pytest.mark.parametrize("t", [0.1, 0.7, 1.0, 2.5, 9.0, 60.0])
def test_t_p_value_equals_closed_forms(t):
    assert student_t_two_sided_p(t, 1) == pytest.approx(p_two_sided_df1(t), rel=1e-10, abs=1e-14)
    assert student_t_two_sided_p(t, 2) == pytest.approx(p_two_sided_df2(t), rel=1e-10, abs=1e-14)


def test_incomplete_beta_closed_forms():
    rng = np.random.default_rng(0)
    for x, a, b in zip(rng.uniform(size=20), rng.uniform(0.2, 20, 20), rng.uniform(0.2, 20, 20),
                       strict=True):
        assert regularized_incomplete_beta(1, 1, x) == pytest.approx(x, rel=1e-12)
        assert regularized_incomplete_beta(a, 1, x) == pytest.approx(x**a, rel=1e-10)
        assert regularized_incomplete_beta(1, b, x) == pytest.approx(1 - (1 - x) ** b, rel=1e-10)
        # symmetry I_x(a, b) = 1 - I_{1-x}(b, a)
        assert regularized_incomplete_beta(a, b, x) == pytest.approx(
            1 - regularized_incomplete_beta(b, a, 1 - x), abs=1e-12)
    with pytest.raises(ValueError, match="x must lie"):
        regularized_incomplete_beta(1, 1, 1.5)


def test_paired_t_test_against_a_direct_computation():
    rng = np.random.default_rng(1)
    for n, closed_form in ((2, p_two_sided_df1), (3, p_two_sided_df2)):
        for _ in range(10):
            a, b = rng.normal(size=n), rng.normal(size=n)
            diffs = list(a - b)
            t = statistics.mean(diffs) / (statistics.stdev(diffs) / math.sqrt(n))
            out = paired_t_test(a, b)
            assert out.t == pytest.approx(t, rel=1e-12)
            assert out.df == n - 1
            assert out.p == pytest.approx(closed_form(t), rel=1e-9)
            assert out.mean_difference == pytest.approx(statistics.mean(diffs))


def test_paired_t_test_against_scipy_when_installed():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(2)
    for n in (2, 4, 5, 9, 30):
        a = rng.normal(size=n)
        b = a + rng.normal(0.2, 0.5, size=n)
        ours, ref = paired_t_test(a, b), stats.ttest_rel(a, b)
        assert ours.t == pytest.approx(ref.statistic, rel=1e-10)
        assert ours.p == pytest.approx(ref.pvalue, rel=1e-8, abs=1e-15)


def test_paired_t_test_degenerate_cases():
    assert math.isnan(paired_t_test([0.3], [0.1]).p)  # one pair: undefined
    same = paired_t_test([0.2, 0.4], [0.2, 0.4])
    assert (same.t, same.p) == (0.0, 1.0)
    shifted = paired_t_test([0.5, 0.75], [0.25, 0.5])  # every difference is +0.25
    assert (shifted.t, shifted.p) == (math.inf, 0.0)
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
