"""/extend, /remix and /repaint text → what the user asked for: pure tables."""

from __future__ import annotations

import pytest

from adapters.telegram import keyboards
from adapters.telegram.edit_parse import EditText, read_edit
from adapters.telegram.parse import ShowHelp
from bot.domain import Invalid, Task

E, R, P = Task.EXTEND, Task.REMIX, Task.REPAINT


@pytest.mark.parametrize(
    ("text", "task", "replying", "expected"),
    [
        ("/extend", E, False, EditText()),
        ("/extend 12", E, False, EditText(of_job=12)),  # as /show 12
        ("/extend 45", E, True, EditText(seconds="45")),  # a reply names the track
        ("/extend 0:45", E, False, EditText(seconds="0:45")),  # a time is never a number
        ("/extend | 45s", E, False, EditText(seconds="45")),
        (
            "/extend@AceJamBot 12 45 at=start jazz, brass\n[Outro]\nla la",
            E,
            False,
            EditText(
                of_job=12, seconds="45", at="start", tags="jazz, brass", lyrics="[Outro]\nla la"
            ),
        ),
        (
            "/extend 12 | 45 | at=start | jazz",
            E,
            False,
            EditText(of_job=12, seconds="45", at="start", tags="jazz"),
        ),
        ("/extend #12 45", E, True, EditText(of_job=12, seconds="45")),  # a number wins
        ("/extend 12 90s house", E, False, EditText(of_job=12, tags="90s house")),
        ("/extend 12 seconds=45", E, False, EditText(of_job=12, seconds="45")),
        (
            "/remix 12 jazz, brass 0.7",
            R,
            False,
            EditText(of_job=12, tags="jazz, brass", strength="0.7"),
        ),
        ("/remix jazz | 0.7", R, True, EditText(tags="jazz", strength="0.7")),
        (
            "/remix 12 808 drums | strength=0.3",
            R,
            False,
            EditText(of_job=12, tags="808 drums", strength="0.3"),
        ),
        (
            "/remix #12 80s synth\nnew words",
            R,
            False,
            EditText(of_job=12, tags="80s synth", lyrics="new words"),
        ),
        (
            "/repaint 12 1:05 1:20 gospel choir",
            P,
            False,
            EditText(of_job=12, start="1:05", end="1:20", tags="gospel choir"),
        ),
        ("/repaint 0:30 0:45", P, True, EditText(start="0:30", end="0:45")),
        ("/repaint 0:30 0:45", P, False, EditText(start="0:30", end="0:45")),  # the latest
        ("/repaint #12 30 45", P, True, EditText(of_job=12, start="30", end="45")),
        (
            "/repaint 12 | start=1:05 | end=1:20",
            P,
            False,
            EditText(of_job=12, start="1:05", end="1:20"),
        ),
    ],
)
def test_edit_text_gives_what_was_typed(
    text: str, task: Task, replying: bool, expected: EditText
) -> None:
    assert read_edit(text, task, source_named=replying) == expected


@pytest.mark.parametrize(
    ("text", "task", "says"),
    [
        ("/extend 1 2 3", E, "more numbers than I can place"),
        ("/extend 12 45 seconds=40", E, "`seconds=` is there twice"),
        ("/extend 12 at=start | at=end", E, "`at=` is there twice"),
        ("/extend foo=3", E, "I don't know `foo=`; /extend takes `at=`, `seconds=`"),
        ("/extend 12 jazz | brass", E, "I don't know what “brass” is for"),
        ("/extend #1 #2", E, "Give one song's number"),
        ("/extend 1:00 45", E, "A song's number is a whole number"),
        ("/remix 12", R, "Give the new style"),
        ("/remix 12 | strength=0.3", R, "Give the new style"),
        ("/repaint 12", P, "its start and end"),
        ("/repaint 1 2 3 4", P, "more numbers than I can place"),
        (f"/extend {2**63}", E, "I can't find that song"),
    ],
)
def test_edit_text_that_cannot_be_read_says_why(text: str, task: Task, says: str) -> None:
    read = read_edit(text, task, source_named=False)
    assert isinstance(read, Invalid) and says in read.message, read


@pytest.mark.parametrize("text", ["/remix", "/repaint", "/repaint@AceJamBot  "])
def test_a_bare_remix_or_repaint_shows_how(text: str) -> None:
    task = R if text.startswith("/remix") else P
    assert read_edit(text, task, source_named=False) == ShowHelp()


def test_the_extend_button_names_only_a_job() -> None:
    markup = keyboards.track_keyboard(7, extend=True)
    data = [b.callback_data for row in markup.inline_keyboard for b in row]
    assert data == ["rr:7", "ss:7", "ex:7"]
    assert keyboards.parse_extend("ex:7") == 7
    assert keyboards.parse_extend(f"ex:{2**63}") is None and keyboards.parse_extend("rr:7") is None
    assert keyboards.job_of(markup) == 7  # /cancel and /admin still read the track's job
    assert [b.callback_data for b in keyboards.track_keyboard(7).inline_keyboard[0]] == [
        "rr:7",
        "ss:7",
    ]
