"""`acejam doctor`: the configuration checked as the bot would use it, one finding per check.

Everything here only reads: no song is submitted, no message sent, nothing migrated.
The command (bot/cli/doctor.py) prints the findings and exits 0 only when all are ok."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import httpx

from bot.backends.acestep_routing import server_key
from bot.backends.probe import Finding, probe_acestep, probe_wavespeed
from bot.config import Settings
from bot.doctor.local import check_database, check_disk
from bot.doctor.platforms import check_discord, check_telegram
from bot.doctor.public_urls import check_board, check_webhook

__all__ = ["Finding", "diagnose", "line"]

NO_PLATFORM = Finding(
    "Chat platforms",
    False,
    "none configured: the bot would only work through `acejam generate`",
    "set TELEGRAM_TOKEN (from @BotFather) and/or DISCORD_TOKEN (Discord developer portal)",
)


def line(finding: Finding) -> str:
    """``✓ name: detail`` or ``✗ name: detail → what to do``: one line per check."""
    text = f"{'✓' if finding.ok else '✗'} {finding.name}: {finding.detail}"
    return f"{text} → {finding.fix}" if finding.fix else text


async def diagnose(settings: Settings, *, platforms: bool = True) -> list[Finding]:
    """Every check for these settings, in a fixed order (they run at once)."""
    timeout = httpx.Timeout(min(settings.http_timeout_seconds, 10.0))
    async with httpx.AsyncClient(timeout=timeout) as http:
        parts: list[Coroutine[Any, Any, Finding | list[Finding]]] = [
            check_database(settings),
            _backend(http, settings),
        ]
        parts.append(_public_urls(http, settings))
        if platforms:
            parts.append(_platforms(http, settings))
        results = await asyncio.gather(*parts)
    found: list[Finding] = []
    for result in results:
        found.extend(result if isinstance(result, list) else [result])
    found.append(check_disk(settings))
    return found


async def _public_urls(http: httpx.AsyncClient, settings: Settings) -> list[Finding]:
    """The webhook's and the board's, one after the other: both may bind WEB_LISTEN."""
    found: list[Finding] = []
    if settings.wavespeed_webhook_url and settings.backend_name == "wavespeed":
        found.append(
            await check_webhook(
                http,
                public_url=settings.wavespeed_webhook_url,
                listen=settings.web_listen or settings.wavespeed_webhook_listen,
            )
        )
    if settings.public_url is not None:
        found.append(
            await check_board(http, public_url=settings.public_url, listen=settings.web_listen)
        )
    return found


async def _backend(http: httpx.AsyncClient, settings: Settings) -> list[Finding]:
    if settings.backend_name == "wavespeed":
        assert settings.wavespeed_api_key is not None  # checked by Settings
        return [
            await probe_wavespeed(
                http,
                base_url=settings.wavespeed_base_url,
                api_key=settings.wavespeed_api_key.get_secret_value(),
            )
        ]
    servers = settings.acestep_servers
    found = await asyncio.gather(
        *(probe_acestep(http, base_url=s.url, api_key=s.api_key) for s in servers)
    )
    if len(servers) == 1:
        return found[0]
    # A pool: each server's own lines, named by the key its songs carry (acejam jobs).
    return [
        replace(finding, name=f"{finding.name} {server_key(server.url)}")
        for server, findings in zip(servers, found, strict=True)
        for finding in findings
    ]


async def _platforms(http: httpx.AsyncClient, settings: Settings) -> list[Finding]:
    found: list[Finding] = []
    if settings.telegram_token is None and settings.discord_token is None:
        return [NO_PLATFORM]
    if settings.telegram_token is not None:
        found.append(
            await check_telegram(
                http,
                base_url=settings.telegram_api_base_url,
                token=settings.telegram_token.get_secret_value(),
            )
        )
    if settings.discord_token is not None:
        found.extend(
            await check_discord(
                http,
                base_url=settings.discord_api_base_url,
                token=settings.discord_token.get_secret_value(),
                guild_ids=settings.discord_guild_ids,
            )
        )
    return found
