"""Closed forms of Student's t two-sided p-value, the references the t-test checks use."""

from __future__ import annotations

import math


def p_two_sided_df1(t: float) -> float:
    """1 degree of freedom: Student's t is the Cauchy distribution."""
    return 1.0 - 2.0 / math.pi * math.atan(abs(t))


def p_two_sided_df2(t: float) -> float:
    """2 degrees of freedom: the t CDF has a closed form."""
    return 1.0 - abs(t) / math.sqrt(2.0 + t * t)
