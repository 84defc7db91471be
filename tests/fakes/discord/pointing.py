"""Pointing discord.py at the fake."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import discord.gateway
import discord.http
import yarl

from tests.fakes.discord.fake import FakeDiscord


@contextlib.contextmanager
def point_discord_at(fake: FakeDiscord) -> Iterator[None]:
    """Point every discord.py client in this process at ``fake`` (and restore afterwards).

    discord.py reads two *class* attributes, so this is process-wide - close the client inside
    the block:
    * ``discord.http.Route.BASE`` (http.py: ``url = self.BASE + self.path``). Bot REST calls,
      interaction callbacks and webhook follow-ups all build ``Route`` objects from it
      (webhook/async_.py imports ``Route`` from ``..http``).
    * ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``, a ``yarl.URL`` (``from_client``
      calls ``gateway.with_query(...)``, so a ``str`` breaks). A plain ``Client`` connects there
      without asking ``/gateway/bot``, and every client falls back to it after op 9.
    """
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


# --------------------------------------------------------------------------------------------
# Helpers: HTTP
