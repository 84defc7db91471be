"""``/song`` text → a :class:`GenerationRequest`, or the reason it can't be one. Pure.

The first line holds ``<tags> | <duration> | <seed>`` (the last two optional), then any of
``takes=2 | bpm=120 | key=F# minor | time=3 | lang=pt`` in any order after the tags; the
lyrics are the following lines, or, when there are none, the text of the message the command
replies to. ``/describe <one sentence> | ...`` reads the same, the sentence in the tags' place.
Validation itself is the core's (``service.validate``), passed in as ``validate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Protocol, Unpack, cast

from bot.controls import SongFields
from bot.domain import GenerationRequest, Invalid

# "/song" or "/song@AceJamBot" at the start of the text; Telegram allows 1-32 word chars.
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,64})?")
_SEED_PREFIX = re.compile(r"^seed\s*[:=#]?\s*", re.IGNORECASE)
_NAMED = re.compile(r"^([A-Za-z_]{1,16})\s*=\s*(.*)$", re.DOTALL)
POSITIONAL = ("duration", "seed")
# What a user writes before "=", and the keyword of service.validate it fills.
NAMED_FIELDS = {
    "duration": "duration",
    "seed": "seed",
    "takes": "takes",
    "bpm": "bpm",
    "key": "key",
    "time": "time_signature",
    "lang": "language",
}
MAX_PARTS = 1 + len(NAMED_FIELDS)
FirstPart = Literal["tags", "describe"]


class Validate(Protocol):
    def __call__(self, **fields: Unpack[SongFields]) -> GenerationRequest | Invalid: ...


@dataclass(frozen=True)
class ShowHelp:
    """``/song`` with nothing at all: explain the format instead of failing."""


def command_arguments(text: str) -> str:
    """Everything after the leading ``/command`` (or ``/command@Bot``), newlines kept."""
    match = _COMMAND.match(text)
    return text[match.end() :] if match else text


def parse_song(
    text: str, *, replied_text: str | None, validate: Validate, first: FirstPart = "tags"
) -> GenerationRequest | Invalid | ShowHelp:
    """``/song`` (``first="tags"``) or ``/describe`` (``first="describe"``: the first part
    is the song in one sentence) → a request."""
    fields = read_song(text, replied_text=replied_text, first=first)
    if isinstance(fields, Invalid | ShowHelp):
        return fields
    return validate(**fields)


def read_song(
    text: str, *, replied_text: str | None = None, first: FirstPart = "tags"
) -> SongFields | Invalid | ShowHelp:
    """The fields a ``/song`` text gives, as typed (a variation keeps its parent's others)."""
    rest = command_arguments(text)
    first_line, _, following = rest.partition("\n")
    lyrics = following.strip()
    if not lyrics and replied_text:
        lyrics = replied_text.strip()
    parts = [part.strip() for part in first_line.split("|")]
    if not any(parts) and not lyrics:
        return ShowHelp()
    fields = song_fields(parts[1:])
    if isinstance(fields, Invalid):
        return fields
    if "seed" in fields:
        fields["seed"] = _SEED_PREFIX.sub("", fields["seed"])
    given = {first: parts[0], "lyrics": lyrics, **{k: v or None for k, v in fields.items()}}
    return cast(SongFields, given)


def song_fields(parts: list[str]) -> dict[str, str] | Invalid:
    """``["90", "bpm=120", "key=F# minor"]`` → ``{"duration": "90", "bpm": "120", ...}``:
    unnamed parts are the duration, then the seed; named ones may come in any order."""
    if len(parts) + 1 > MAX_PARTS:
        return Invalid(
            "That first line has too many `|` parts: write `tags | duration | seed`, then "
            "any of `takes=2 | bpm=120 | key=F# minor | time=3 | lang=pt`, and the lyrics on "
            "the lines below."
        )
    fields: dict[str, str] = {}
    positional = iter(POSITIONAL)
    for part in parts:
        named = _NAMED.match(part)
        if named is None:
            name = next((n for n in positional if n not in fields), None)
            if name is None:
                return Invalid(
                    f"I don't know what “{_short(part)}” is for: after the duration and seed, "
                    "name each part, e.g. `bpm=120`."
                )
            fields[name] = part
            continue
        word, value = named[1].lower(), named[2].strip()
        name = NAMED_FIELDS.get(word)
        if name is None:
            known = ", ".join(f"`{n}=`" for n in NAMED_FIELDS)
            return Invalid(f"I don't know `{_short(word)}=`; the parts I take are {known}.")
        if name in fields:
            return Invalid(f"`{word}=` is there twice; keep one.")
        fields[name] = value
    return fields


def _short(text: str, limit: int = 24) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
