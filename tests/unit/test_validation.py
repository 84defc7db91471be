"""What users are told when a request is wrong, and what a valid one becomes."""

from __future__ import annotations

import pytest

from bot.domain import GenerationRequest, Invalid, Limits, validate_request

WAVESPEED = Limits(min_duration=5, max_duration=240)
ACESTEP = Limits(min_duration=10, max_duration=240)


@pytest.mark.parametrize(
    ("kwargs", "limits", "expected"),
    [
        ({"tags": "  lo-fi,   chill  "}, WAVESPEED, GenerationRequest("lo-fi, chill", "", 60, -1)),
        (
            {"tags": "rock", "duration": "90", "seed": "42"},
            WAVESPEED,
            GenerationRequest("rock", "", 90, 42),
        ),
        ({"tags": "rock", "duration": "90s"}, WAVESPEED, GenerationRequest("rock", "", 90, -1)),
        ({"tags": "rock", "duration": 5}, WAVESPEED, GenerationRequest("rock", "", 5, -1)),
        (
            {"tags": "rock", "seed": 2147483647},
            WAVESPEED,
            GenerationRequest("rock", "", 60, 2147483647),
        ),
        (
            {"tags": "pop", "lyrics": "[Verse]\r\nla la\x07\r\n\r\n[Chorus]\r\noh  "},
            WAVESPEED,
            GenerationRequest("pop", "[Verse]\nla la\n\n[Chorus]\noh", 60, -1),
        ),
    ],
)
def test_valid_requests(kwargs: dict, limits: Limits, expected: GenerationRequest) -> None:
    assert validate_request(limits=limits, **kwargs) == expected


@pytest.mark.parametrize(
    ("kwargs", "limits", "message_part"),
    [
        ({"tags": ""}, WAVESPEED, "Tell me the style"),
        ({"tags": "   "}, WAVESPEED, "Tell me the style"),
        ({"tags": None}, WAVESPEED, "Tell me the style"),
        ({"tags": "x" * 513}, WAVESPEED, "keep them to 512"),
        ({"tags": "rock", "lyrics": "a" * 4097}, WAVESPEED, "at most 4096"),
        ({"tags": "rock", "duration": 4}, WAVESPEED, "between 5 and 240"),
        ({"tags": "rock", "duration": 9}, ACESTEP, "between 10 and 240"),
        ({"tags": "rock", "duration": 241}, WAVESPEED, "between 5 and 240"),
        ({"tags": "rock", "duration": "ninety"}, WAVESPEED, "whole number of seconds"),
        ({"tags": "rock", "duration": "1.5"}, WAVESPEED, "whole number of seconds"),
        ({"tags": "rock", "duration": "٩٠"}, WAVESPEED, "whole number of seconds"),
        ({"tags": "rock", "seed": -2}, WAVESPEED, "seed should be"),
        ({"tags": "rock", "seed": 2147483648}, WAVESPEED, "seed should be"),
        ({"tags": "rock", "seed": "abc"}, WAVESPEED, "seed should be"),
    ],
)
def test_invalid_requests_get_a_sentence(kwargs: dict, limits: Limits, message_part: str) -> None:
    result = validate_request(limits=limits, **kwargs)
    assert isinstance(result, Invalid)
    assert message_part in result.message
