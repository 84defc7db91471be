"""What a first `acejam run` says when `.env` is missing or half filled: what is missing for
the backend and for the chat platforms, and where to get each, in a few lines."""

from __future__ import annotations

import httpx

from bot.config import Settings

NO_BACKEND = """\
AceJam has nothing to make songs with: no backend is set, and nothing answers at the
default ACE-Step address, {url}. Put one in .env (see .env.example):
  WAVESPEED_API_KEY=...                 hosted, paid per song: https://wavespeed.ai/accesskey
  ACESTEP_API_URL=http://gpu-box:8001   your own GPU running `uv run acestep-api`"""
NO_PLATFORM = """\
No chat platform is configured, so AceJam only works through its queue.
Put one or both of these in .env (see .env.example) and run `acejam run` again:
  TELEGRAM_TOKEN=...   (from @BotFather)
  DISCORD_TOKEN=...    (from the Discord developer portal)"""
NO_LISTENER = """\
PUBLIC_URL is set, so the jam board is on, but WEB_LISTEN is not, so nothing serves it.
Put the listener's address in .env, and have {url} reach it (docs/jamboard.md):
  WEB_LISTEN=0.0.0.0:8080"""
THEN = "Then `acejam doctor` checks them, and `acejam run` starts the bot."


def backend_missing(settings: Settings) -> bool:
    """No WaveSpeed key, no ACE-Step address set, and no server at the default one (a
    server someone runs on this machine's default port is a backend, set or not)."""
    if settings.backend_name != "acestep" or "acestep_api_url" in settings.model_fields_set:
        return False
    try:
        httpx.get(f"{settings.acestep_api_url}/health", timeout=2.0)
    except httpx.HTTPError:
        return True
    return False


def first_run_hint(settings: Settings, *, backend: bool, platforms: bool) -> tuple[str, bool]:
    """The lines to print before starting (empty: nothing missing), and whether to stop:
    with no backend the bot could only fail every song."""
    parts: list[str] = []
    stop = backend and backend_missing(settings)
    if stop:
        parts.append(NO_BACKEND.format(url=settings.acestep_api_url))
    if platforms:
        parts.append(NO_PLATFORM)
    if settings.public_url is not None and settings.web_listen is None:
        parts.append(NO_LISTENER.format(url=settings.public_url))
    if stop:
        parts.append(THEN)
    return "\n".join(parts), stop
