"""/jam text → what the user asked for: pure tables."""

from __future__ import annotations

import pytest

from adapters.telegram import jam_parse
from adapters.telegram.jam_parse import JamAdd, JamDo, JamRemove, JamStart, JamUsage, read_jam
from bot.domain import Invalid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/jam", JamUsage()),
        ("/jam@AceJamBot help", JamUsage()),
        ("/jam dance", JamUsage(unknown="dance")),
        ("/jam start rainy day blues", JamStart("rainy day blues")),
        ("/jam start rainy day blues 2", JamStart("rainy day blues", 2)),
        ("/jam start rainy day blues 2 15 5", JamStart("rainy day blues", 2, 15, 5)),
        # a fourth number is the theme's own
        ("/jam start 80s 4 2 15 5", JamStart("80s 4", 2, 15, 5)),
        ("/jam start 1999", JamStart("1999")),  # a theme is never empty
        ('/jam start "songs of 1999" 2', JamStart("songs of 1999", 2)),
        ("/jam start “songs of 1999”", JamStart("songs of 1999")),
        ("/jam@AceJamBot start sea\nshanties", JamStart("sea shanties")),
        ("/jam START Sea", JamStart("Sea")),
        ("/jam start", Invalid(jam_parse.NO_THEME)),
        ('/jam start "x" two', Invalid(jam_parse.NOT_A_NUMBER)),
        ("/jam tag lo-fi, rainy  piano", JamAdd("tag", "lo-fi, rainy piano")),
        ("/jam tags dub\ntechno", JamAdd("tag", "dub techno")),
        ("/jam tag", Invalid(jam_parse.NO_TAGS)),
        ("/jam line la la <b>la</b>", JamAdd("line", "la la <b>la</b>")),
        ("/jam line [Chorus]\nwe sing\nall night", JamAdd("line", "[Chorus]\nwe sing\nall night")),
        ("/jam line\n[Verse]\nfirst", JamAdd("line", "[Verse]\nfirst")),
        ("/jam line   ", Invalid(jam_parse.NO_LINE)),
        ("/jam remove 3", JamRemove(3)),
        ("/jam remove #12", JamRemove(12)),
        ("/jam remove", Invalid(jam_parse.NO_NUMBER)),
        ("/jam remove three", Invalid(jam_parse.NO_NUMBER)),
        ("/jam remove 99999999999999999999", Invalid(jam_parse.NO_NUMBER)),
        ("/jam render", JamDo("render")),
        ("/jam close", JamDo("close")),
        ("/jam next", JamDo("next")),
        ("/jam stats", JamDo("stats")),
        ("/jam board", JamDo("board")),
        ("/jam board revoke", JamDo("revoke")),
        ("/jam board REVOKE", JamDo("revoke")),
    ],
)
def test_read_jam(text: str, expected: object) -> None:
    assert read_jam(text) == expected
