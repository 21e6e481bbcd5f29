r"""Mean, standard deviation and the paired Student t-test, with NumPy and ``math`` only.

The two-sided p-value of a t statistic with :math:`\nu` degrees of freedom is

.. math::
    p = P(|T_\nu| \ge |t|) = I_{\nu / (\nu + t^2)}\left(\tfrac{\nu}{2}, \tfrac{1}{2}\right),

where :math:`I_x(a, b)` is the regularised incomplete beta function, computed here by
its continued fraction (modified Lentz evaluation). SciPy is not a dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_TINY = 1e-300
_EPS = 1e-15
_MAX_TERMS = 500


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of ``I_x(a, b)``; converges fast for ``x < (a+1)/(a+b+2)``."""

    def guard(value: float) -> float:
        # Lentz's method divides by these; keep them off exact zero.
        return value if abs(value) > _TINY else _TINY

    c, d = 1.0, 1.0 / guard(1.0 - (a + b) * x / (a + 1.0))
    h = d
    for m in range(1, _MAX_TERMS + 1):
        # even term d_{2m}, then odd term d_{2m+1} of the fraction's numerators
        for coef in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                     -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 / guard(1.0 + coef * d)
            c = guard(1.0 + coef / c)
            h *= c * d
        if abs(c * d - 1.0) < _EPS:
            return h
    return h  # pragma: no cover - 500 terms are plenty for the t-test's arguments


def regularized_incomplete_beta(a: float, b: float, x: float) -> float:
    r"""``I_x(a, b) = B(x; a, b) / B(a, b)`` for ``a, b > 0`` and ``0 <= x <= 1``."""
    if a <= 0 or b <= 0:
        raise ValueError(f"a and b must be positive, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must lie in [0, 1], got {x}")
    if x in (0.0, 1.0):
        return x
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    # The symmetry I_x(a, b) = 1 - I_{1-x}(b, a) keeps the fraction in its fast region.
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """``P(|T| >= |t|)`` for Student's t with ``df`` degrees of freedom (``nan`` stays ``nan``)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0
    return min(1.0, regularized_incomplete_beta(df / 2.0, 0.5, df / (df + t * t)))


@dataclass(frozen=True)
class TTest:
    """A paired t-test: statistic, degrees of freedom, two-sided p, mean of ``a - b``."""

    t: float
    df: int
    p: float
    mean_difference: float


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> TTest:
    r"""Two-sided paired t-test of ``mean(a - b) = 0`` (pairs: same index, e.g. same seed).

    :math:`t = \bar d / (s_d / \sqrt n)` with :math:`s_d` the sample standard deviation
    (``ddof=1``) of the differences, :math:`n - 1` degrees of freedom. With fewer than 2
    pairs the test is undefined (``nan``). Where every difference is equal, ``s_d = 0``:
    ``t = +-inf, p = 0`` if they are non-zero and ``t = 0, p = 1`` if all are zero (SciPy
    returns ``nan`` in both cases).
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired samples need equal 1-d shapes, got {x.shape} and {y.shape}")
    n = x.shape[0]
    diff = x - y
    mean = float(diff.mean()) if n else math.nan
    if n < 2:
        return TTest(math.nan, max(n - 1, 0), math.nan, mean)
    sd = float(diff.std(ddof=1))
    if sd == 0.0 or not math.isfinite(sd):
        if mean == 0.0:
            return TTest(0.0, n - 1, 1.0, mean)
        return TTest(math.copysign(math.inf, mean), n - 1, 0.0, mean)
    t = mean / (sd / math.sqrt(n))
    return TTest(t, n - 1, student_t_two_sided_p(t, n - 1), mean)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; ``nan`` for a single value)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else math.nan
