"""The compose form's controls line (adapters/discord/drafts.py): read, written, and a
delivered song's request as ✏️ Edit fills the form in; /song's suggestions (choices.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from adapters.discord.choices import key_choices, language_choices, language_code
from adapters.discord.drafts import Draft, draft_of, read_line, write_line
from bot.domain import (
    Controls,
    Destination,
    GenerationRequest,
    Invalid,
    Job,
    JobId,
    JobState,
    Take,
    TakeState,
    UserId,
)


@pytest.mark.parametrize(
    ("line", "fields"),
    [
        ("", {}),
        ("  ", {}),
        ("bpm=120", {"bpm": "120"}),
        (
            "takes=2 bpm=120 key=F# minor time=3 lang=pt",
            {
                "takes": "2",
                "bpm": "120",
                "key": "F# minor",
                "time_signature": "3",
                "language": "pt",
            },
        ),
        (
            "key = C major | time=6/8, lang=en;",
            {"key": "C major", "time_signature": "6/8", "language": "en"},
        ),
        ("BPM=90 Key=a minor", {"bpm": "90", "key": "a minor"}),
        ("bpm=", {"bpm": ""}),
    ],
)
def test_a_controls_line_is_read_into_fields(line: str, fields: dict[str, str]) -> None:
    assert read_line(line) == fields


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("120 bpm", "I can't read “120 bpm” in the controls line"),
        ("tempo=120", "I don't know `tempo=`"),
        ("bpm=120 bpm=90", "`bpm=` is there twice"),
    ],
)
def test_a_line_it_cannot_read_gets_a_sentence(line: str, says: str) -> None:
    found = read_line(line)
    assert isinstance(found, Invalid) and says in found.message


def test_a_line_is_written_back_as_it_is_read() -> None:
    line = write_line(takes="2", bpm="120", key="F# minor", time_signature="", language="pt")
    assert line == "takes=2 bpm=120 key=F# minor lang=pt"
    assert read_line(line) == {"takes": "2", "bpm": "120", "key": "F# minor", "language": "pt"}


def test_the_line_wins_over_the_options_and_blank_fields_stay_blank() -> None:
    fields = Draft(tags="folk", bpm="100", controls="bpm=120 key=C major").fields()
    assert not isinstance(fields, Invalid)
    assert (fields["tags"], fields["bpm"], fields["key"], fields["seed"]) == (
        "folk",
        "120",
        "C major",
        "",
    )


def test_an_edit_starts_from_the_song_as_it_was_made() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = Job(
        id=JobId(7),
        user_id=UserId(1),
        request=GenerationRequest(
            tags="bossa",
            lyrics="[Verse]\nsun",
            duration=45,
            seed=-1,
            takes=2,
            controls=Controls(bpm=120, key_scale="C major", time_signature=3),
        ),
        destination=Destination("discord", "1", "2"),
        state=JobState.DELIVERED,
        backend="acestep",
        created_at=now,
        updated_at=now,
        seed_used=99,
    )
    draft = draft_of(job)
    assert (draft.tags, draft.lyrics, draft.duration, draft.seed) == (
        "bossa",
        "[Verse]\nsun",
        "45",
        "99",
    )
    assert draft.controls_line() == "bpm=120 key=C major time=3"  # one take unless asked
    assert draft.parent_id == 7
    # Of several takes, the one its owner kept.
    takes = (Take(1, TakeState.READY, seed=99), Take(2, TakeState.READY, seed=5))
    assert draft_of(replace(job, takes=takes, kept_take=2)).seed == "5"
    assert draft_of(replace(job, takes=takes)).seed == "99"


@pytest.mark.parametrize(
    ("typed", "sent"),
    [("Portuguese", "pt"), (" cantonese ", "yue"), ("pt", "pt"), ("Klingon", "Klingon"), ("", "")],
)
def test_a_language_typed_by_name_is_sent_as_its_code(typed: str, sent: str) -> None:
    assert language_code(typed) == sent


def test_suggestions_start_like_what_is_typed_and_stay_within_discords_25() -> None:
    assert [c.value for c in key_choices("bbm")][:1] == ["Bb minor"]  # typed in full: first
    assert len(key_choices("")) == 24 and len(language_choices("")) == 25
    assert [c.name for c in language_choices("ja")] == ["Japanese (ja)"]
