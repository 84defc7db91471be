"""``/song`` text → a :class:`GenerationRequest`, or the reason it can't be one. Pure.

The first line holds ``<tags> | <duration> | <seed>`` (the last two optional); the lyrics are
the following lines, or, when there are none, the text of the message the command replies to.
Validation itself is the core's (``service.validate``), passed in as ``validate``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from bot.domain import GenerationRequest, Invalid

# "/song" or "/song@AceJamBot" at the start of the text; Telegram allows 1-32 word chars.
_COMMAND = re.compile(r"^/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,64})?")
_SEED_PREFIX = re.compile(r"^seed\s*[:=#]?\s*", re.IGNORECASE)
MAX_PARTS = 3


class Validate(Protocol):
    def __call__(
        self,
        *,
        tags: str | None,
        lyrics: str | None = None,
        duration: int | str | None = None,
        seed: int | str | None = None,
    ) -> GenerationRequest | Invalid: ...


@dataclass(frozen=True)
class ShowHelp:
    """``/song`` with nothing at all: explain the format instead of failing."""


def command_arguments(text: str) -> str:
    """Everything after the leading ``/command`` (or ``/command@Bot``), newlines kept."""
    match = _COMMAND.match(text)
    return text[match.end() :] if match else text


def parse_song(
    text: str, *, replied_text: str | None, validate: Validate
) -> GenerationRequest | Invalid | ShowHelp:
    rest = command_arguments(text)
    first_line, _, following = rest.partition("\n")
    lyrics = following.strip()
    if not lyrics and replied_text:
        lyrics = replied_text.strip()
    parts = [part.strip() for part in first_line.split("|")]
    if not any(parts) and not lyrics:
        return ShowHelp()
    if len(parts) > MAX_PARTS:
        return Invalid(
            "Put at most three parts on the first line: `tags | duration | seed`, "
            "and the lyrics on the lines below."
        )
    tags, duration, seed = (parts + [""] * MAX_PARTS)[:MAX_PARTS]
    return validate(
        tags=tags,
        lyrics=lyrics,
        duration=duration or None,
        seed=_SEED_PREFIX.sub("", seed) or None,
    )


