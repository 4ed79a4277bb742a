"""The one percentile every benchmark and the load generator report."""

from __future__ import annotations

import math
from typing import Iterable


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``q`` (0..1) of all values at or
    below it. ``q=0`` gives the smallest value, ``q=1`` the largest; it is always one of ``values``.

    Raises ValueError for no values or a ``q`` outside 0..1.
    """
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be between 0 and 1, not {q!r}")
    # round: 0.07 * 100 is 7.000000000000001 in binary floating point, whose ceiling is 8
    rank = math.ceil(round(q * len(ordered), 9))
    return ordered[max(0, rank - 1)]
