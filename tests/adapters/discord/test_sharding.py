"""Sharding: DISCORD_SHARD_COUNT shards, of which this process runs DISCORD_SHARD_IDS."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from tests.adapters.discord.conftest import (
    ALICE,
    CHANNEL,
    GUILD,
    World,
    jam,
    mp3_of,
)
from tests.fakes.discord import FakeDiscord, FakeDiscordError

# Discord routes a guild to shard (id >> 22) % count: GUILD is on shard 0 of 2, this one on 1.
ONE = GUILD + (1 << 22)
ONE_CHANNEL = ONE + 1


def _second_guild(dc: FakeDiscord) -> None:
    dc.add_guild(ONE, "Shard One", channels=[(ONE_CHANNEL, "general")], members=[ALICE])
    assert (dc.shard_for(GUILD, 2), dc.shard_for(ONE, 2)) == (0, 1)


async def _guild_name_seen(dc: FakeDiscord, guild_id: int, channel_id: int) -> str:
    """The guild's name as the bot knows it (from that guild's GUILD_CREATE on its shard),
    read from /admin settings, run by the guild's owner."""
    owner = dc.guild(guild_id).owner_id
    inter = await dc.invoke_slash(guild_id, channel_id, owner, "admin settings")
    answer = await inter.wait_for_original(lambda m: not m.loading)
    return answer.content.splitlines()[0]


@pytest.mark.parametrize("configured", [True, False], ids=["DISCORD_SHARD_COUNT=2", "unset"])
async def test_two_shards_each_get_their_guilds(world: World, configured: bool) -> None:
    dc = world.dc
    _second_guild(dc)
    dc.shard_count = 2  # what GET /gateway/bot recommends
    overrides: dict[str, Any] = {"discord_shard_count": 2} if configured else {}
    async with jam(world, discord_guild_ids=[GUILD, ONE], **overrides):
        assert sorted(p["shard"] for p in dc.identify_payloads) == [[0, 2], [1, 2]]
        assert await _guild_name_seen(dc, GUILD, CHANNEL) == "**AceJam settings for Jam Club**"
        assert await _guild_name_seen(dc, ONE, ONE_CHANNEL) == "**AceJam settings for Shard One**"
        inter = await dc.invoke_slash(
            ONE, ONE_CHANNEL, ALICE, "song", {"tags": "dub", "duration": 5}
        )
        track = await dc.wait_for_attachment(ONE_CHANNEL, timeout=20)
        await inter.wait_for_original(lambda m: m.deleted)

        # Told to identify again (op 9), shard 1 dials DEFAULT_GATEWAY: still the fake's.
        await dc.invalidate_session(1)
        await dc.wait_for_identify(shard_id=1)
        again = await dc.invoke_slash(ONE, ONE_CHANNEL, ALICE, "help")
        assert "/song" in (await again.wait_for_original()).content
    assert "Shard One" in _id3_album(mp3_of(track).data)
    connects = [e for e in dc.gateway_events if e.kind == "connect"]
    assert len(connects) == 3 and all(e.path == "/gateway" for e in connects)


async def test_a_process_runs_only_its_own_shards(world: World) -> None:
    dc = world.dc
    _second_guild(dc)
    async with jam(
        world, discord_guild_ids=[GUILD, ONE], discord_shard_count=2, discord_shard_ids=[1]
    ):
        assert [p["shard"] for p in dc.identify_payloads] == [[1, 2]]
        inter = await dc.invoke_slash(
            ONE, ONE_CHANNEL, ALICE, "song", {"tags": "dub", "duration": 5}
        )
        status = await inter.wait_for_original(lambda m: m.embeds)
        assert not status.ephemeral and status.embeds[0]["footer"]["text"] == "Job #1"
        # Shard 0's guild belongs to another process: nothing here receives its interactions.
        with pytest.raises(FakeDiscordError, match="no gateway session for that guild's shard"):
            await dc.invoke_slash(GUILD, CHANNEL, ALICE, "help")


def test_shard_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DISCORD_SHARD_COUNT", "")  # as `.env.example` leaves them
    monkeypatch.setenv("DISCORD_SHARD_IDS", "")
    settings = load_settings()
    assert settings.discord_shard_count is None and settings.discord_shard_ids == []

    monkeypatch.setenv("DISCORD_SHARD_COUNT", "4")
    monkeypatch.setenv("DISCORD_SHARD_IDS", "1, 3")
    settings = load_settings()
    assert (settings.discord_shard_count, settings.discord_shard_ids) == (4, [1, 3])

    monkeypatch.setenv("DISCORD_SHARD_IDS", "4")
    with pytest.raises(ConfigError, match="distinct numbers from 0 to 3"):
        load_settings()
    monkeypatch.setenv("DISCORD_SHARD_COUNT", "0")
    with pytest.raises(ConfigError, match="Invalid setting DISCORD_SHARD_COUNT"):
        load_settings()
    monkeypatch.delenv("DISCORD_SHARD_COUNT")
    monkeypatch.setenv("DISCORD_SHARD_IDS", "1")
    with pytest.raises(ConfigError, match="DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"):
        load_settings()


def _id3_album(data: bytes) -> str:
    from mutagen.id3 import ID3

    return str(ID3(io.BytesIO(data)).get("TALB", ""))
