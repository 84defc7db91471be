"""How long to wait before trying a step again: one rule for every step of a job.

Each step keeps its own count of failures (a failed poll never spends a download's tries);
this only turns a count into a pause.
"""

from __future__ import annotations


def backoff(failures: int, *, base: float, cap: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: ``base`` after the first,
    doubling after each further one, never more than ``cap``."""
    if failures <= 0:
        return 0.0
    # The exponent is bounded so that a long outage can't overflow the float.
    return min(cap, base * 2 ** min(failures - 1, 32))
