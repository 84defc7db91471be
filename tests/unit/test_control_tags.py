"""Controls on a backend that reads them from its tags (bot.controls): the words they become,
and the room they take within the backend's tag limit, refused with a sentence."""

from __future__ import annotations

import pytest

from bot.controls import read_request, tags_with_controls
from bot.domain import Controls, GenerationRequest, Invalid, Limits

IN_TAGS = Limits(5, 240, max_tags_chars=40, max_takes=4, controls_in_tags=True)
AS_PARAMETERS = Limits(10, 240, max_tags_chars=40, max_takes=4)


@pytest.mark.parametrize(
    ("tags", "controls", "sent"),
    [
        ("lo-fi, chill", Controls(bpm=120, key_scale="C major"), "lo-fi, chill, 120 bpm, C major"),
        ("lo-fi, chill, ", Controls(bpm=90), "lo-fi, chill, 90 bpm"),
        ("", Controls(key_scale="F# minor"), "F# minor"),
        ("jazz", Controls(), "jazz"),
    ],
)
def test_controls_become_words_after_the_tags(tags: str, controls: Controls, sent: str) -> None:
    assert tags_with_controls(tags, controls) == sent


def test_controls_that_push_the_tags_past_the_limit_are_refused_naming_the_room_left() -> None:
    tags = "x" * 30  # + ", 120 bpm, C major" = 48 > 40
    refused = read_request(limits=IN_TAGS, tags=tags, bpm="120", key="C major")
    assert isinstance(refused, Invalid)
    assert "120 bpm, C major" in refused.message and "takes 40" in refused.message
    assert "Shorten the tags to 22 characters" in refused.message
    fits = read_request(limits=IN_TAGS, tags="x" * 22, bpm="120", key="C major")
    assert isinstance(fits, GenerationRequest) and fits.controls.bpm == 120


def test_controls_sent_as_parameters_take_no_room_in_the_tags() -> None:
    request = read_request(limits=AS_PARAMETERS, tags="x" * 40, bpm="120", key="C major")
    assert isinstance(request, GenerationRequest) and request.tags == "x" * 40


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"bpm": "29"}, "BPM is a whole number from 30 to 300"),
        ({"bpm": "fast"}, "BPM is a whole number from 30 to 300"),
        ({"key": "H major"}, "write a note A–G"),
        ({"time_signature": "5/4"}, "beats per bar are 2, 3, 4, 6"),
        ({"language": "klingon"}, "isn't a vocal language code I know"),
    ],
)
def test_bad_controls_get_a_sentence_naming_what_is_allowed(
    fields: dict[str, str], reason: str
) -> None:
    refused = read_request(limits=IN_TAGS, tags="jazz", **fields)  # type: ignore[arg-type]
    assert isinstance(refused, Invalid) and reason in refused.message
