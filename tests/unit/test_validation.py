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
        ({"tags": "rock", "duration": " 1:30 "}, WAVESPEED, GenerationRequest("rock", "", 90, -1)),
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
        (
            {"tags": "rock", "duration": 4},
            WAVESPEED,
            "4 s is too short: songs here are 5 to 240 s long. Try `5`.",
        ),
        ({"tags": "rock", "duration": 9}, ACESTEP, "9 s is too short: songs here are 10 to 240 s"),
        (
            {"tags": "rock", "duration": 241},
            WAVESPEED,
            "241 s is too long: songs here are 5 to 240 s long. Try `240`.",
        ),
        ({"tags": "rock", "duration": "ninety"}, WAVESPEED, "“ninety” isn't a length"),
        ({"tags": "rock", "duration": "1.5"}, WAVESPEED, "“1.5” isn't a length"),
        ({"tags": "rock", "duration": "٩٠"}, WAVESPEED, "minutes like `1:30`"),
        ({"tags": "rock", "seed": -2}, WAVESPEED, "“-2” isn't a seed"),
        ({"tags": "rock", "seed": 2147483648}, WAVESPEED, "from 0 to 2147483647"),
        ({"tags": "rock", "seed": "abc"}, WAVESPEED, "“abc” isn't a seed"),
        ({"tags": "rock", "seed": "1:30"}, WAVESPEED, "“1:30” isn't a seed"),
        ({"tags": "rock", "duration": "1:75"}, WAVESPEED, "“1:75” isn't a length"),
    ],
)
def test_invalid_requests_get_a_sentence(kwargs: dict, limits: Limits, message_part: str) -> None:
    result = validate_request(limits=limits, **kwargs)
    assert isinstance(result, Invalid)
    assert message_part in result.message
