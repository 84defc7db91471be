"""The ACE-Step model inventory as each server version says it (docs/upstreams.md §2):
what a server does not say stays unknown (None), never guessed."""

from __future__ import annotations

from typing import Any

import pytest

from bot.backends.probe import AceStepModels, read_models

DOCUMENTED = {
    "data": {
        "models": [
            {"name": "acestep-v15-turbo", "is_default": True},
            {"name": "acestep-v15-turbo-shift3", "is_default": False},
        ],
        "default_model": "acestep-v15-turbo",
    },
    "code": 200,
}
NEWER = {
    "data": {
        "models": [{"name": "acestep-v15-base", "is_default": True, "is_loaded": True}],
        "default_model": None,
        "lm_models": [{"name": "acestep-5Hz-lm-0.6B", "is_loaded": False}],
        "loaded_lm_model": None,
        "llm_initialized": False,
    }
}
OPENAI_STYLE = {"object": "list", "data": [{"id": "acestep-v15-turbo", "object": "model"}]}
HEALTH_WITH_LM = {"data": {"status": "ok", "llm_initialized": True, "loaded_lm_model": "lm-1.7B"}}


@pytest.mark.parametrize(
    ("payload", "health", "expected"),
    [
        (
            DOCUMENTED,
            {"data": {"status": "ok"}},
            AceStepModels(
                ("acestep-v15-turbo", "acestep-v15-turbo-shift3"), "acestep-v15-turbo", None, None
            ),
        ),
        (NEWER, None, AceStepModels(("acestep-v15-base",), "acestep-v15-base", False, None)),
        (
            OPENAI_STYLE,
            HEALTH_WITH_LM,
            AceStepModels(("acestep-v15-turbo",), None, True, "lm-1.7B"),
        ),
        ("<html>", None, AceStepModels((), None, None, None)),
    ],
)
def test_the_inventory_is_read_from_every_shape(
    payload: Any, health: Any, expected: AceStepModels
) -> None:
    assert read_models(payload, health) == expected
