"""What the jams need from the chat adapters: each one registers a :class:`JamListener`
(``service.jams.register_listener``) to hear what happened to the jams of its platform."""

from __future__ import annotations

from typing import Protocol

from bot.jams.model import JamNews


class JamListener(Protocol):
    platform: str  # news of this platform's jams only

    async def on_jam(self, news: JamNews) -> None:
        """What the clock did, or what another person or process did (a contribution, a
        render, voting open, a winner, ...). Best effort: what it raises is logged."""
        ...
