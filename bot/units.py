"""How amounts are written for people: one way everywhere (quota refusals, /quota, ETAs)."""

from __future__ import annotations


def humanize_seconds(seconds: float) -> str:
    """``45 s``, ``1 min 40 s``, ``10 min``, ``2 h 05 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
