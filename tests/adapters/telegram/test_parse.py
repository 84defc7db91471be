"""/song text → request, and callback data → job: pure tables."""

from __future__ import annotations

import pytest

from adapters.telegram import keyboards
from adapters.telegram.parse import ShowHelp, parse_song, read_song
from bot.controls import read_request
from bot.domain import Controls, GenerationRequest, Invalid, Limits


def validate(**fields: object) -> GenerationRequest | Invalid:
    return read_request(limits=Limits(5, 240, max_takes=4), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "replied", "expected"),
    [
        ("/song lo-fi", None, GenerationRequest("lo-fi", "", 60, -1)),
        ("/song@AceJamBot lo-fi | 30", None, GenerationRequest("lo-fi", "", 30, -1)),
        ("/song lo-fi | 30s | 7", None, GenerationRequest("lo-fi", "", 30, 7)),
        ("/song lo-fi | 1:30 | seed: 7", None, GenerationRequest("lo-fi", "", 90, 7)),
        ("/song lo-fi || 7", None, GenerationRequest("lo-fi", "", 60, 7)),
        ("/song a, b\n[Verse]\nla", None, GenerationRequest("a, b", "[Verse]\nla", 60, -1)),
        ("/song a | 20", "[Chorus]\nhey", GenerationRequest("a", "[Chorus]\nhey", 20, -1)),
        ("/song a\nown words", "replied words", GenerationRequest("a", "own words", 60, -1)),
        (
            "/song jazz | lang=pt | 45 | takes=2 | key=f#m | bpm=96 | time=3/4",
            None,
            GenerationRequest(
                "jazz",
                "",
                45,
                -1,
                takes=2,
                controls=Controls(
                    bpm=96, key_scale="F# minor", time_signature=3, vocal_language="pt"
                ),
            ),
        ),
        ("/song jazz | seed=7 | 30", None, GenerationRequest("jazz", "", 30, 7)),
    ],
)
def test_song_text_becomes_a_request(
    text: str, replied: str | None, expected: GenerationRequest
) -> None:
    assert parse_song(text, replied_text=replied, validate=validate) == expected


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        # A reply to a track gives only what it names: the rest is the parent's.
        ("/song jazz", {"tags": "jazz", "lyrics": ""}),
        ("/song | 90", {"tags": "", "lyrics": "", "duration": "90"}),
        ("/song\n[Verse]\nnew words", {"tags": "", "lyrics": "[Verse]\nnew words"}),
        ("/song | seed=7 | bpm=100", {"tags": "", "lyrics": "", "seed": "7", "bpm": "100"}),
    ],
)
def test_a_song_text_gives_only_the_fields_it_names(text: str, fields: dict[str, str]) -> None:
    assert read_song(text) == fields


def test_describe_puts_the_sentence_where_the_tags_go() -> None:
    assert parse_song(
        "/describe@AceJamBot a sad song about rain in Lisbon | 90 | lang=pt",
        replied_text=None,
        validate=validate,
        first="describe",
    ) == GenerationRequest(
        "",
        "",
        90,
        -1,
        controls=Controls(vocal_language="pt"),
        describe="a sad song about rain in Lisbon",
    )
    assert isinstance(
        parse_song("/describe", replied_text=None, validate=validate, first="describe"),
        ShowHelp,
    )


@pytest.mark.parametrize("text", ["/song", "/song@AceJamBot", "/song   ", "/song | |"])
def test_nothing_at_all_asks_for_the_format(text: str) -> None:
    assert isinstance(parse_song(text, replied_text=None, validate=validate), ShowHelp)


@pytest.mark.parametrize(
    ("text", "replied", "reason"),
    [
        ("/song a | b | c | d", None, "I don't know what “d” is for"),
        ("/song a | 30 | 1 | 2 | 3 | 4 | 5 | 6 | 7", None, "too many `|` parts"),
        ("/song a | tempo=120", None, "I don't know `tempo=`; the parts I take are"),
        ("/song a | bpm=120 | bpm=90", None, "`bpm=` is there twice"),
        ("/song a | bpm=20", None, "BPM is a whole number from 30 to 300"),
        ("/song a | key=H major", None, "“H major” isn't a key I know"),
        ("/song a | time=5", None, "beats per bar are 2, 3, 4, 6"),
        ("/song a | lang=xx", None, "“xx” isn't a vocal language code I know"),
        ("/song a | takes=9", None, "ask for 1 to 4"),
        ("/song | 30", "some lyrics", "Tell me the style first"),
        ("/song a | forever", None, "“forever” isn't a length I can use"),
        ("/song a | 30 | -2", None, "“-2” isn't a seed"),
    ],
)
def test_bad_song_text_says_why(text: str, replied: str | None, reason: str) -> None:
    result = parse_song(text, replied_text=replied, validate=validate)
    assert isinstance(result, Invalid) and reason in result.message


@pytest.mark.parametrize(
    ("data", "press"),
    [
        ("rr:12", keyboards.Press(keyboards.REROLL, 12)),
        ("ss:1", keyboards.Press(keyboards.SAME_SEED, 1)),
        ("cx:999999999999999999", keyboards.Press(keyboards.CANCEL, 999999999999999999)),
        ("cx:9223372036854775807", keyboards.Press(keyboards.CANCEL, 2**63 - 1)),
        ("cx:9223372036854775808", None),  # beyond a 64-bit id
        ("rr:", None),
        ("rr:-1", None),
        ("xx:1", None),
        (None, None),
    ],
)
def test_callback_data_names_one_job(data: str | None, press: keyboards.Press | None) -> None:
    assert keyboards.parse(data) == press


def test_buttons_fit_telegram_and_name_their_job() -> None:
    for markup in (keyboards.cancel_keyboard(2**62), keyboards.track_keyboard(2**62)):
        for row in markup.inline_keyboard:
            for button in row:
                assert isinstance(button.callback_data, str)
                assert len(button.callback_data.encode()) <= 64
        assert keyboards.job_of(markup) == 2**62
    assert keyboards.job_of(None) is None
