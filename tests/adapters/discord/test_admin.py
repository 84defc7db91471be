"""/admin: who may use it, and that what admins set is what members meet on their next /song.

A guild of its own ("Studio"): Ada manages it (Manage Server), Ben is a plain member, Carl
holds the DJ role; besides #general it has #music and an age-restricted #after-dark.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.domain import JobState
from tests.adapters.discord.conftest import (
    ALICE,
    CHANNEL,
    GUILD,
    World,
    jam,
    status_text,
    track_messages,
)
from tests.fakes.discord import FakeDiscord, FakeDiscordError, FakeInteraction, Perm
from tests.harness import wait_for_job

STUDIO = 1_190_000_000_000_000_400
GENERAL = 1_190_000_000_000_000_401
MUSIC = 1_190_000_000_000_000_402
AFTER_DARK = 1_190_000_000_000_000_403
DJ = 1_190_000_000_000_000_410
ADA = 1_190_000_000_000_000_421
BEN = 1_190_000_000_000_000_422
CARL = 1_190_000_000_000_000_423

NOT_AN_ADMIN = "Only members who can manage this server (Manage Server) can use /admin."
ADMIN_CANCELLED = "Cancelled by an admin. The quota has been given back."


@dataclass
class Studio:
    world: World
    owner: int

    @property
    def dc(self) -> FakeDiscord:
        return self.world.dc

    def jam(self, **overrides: Any) -> Any:
        return jam(self.world, discord_guild_ids=[GUILD, STUDIO], **overrides)


@pytest.fixture
async def studio(world: World) -> AsyncIterator[Studio]:
    dc = world.dc
    dc.add_user(ADA, "ada")
    dc.add_user(BEN, "ben")
    dc.add_user(CARL, "carl")
    guild = dc.add_guild(
        STUDIO,
        "Studio",
        channels=[
            (GENERAL, "general"),
            (MUSIC, "music"),
            {"id": AFTER_DARK, "name": "after-dark", "nsfw": True},
        ],
        roles=[{"id": DJ, "name": "DJ"}],
        members=[{"id": ADA, "permissions": Perm.MANAGE_GUILD}, BEN, {"id": CARL, "roles": [DJ]}],
    )
    yield Studio(world, guild.owner_id)


async def admin(
    dc: FakeDiscord,
    command: str,
    options: dict[str, Any] | None = None,
    *,
    user: int = ADA,
    **kw: Any,
) -> str:
    """An /admin subcommand's private answer."""
    inter = await dc.invoke_slash(STUDIO, GENERAL, user, f"admin {command}", options, **kw)
    answer = await inter.wait_for_original(lambda m: not m.loading)
    assert answer.ephemeral and not answer.pings.anyone, answer.summary()
    return answer.content


async def song(
    dc: FakeDiscord, user: int, tags: str, duration: int | None = 5, channel: int = GENERAL
) -> FakeInteraction:
    options: dict[str, Any] = {"tags": tags}
    if duration is not None:
        options["duration"] = duration
    return await dc.invoke_slash(STUDIO, channel, user, "song", options)


async def refusal(inter: FakeInteraction) -> str:
    """A refused /song: the reason comes privately (the public "thinking" message goes)."""
    answer = await inter.wait_for_followup(lambda m: m.ephemeral)
    return answer.content


async def accepted(inter: FakeInteraction) -> bool:
    """An accepted /song: a public status message for its new job (whatever state it shows)."""
    status = await inter.wait_for_original(lambda m: m.embeds)
    return not status.ephemeral and status.embeds[0]["footer"]["text"].startswith("Job #")


# ---------------------------------------------------------------- who may


async def test_only_server_managers_can_use_admin(studio: Studio) -> None:
    dc = studio.dc
    async with studio.jam():
        registered = dc.command("admin", STUDIO)
        assert registered["default_member_permissions"] == str(Perm.MANAGE_GUILD)
        assert registered.get("contexts") == [0] or registered.get("dm_permission") is False
        # Discord hides it from Ben...
        with pytest.raises(FakeDiscordError, match="default_member_permissions"):
            await dc.invoke_slash(STUDIO, GENERAL, BEN, "admin settings")
        # ...but an owner may open it to everyone (a permission override): then our own check.
        for command, options in [
            ("quota", {"value": "1"}),
            ("channels clear", None),
            ("block", {"user": ADA}),
            ("usage", None),
        ]:
            answer = await admin(dc, command, options, user=BEN, respect_visibility=False)
            assert answer == f"⚠️ {NOT_AN_ADMIN}"
        # The owner (every permission) and Ada (Manage Server) are in; nothing Ben tried stuck.
        settings = await admin(dc, "settings", user=studio.owner)
        assert settings.startswith("**AceJam settings for Studio**")
        assert "Daily quota per member: 10 min a day (the default)" in settings
        assert "Channels for /song: any" in settings
        assert (await admin(dc, "user-quota", {"user": ADA})).startswith(f"<@{ADA}>: not blocked")
        assert await admin(dc, "block", {"user": BEN}) == (
            f"✅ <@{BEN}> can't make songs in this server any more."
        )
        # Values an admin can't mean are explained, not saved.
        bad = await admin(dc, "quota", {"value": "lots"})
        assert bad.startswith("⚠️ “lots” isn't a quota.") and "`unlimited`" in bad
        assert "10 min a day (the default)" in await admin(dc, "quota")


# ---------------------------------------------------------------- quotas and blocks


async def test_quotas_and_blocks_apply_to_the_next_song(studio: Studio) -> None:
    dc = studio.dc
    studio.world.ws.faults.add_job(hang=True, times=10)  # accepted songs just wait
    async with studio.jam():
        assert await admin(dc, "quota", {"value": "10"}) == "✅ Daily quota per member: 10 s a day"
        too_long = await refusal(await song(dc, BEN, "polka", 30))
        assert "daily allowance of 10 s" in too_long

        role = await admin(dc, "role-quota", {"role": DJ, "value": "unlimited"})
        assert role == (  # more than QUOTA_SECONDS_PER_DAY is the operator's to give
            "⚠️ The bot's operator allows at most 10 min a day here; only they can raise it."
        )
        role = await admin(dc, "role-quota", {"role": DJ, "value": "10m"})
        assert role == f"✅ <@&{DJ}>: 10 min a day"
        assert await accepted(await song(dc, CARL, "house", 30))  # Carl is a DJ

        standing = await admin(dc, "user-quota", {"user": BEN, "value": "1m"})
        assert standing.startswith(f"✅ Saved.\n<@{BEN}>: not blocked")
        assert "Their own quota here: 1 min a day" in standing
        assert "They have 1 min of 1 min left" in standing
        assert await accepted(await song(dc, BEN, "polka", 30))

        await admin(dc, "block", {"user": BEN, "reason": "spam"})
        blocked = await refusal(await song(dc, BEN, "polka", 5))
        assert "You can't make songs here right now" in blocked
        shown = await admin(dc, "user-quota", {"user": BEN})
        assert shown.startswith(f"<@{BEN}>: **blocked** here")
        assert "They have 30 s of 1 min left" in shown

        assert (
            await admin(dc, "unblock", {"user": BEN}) == f"✅ <@{BEN}> can make songs here again."
        )
        await admin(dc, "user-quota", {"user": BEN, "value": "default"})
        back_to_ten = await refusal(await song(dc, BEN, "polka", 5))
        assert "You have 0 s of your daily 10 s left" in back_to_ten  # 30 s already used
        default = await admin(dc, "quota", {"value": "default"})
        assert default == "✅ Daily quota per member: 10 min a day (the default)"
        assert await accepted(await song(dc, BEN, "polka", 5))
        queue = await admin(dc, "queue")
    assert queue.startswith("**Songs in the works in this server: 3**")  # refusals made none


# ---------------------------------------------------------------- channels, words, limits


async def test_channels_words_and_limits(studio: Studio) -> None:
    dc = studio.dc
    studio.world.ws.faults.add_job(hang=True, times=10)
    async with studio.jam(max_active_jobs_per_user=5):
        listed = await admin(dc, "channels add", {"channel": MUSIC})
        assert listed == f"✅ /song works only in <#{MUSIC}> (admins may use it anywhere)."
        elsewhere = await refusal(await song(dc, BEN, "ska"))
        assert "Songs aren't made in this channel" in elsewhere
        assert await accepted(await song(dc, BEN, "ska", channel=MUSIC))
        assert await accepted(await song(dc, ADA, "ska"))  # admins may, anywhere

        words = await admin(dc, "words add", {"words": "Kazoo, bagpipes, kazoo"})
        assert words == "✅ **Blocked words here (2):** Kazoo, bagpipes"
        rude = await refusal(await song(dc, BEN, "kazoo solo", channel=MUSIC))
        assert "uses a word that isn't allowed here" in rude
        await admin(dc, "words remove", {"words": "KAZOO"})
        assert await admin(dc, "words list") == "**Blocked words here (1):** bagpipes"
        assert await accepted(await song(dc, BEN, "kazoo solo", channel=MUSIC))

        limits = await admin(dc, "limits", {"max_duration": 20, "default_duration": 10})
        assert "Song length: 10 s unless asked, at most 20 s;" in limits
        clash = await admin(dc, "limits", {"default_duration": 30})
        assert clash == "⚠️ The default duration can't be longer than the maximum."
        long = await refusal(await song(dc, CARL, "dub", 30, channel=MUSIC))
        assert "songs can be at most 20 seconds long" in long
        unsaid = await song(dc, CARL, "dub", None, channel=MUSIC)
        status = await unsaid.wait_for_original(lambda m: m.embeds)
        assert {f["name"]: f["value"] for f in status.embeds[0]["fields"]}["Duration"] == "10 s"

        assert await admin(dc, "channels clear") == "✅ /song works in every channel."
        no_budget = await admin(dc, "jam-pays", {"who": "chat"})  # #16: needs a budget first
        assert no_budget.startswith("⚠️") and "budget" in no_budget
        assert await admin(dc, "budget", {"value": "$12.5"}) == "✅ Monthly budget: $12.50 a month"
        paid = await admin(dc, "jam-pays", {"who": "chat"})
        assert paid.startswith("✅ A jam's takes here are paid from this server's monthly budget")
        await admin(dc, "buttons", {"others_may_press": True})
        settings = await admin(dc, "settings")
    assert "Channels for /song: any" in settings
    assert "Blocked words: 1 (`/admin words list`)" in settings
    assert "Others may press 🎲 / 🔁 under someone's song: yes" in settings
    assert "Monthly budget: $12.50" in settings
    assert "Jams' takes are paid by: this server's budget" in settings


async def test_values_spelled_the_clis_way_or_the_chats_way_mean_the_same(
    studio: Studio,
) -> None:
    """One admin grammar (bot/admin_grammar.py): `acejam admin`'s 600 and a chat's 10m or
    10:00 are the same quota; what can't be used gets the sentence the CLI and Telegram give."""
    dc = studio.dc
    async with studio.jam():
        for spelled in ("600", "10m", "10:00"):
            answer = await admin(dc, "quota", {"value": spelled})
            assert answer == "✅ Daily quota per member: 10 min a day", spelled
        for spelled in ("2.5", "$2.50"):
            answer = await admin(dc, "budget", {"value": spelled})
            assert answer == "✅ Monthly budget: $2.50 a month", spelled
        bad = await admin(dc, "quota", {"value": "1.5h"})
        assert bad == (
            "⚠️ “1.5h” isn't a quota. A quota is a number of seconds a day (like `600`, `10m`, "
            "`1h` or `1:30`), `unlimited`, or `default`."
        )


# ---------------------------------------------------------------- queue, cancel, usage


async def test_queue_cancel_and_usage(studio: Studio) -> None:
    dc, ws = studio.dc, studio.world.ws
    async with studio.jam(wavespeed_max_concurrency=1) as run:
        done = await song(dc, CARL, "jig", 5)
        await done.wait_for_original(lambda m: m.deleted, timeout=20)
        ws.faults.add_job(hang=True, times=3)
        drone = await song(dc, BEN, "drone", 30)
        drone_status = await drone.wait_for_original(lambda m: "Making your song" in status_text(m))
        hum = await song(dc, CARL, "hum *loud*", 20)
        hum_status = await hum.wait_for_original(lambda m: m.buttons)
        elsewhere = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "x", "duration": 5}
        )
        await elsewhere.wait_for_original(lambda m: m.embeds)

        queue = await admin(dc, "queue")
        assert queue.splitlines() == [
            "**Songs in the works in this server: 2**",
            # Alice (another server) was never served yet, Carl was: she goes first.
            f"#3 hum \\*loud\\* — 20 s: position 2 in the queue · <@{CARL}>",
            f"#2 drone — 30 s: running · <@{BEN}>",
        ]

        # Cancel: only this server's songs, and the owner reads that an admin did it.
        assert await admin(dc, "cancel", {"job": 4}) == "⚠️ There's no song #4 from this server."
        plain = await dc.invoke_slash(STUDIO, GENERAL, ADA, "cancel", {"job": 4})
        assert (
            "Only the person who asked"
            in (await plain.wait_for_original(lambda m: not m.loading)).content
        )
        assert await admin(dc, "cancel", {"job": 2}) == (
            f"Cancelled #2; <@{BEN}> got the quota back, and its status message says an admin "
            "stopped it."
        )
        stopped = await drone.wait_for_original(lambda m: "Cancelled" in status_text(m))
        assert status_text(stopped) == f"✖️ **{ADMIN_CANCELLED}**" and stopped.buttons == []
        assert drone_status.id == stopped.id

        # ✖ under Carl's song: Ben is turned away privately, Ada's press stops it.
        press = await dc.click_button(hum_status.id, "acejam:cancel:3", BEN)
        no = await press.wait_for_followup()
        assert no.ephemeral and "Only the person who asked" in no.content
        assert "Cancelled" not in status_text(dc.message(hum_status.id))
        await dc.click_button(hum_status.id, "acejam:cancel:3", ADA)
        stopped = await hum.wait_for_original(lambda m: "Cancelled" in status_text(m))
        assert status_text(stopped) == f"✖️ **{ADMIN_CANCELLED}**"
        # Alice's song (another server) came through all this untouched: it runs now.
        await wait_for_job(run.core, 4, {JobState.RUNNING, JobState.SUBMITTED})

        usage = await admin(dc, "usage")
        week = await admin(dc, "usage", {"days": 7})
    lines = usage.splitlines()
    assert lines[0].startswith("**Usage in this server, last 30 days:** 3 songs asked, 5 s made, $")
    assert lines[1].startswith(f"<@{CARL}> — 2 songs asked, 5 s made, $0.0015, last <t:")
    assert lines[2].startswith(f"<@{BEN}> — 1 song asked, 0 s made, $")
    assert len(lines) == 3  # Alice's song was in another server
    assert week.startswith("**Usage in this server, last 7 days:** 3 songs asked")


# ---------------------------------------------------------------- moderation of outputs


async def test_a_flagged_song_is_held_back_except_where_nsfw_is_allowed(studio: Studio) -> None:
    dc, ws = studio.dc, studio.world.ws
    ws.faults.add_job(nsfw=True, times=3)
    async with studio.jam():
        held = await song(dc, BEN, "murder ballad", 5)
        # A new message that reaches Ben, saying who can let such songs through.
        notice = await dc.wait_for_message(GENERAL, lambda m: "flagged" in m.content, 20)
        assert notice.content == (
            f"⚠️ <@{BEN}> The music engine flagged this song as not safe for this chat, so I "
            "held it back. It still counts against your quota. A server manager can allow such "
            "songs here with `/admin nsfw allow:True`."
        )
        assert notice.pings.users == {BEN} and notice.buttons == []  # the same song: held again
        await held.wait_for_original(lambda m: m.deleted)
        # The song was made; this chat turned it away (bot/settlement.py): it counts.
        quota = await dc.invoke_slash(STUDIO, GENERAL, BEN, "quota")
        assert (
            "You have 9 min 55 s of 10 min left"
            in (await quota.wait_for_original(lambda m: not m.loading)).content
        )

        await song(dc, BEN, "murder ballad", 5, channel=AFTER_DARK)
        dark = await dc.wait_for_attachment(AFTER_DARK, timeout=20)

        await admin(dc, "nsfw", {"allow": True})
        await song(dc, BEN, "murder ballad", 5, channel=MUSIC)
        anywhere = await dc.wait_for_attachment(MUSIC, timeout=20)
    assert track_messages(dc, GENERAL) == []
    assert track_messages(dc, AFTER_DARK) == [dark] and track_messages(dc, MUSIC) == [anywhere]
