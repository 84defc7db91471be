"""A backend call's route label is a name from a fixed list, never a part of the URL that
carries an id (bot/metrics.py)."""

from __future__ import annotations

import pytest

from bot.metrics import ROUTES, route_of


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("POST", "/api/v3/wavespeed-ai/ace-step-1.5", "submit"),
        ("GET", "/api/v3/predictions/3f2a9c0e4b/result", "result"),
        ("GET", "/api/v3/webhook/secret", "webhook_secret"),
        ("GET", "/api/v3/balance", "balance"),
        ("POST", "/release_task", "release_task"),
        ("POST", "/query_result", "query_result"),
        ("GET", "/v1/models", "models"),
        ("GET", "/prefix/health", "health"),  # a server behind a path prefix
        ("GET", "/v1/audio/6b1d2e.mp3", "other"),
        ("GET", "/api/v3/predictions/3f2a9c0e4b", "other"),
        ("GET", "/", "other"),
    ],
)
def test_routes_are_named_from_a_fixed_list(method: str, path: str, route: str) -> None:
    assert route_of(method, path) == route
    assert route in {*ROUTES, "submit", "result", "webhook_secret", "other"}
