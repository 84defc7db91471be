"""``/jam …`` text → what the user asked for, or a sentence saying what is wrong. Pure.

The grammar (issue #16; Discord's ``/jam`` group has the same subcommands):

* ``/jam start <theme> [takes] [minutes] [vote_minutes]``: up to three numbers at the end
  are the options, in that order; a theme that ends in a number itself is written in quotes
  (``/jam start "songs of 1999" 2``). The ranges are the core's to check.
* ``/jam tag <tags>``, ``/jam line <text>`` (the text may run over several lines, with
  ``[Verse]`` / ``[Chorus]`` markers); a plain reply to the jam message is a line too (the
  handler reads that, not this module).
* ``/jam remove <n>`` (``#n`` too), ``/jam render``, ``/jam close``, ``/jam next``,
  ``/jam stats``, ``/jam board``, ``/jam board revoke``.
* ``/jam`` alone, ``/jam help`` or an unknown word: the usage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from adapters.telegram.parse import command_arguments
from bot.domain import Invalid

Action = Literal["render", "close", "next", "stats", "board", "revoke"]
Kind = Literal["tag", "line"]

MAX_OPTIONS = 3  # takes, minutes, vote_minutes
_NUMBER = re.compile(r"^\d{1,9}$")  # more digits would only be refused later, less kindly
_WORD = re.compile(r"(\S+)\s*(.*)", re.DOTALL)
_QUOTED = re.compile(r'^\s*["“«](.+?)["”»]\s*(.*)$', re.DOTALL)
_SIMPLE: dict[str, Action] = {
    "render": "render",
    "close": "close",
    "next": "next",
    "stats": "stats",
}

NO_THEME = "A jam needs a theme: /jam start <theme> [takes] [minutes] [vote minutes]."
NO_TAGS = "Say which style words to add: /jam tag <tags>."
NO_LINE = "Say which line to add: /jam line <text> (or reply to the jam message with it)."
NO_NUMBER = "Say which one to remove by its number: /jam remove <n>."
NOT_A_NUMBER = "/jam start takes numbers after the theme: [takes] [minutes] [vote minutes]."


@dataclass(frozen=True)
class JamStart:
    theme: str
    takes: int | None = None
    minutes: int | None = None
    vote_minutes: int | None = None


@dataclass(frozen=True)
class JamAdd:
    kind: Kind
    text: str


@dataclass(frozen=True)
class JamRemove:
    number: int


@dataclass(frozen=True)
class JamDo:
    """A subcommand without arguments (``revoke``: ``/jam board revoke``)."""

    action: Action


@dataclass(frozen=True)
class JamUsage:
    """``/jam`` alone, ``/jam help`` or a word the grammar doesn't know: the usage."""

    unknown: str | None = None  # the word typed, when it was one


JamCommand = JamStart | JamAdd | JamRemove | JamDo | JamUsage


def read_jam(text: str) -> JamCommand | Invalid:
    """The whole message text, ``/jam`` (or ``/jam@Bot``) first."""
    rest = command_arguments(text).strip()
    if not rest:
        return JamUsage()
    found = _WORD.match(rest)
    assert found is not None  # rest is not blank
    first, tail = found.group(1), found.group(2)
    word = first.lower()
    tail = tail.strip()
    match word:
        case "start" | "new":
            return _start(tail)
        case "tag" | "tags":
            return JamAdd("tag", _one_line(tail)) if tail else Invalid(NO_TAGS)
        case "line" | "lyric" | "lyrics":
            return JamAdd("line", tail) if tail else Invalid(NO_LINE)
        case "remove" | "rm" | "delete":
            number = tail.lstrip("#").strip()
            if not _NUMBER.match(number):
                return Invalid(NO_NUMBER)
            return JamRemove(int(number))
        case "board":
            return JamDo("revoke") if tail.lower() == "revoke" else JamDo("board")
        case "help":
            return JamUsage()
    if word in _SIMPLE:
        return JamDo(_SIMPLE[word])
    return JamUsage(unknown=first)


def _start(tail: str) -> JamStart | Invalid:
    quoted = _QUOTED.match(tail)
    if quoted:
        theme, options = quoted.group(1).strip(), quoted.group(2).split()
    else:
        words = tail.split()
        options = []
        # Numbers at the end are the options, as long as a theme is left before them.
        while words and len(options) < MAX_OPTIONS and len(words) > 1 and _NUMBER.match(words[-1]):
            options.insert(0, words.pop())
        theme = " ".join(words)
    theme = _one_line(theme)
    if not theme:
        return Invalid(NO_THEME)
    if len(options) > MAX_OPTIONS or not all(_NUMBER.match(o) for o in options):
        return Invalid(NOT_A_NUMBER)
    numbers = [int(o) for o in options] + [None] * (MAX_OPTIONS - len(options))
    return JamStart(theme, numbers[0], numbers[1], numbers[2])


def _one_line(text: str) -> str:
    """Tags and a theme are one line: line breaks become spaces."""
    return " ".join(text.split())
