"""Checks of the chat platforms, with the bot's own tokens and read-only requests:
Telegram ``getMe``; Discord ``GET /users/@me``, ``GET /gateway/bot``, and in each of
``DISCORD_GUILD_IDS`` the permissions the bot's roles give it there."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from bot.backends.probe import Finding

# What the Discord adapter needs to post a song in a channel (adapters/discord/songs.py,
# bot_can_post): see it, write (in threads too), the card (an embed) and the track (a file),
# and the history a reply refers to.
DISCORD_NEEDS: dict[str, int] = {
    "View Channels": 1 << 10,
    "Send Messages": 1 << 11,
    "Embed Links": 1 << 14,
    "Attach Files": 1 << 15,
    "Read Message History": 1 << 16,
    "Send Messages in Threads": 1 << 38,
}
ADMINISTRATOR = 1 << 3
# Not needed for songs: with it, a jam gets a thread of its own (adapters/discord/jams.py);
# without it, the jam stays in the channel it was started in.
CREATE_PUBLIC_THREADS = 1 << 35


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


async def check_telegram(http: httpx.AsyncClient, *, base_url: str, token: str) -> Finding:
    name = "Telegram"
    try:
        response = await http.post(f"{base_url}/bot{token}/getMe")
    except httpx.HTTPError as exc:
        reason = (str(exc) or type(exc).__name__).replace(token, "***")
        return Finding(
            name, False, f"cannot reach {base_url}: {reason}", "check TELEGRAM_API_BASE_URL"
        )
    payload = _json(response)
    result = payload.get("result") if isinstance(payload, dict) else None
    if response.status_code == 200 and isinstance(result, dict):
        return Finding(name, True, f"token accepted: @{result.get('username', '?')}")
    description = payload.get("description") if isinstance(payload, dict) else None
    reason = str(description or response.reason_phrase).replace(token, "***")
    if response.status_code in (401, 404):
        return Finding(
            name,
            False,
            f"token refused (HTTP {response.status_code}: {reason})",
            "ask @BotFather for the bot's token (/token) and put it in TELEGRAM_TOKEN",
        )
    return Finding(name, False, f"getMe answered HTTP {response.status_code}: {reason}")


async def check_discord(
    http: httpx.AsyncClient, *, base_url: str, token: str, guild_ids: list[int]
) -> list[Finding]:
    """The token, the gateway URL, then one line per guild in ``guild_ids``."""
    headers = {"Authorization": f"Bot {token}"}

    async def get(path: str) -> httpx.Response:
        return await http.get(f"{base_url}{path}", headers=headers)

    try:
        me = await get("/users/@me")
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        return [
            Finding(
                "Discord",
                False,
                f"cannot reach {base_url}: {reason}",
                "check DISCORD_API_BASE_URL",
            )
        ]
    user = _json(me)
    if me.status_code != 200 or not isinstance(user, dict):
        return [
            Finding(
                "Discord",
                False,
                f"token refused (HTTP {me.status_code})",
                "copy the token from the Discord developer portal (your app → Bot → "
                "Reset Token) into DISCORD_TOKEN",
            )
        ]
    found = [Finding("Discord", True, f"token accepted: {user.get('username', '?')}")]
    gateway = await get("/gateway/bot")
    info = _json(gateway)
    if gateway.status_code == 200 and isinstance(info, dict) and info.get("url"):
        shards = info.get("shards", "?")
        found.append(
            Finding("Discord gateway", True, f"{info['url']} ({shards} shard(s) recommended)")
        )
    else:
        found.append(
            Finding(
                "Discord gateway",
                False,
                f"GET /gateway/bot answered HTTP {gateway.status_code}",
                "check DISCORD_API_BASE_URL",
            )
        )
    bot_id = str(user.get("id", ""))
    for guild_id in guild_ids:
        found.append(await _guild_permissions(get, guild_id, bot_id))
    return found


def invite_url(bot_id: str) -> str:
    permissions = sum(DISCORD_NEEDS.values()) | CREATE_PUBLIC_THREADS
    scope = quote("bot applications.commands")
    return (
        f"https://discord.com/oauth2/authorize?client_id={bot_id}&scope={scope}"
        f"&permissions={permissions}"
    )


async def _guild_permissions(get: Any, guild_id: int, bot_id: str) -> Finding:
    """The bot's server-wide permissions in a guild (its roles, as Discord adds them up);
    a channel's overwrites can still take some away there."""
    name = f"Discord guild {guild_id}"
    guild_response = await get(f"/guilds/{guild_id}")
    member_response = await get(f"/guilds/{guild_id}/members/{bot_id}")
    guild, member = _json(guild_response), _json(member_response)
    if guild_response.status_code != 200 or member_response.status_code != 200:
        return Finding(
            name,
            False,
            "the bot is not in this server (or the id is wrong)",
            f"invite it with {invite_url(bot_id)}, or fix DISCORD_GUILD_IDS",
        )
    label = f"{name} ({guild.get('name', '?')})"
    if str(guild.get("owner_id")) == bot_id:
        return Finding(label, True, "the bot owns this server")
    roles = {str(r.get("id")): int(r.get("permissions", 0)) for r in guild.get("roles", [])}
    granted = roles.get(str(guild_id), 0)  # @everyone's role has the guild's id
    for role_id in member.get("roles", []):
        granted |= roles.get(str(role_id), 0)
    if granted & ADMINISTRATOR:
        return Finding(label, True, "Administrator")
    missing = [perm for perm, bit in DISCORD_NEEDS.items() if not granted & bit]
    if missing:
        return Finding(
            label,
            False,
            f"missing {', '.join(missing)}",
            "give the bot's role these permissions in Server Settings → Roles",
        )
    can = "can post songs: " + ", ".join(DISCORD_NEEDS)
    if not granted & CREATE_PUBLIC_THREADS:
        can += "; no Create Public Threads, so a jam stays in the channel it was started in"
    return Finding(label, True, can)
