"""What the Discord adapter decides about edits without I/O (#15): which attachments may be
fetched at all (adapters/discord/edits.py), and /help's line about the edits offered
(adapters/discord/lineage.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord
import pytest

from adapters.discord.edits import upload_problem
from adapters.discord.lineage import edit_help
from bot.domain import Task
from bot.sources import MAX_UPLOAD_BYTES, not_audio, too_big


def attachment(filename: str, content_type: str | None, size: int = 1000) -> discord.Attachment:
    data: dict[str, Any] = {
        "id": "1",
        "filename": filename,
        "size": size,
        "url": "https://cdn.example/a",
        "proxy_url": "https://cdn.example/a",
    }
    if content_type is not None:
        data["content_type"] = content_type
    return discord.Attachment(data=data, state=SimpleNamespace(http=None))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filename", "content_type", "size", "problem"),
    [
        ("song.mp3", "audio/mpeg", 1000, None),
        ("voice-message.ogg", "audio/ogg", 1000, None),
        ("take.flac", "audio/flac; codecs=flac", 1000, None),
        ("phone.mp4", "video/mp4", 1000, None),  # a recording often comes as a video
        ("song.mp3", None, 1000, None),  # no type said: its name tells
        ("notes.txt", "text/plain; charset=utf-8", 1000, not_audio()),
        ("cover.png", "image/png", 1000, not_audio()),
        ("blob", None, 1000, not_audio()),
        ("song.wav", "audio/wav", MAX_UPLOAD_BYTES, None),
        ("song.wav", "audio/wav", MAX_UPLOAD_BYTES + 1, too_big(MAX_UPLOAD_BYTES + 1)),
    ],
)
def test_an_attachment_is_judged_on_what_discord_says_of_it(
    filename: str, content_type: str | None, size: int, problem: str | None
) -> None:
    assert upload_problem(attachment(filename, content_type, size)) == problem


def test_help_lists_only_the_edits_offered() -> None:
    assert edit_help(frozenset()) == []
    (line,) = edit_help(frozenset({Task.REPAINT}))
    assert "/repaint" in line and "/extend" not in line and "`audio:`" not in line
    (line,) = edit_help(frozenset({Task.EXTEND, Task.REMIX}))
    assert "/extend" in line and "/remix" in line and "`audio:`" in line
