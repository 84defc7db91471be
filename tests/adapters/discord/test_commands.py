"""/quota, /queue, /history, /help, and every way a request can be turned down."""

from __future__ import annotations

import asyncio

import aiohttp

from bot.app import run_bot
from bot.clock import utcnow
from bot.domain import JobState
from tests.adapters.discord.conftest import (
    ALICE,
    APP_ID,
    BOB,
    CHANNEL,
    GUILD,
    TOKEN,
    World,
    jam,
    status_text,
    track_messages,
)
from tests.fakes.discord import FakeDiscord, FakeInteraction, RecordedMessage
from tests.harness import wait_for_job
from tests.kit.audit import rules_of


async def _answer(dc: FakeDiscord, command: str, options: dict | None = None) -> RecordedMessage:  # type: ignore[type-arg]
    inter = await dc.invoke_slash(GUILD, CHANNEL, ALICE, command, options)
    answer = await inter.wait_for_original(lambda m: not m.loading)
    assert answer.ephemeral, answer.summary()
    return answer


async def _refusal(inter: FakeInteraction) -> RecordedMessage:
    """A refused /song: the public "thinking" message is removed, the reason is private."""
    refusal = await inter.wait_for_followup(lambda m: m.ephemeral)
    original = inter.original
    assert original is None or original.deleted or original is refusal
    return refusal


async def test_help_quota_queue_and_history(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        help_text = (await _answer(dc, "help")).content
        assert "/song" in help_text and "/compose" in help_text and "5 s to 4 min" in help_text
        # Cancelling, minutes and seeds are there, in the buttons' own words.
        for words in ("`1:30`", "`-1` for a random one", "✖ Cancel, or `/cancel`", "/limits"):
            assert words in help_text
        assert "🎲 New take (a new seed) · 🔁 Same seed (the same take again)" in help_text
        # Each /song option with one example; a description says it can't be had here.
        for words in (
            "`takes:` versions at once, 1 to 4, e.g. `2`",
            "`bpm:` the tempo, 30 to 300, e.g. `120`",
            "`key:` e.g. `F# minor`",
            "`time_signature:` beats per bar, e.g. `3/4`",
            "`language:` of the vocals, e.g. `pt`",
            "`describe:` the song in one sentence, e.g. `a sad song about rain in Lisbon` "
            "(not here now: this bot's engine has no language model)",
            "`takes=2 bpm=120 key=F# minor time=3 lang=en`",
            "✏️ Edit (the form, filled in with that song",
            "`/show 12` posts song #12 here again",
        ):
            assert words in help_text, words
        assert (await _answer(dc, "queue")).content == "You have no songs queued or running."
        assert (await _answer(dc, "history")).content == "You haven't made any songs yet."

        world.ws.faults.add_job(hang=True)
        stuck = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "ska", "duration": 5})
        await stuck.wait_for_original(lambda m: "Making your song" in status_text(m))
        queue = (await _answer(dc, "queue")).content
        assert queue == "**Your songs in the works**\n#1 ska — 5 s: running"
        await _answer(dc, "cancel")

        song = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "reggae", "duration": 5, "seed": 7}
        )
        await song.wait_for_original(lambda m: m.deleted, timeout=20)
        job = await wait_for_job(run.core, 2, {JobState.DELIVERED})

        history = (await _answer(dc, "history")).content
        link = f"https://discord.com/channels/{GUILD}/{CHANNEL}/{job.delivered_message_id}"
        assert history.splitlines() == [
            "**Your songs**",
            f"#2 reggae — 5 s, seed 7 — [listen]({link})",
            "`/show 2` posts song #2 here again.",
        ]
        quota = (await _answer(dc, "quota")).content
    assert quota.startswith("You have 9 min 55 s of 10 min left (a rolling 24 hours).")
    assert "Songs queued or running: 0 of 2." in quota


async def test_any_member_sees_the_servers_limits_privately(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        await run.core.service.admin.update_chat_rules(
            "discord", str(GUILD), max_duration=120, default_duration=30, others_may_press=True
        )
        inter = await dc.invoke_slash(GUILD, CHANNEL, BOB, "limits")  # no Manage Server
        answer = await inter.wait_for_original(lambda m: not m.loading)
    assert answer.ephemeral and answer.interaction_user_id == BOB
    assert answer.content.splitlines() == [
        "**What anyone can make in Jam Club**",
        "Music per member: 10 min a day (a rolling 24 hours; some roles may get more). "
        "`/quota` shows what you have left.",
        "Song length: 5 s to 2 min; 30 s when you don't say.",
        "Songs in the works at once: 2 per member, 10 in all here.",
        "Channels for /song: any.",
        "🎲 New take / 🔁 Same seed under someone else's song: anyone may press them.",
    ]
    assert dc.command("limits", GUILD).get("default_member_permissions") is None


async def test_quota_exhausted_is_refused_privately(world: World) -> None:
    dc = world.dc
    async with jam(world, quota_seconds_per_day=8):
        first = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "a", "duration": 5})
        await first.wait_for_original(lambda m: m.embeds)
        second = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "b", "duration": 5})
        refusal = await _refusal(second)
        await dc.wait_for_attachment(CHANNEL, timeout=20)
    assert second.response_type == 5  # deferred first: the quota check reads the database
    assert refusal.content.startswith("⚠️") and "5 s" in refusal.content
    assert len(world.ws.submits) == 1 and len(track_messages(dc)) == 1


async def test_a_failure_is_a_new_message_to_the_requester_with_try_again(world: World) -> None:
    dc = world.dc
    world.ws.faults.add_job(fail="CUDA out of memory")
    async with jam(world) as run:
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "opera", "duration": 6}
        )
        notice = await dc.wait_for_message(CHANNEL, lambda m: "couldn't make" in m.content, 20)
        card = await inter.wait_for_original(lambda m: m.deleted)  # the failure took its place
        assert notice.pings.users == {ALICE} and not notice.pings.everyone  # it notifies her
        quota = (await _answer(dc, "quota")).content

        again = await dc.click_button(notice.id, "acejam:retry:1", ALICE)
        track = await dc.wait_for_attachment(CHANNEL, timeout=20)
        job = await wait_for_job(run.core, 2, {JobState.DELIVERED})
    assert notice.content == (
        f"⚠️ <@{ALICE}> The music engine couldn't make this song. Your quota has been given back."
    )
    assert "opera" in notice.embeds[0]["description"] and not card.edits[-1].payload.get("content")
    assert "CUDA" not in str(notice.embeds) + notice.content  # upstream's words are never shown
    assert [(b.emoji, b.label) for b in notice.buttons] == [("🔁", "Try again")]
    assert "You have 10 min of 10 min left" in quota
    # Trying again asks for the same song once more; the button shows it was used.
    assert again.response_type == 6
    assert [(s["tags"], s["duration"]) for s in world.ws.submits] == [("opera", 6)] * 2
    assert job.parent_id == 1 and track_messages(dc) == [track]
    assert dc.message(notice.id).button("acejam:retry:1").style == 3  # green: used


async def test_a_failure_nobody_can_fix_by_trying_again_has_no_button(world: World) -> None:
    dc = world.dc
    world.ws.faults.add_job(fail="flagged", error_code="1200")  # WaveSpeed's moderation code
    async with jam(world):
        await dc.invoke_slash(GUILD, CHANNEL, ALICE, "song", {"tags": "opera", "duration": 6})
        notice = await dc.wait_for_message(CHANNEL, lambda m: "refused" in m.content, 20)
    assert notice.content.startswith(f"⚠️ <@{ALICE}> The music engine refused this request")
    assert notice.buttons == []


async def test_blocked_user_is_refused_privately(world: World) -> None:
    dc = world.dc
    async with jam(world) as run:
        await rules_of(run.core).set_user_rules(
            "discord", str(ALICE), str(GUILD), utcnow(), blocked=True
        )
        inter = await dc.invoke_slash(
            GUILD, CHANNEL, ALICE, "song", {"tags": "punk", "duration": 5}
        )
        refusal = await _refusal(inter)
    assert "You can't make songs here right now" in refusal.content
    assert world.ws.submits == []
    assert [m for m in dc.channel_messages(CHANNEL) if not m.deleted and not m.ephemeral] == []


async def test_a_stale_command_gets_a_polite_answer(world: World) -> None:
    # A command registered by an older version: the bot has no handler for it any more.
    dc = world.dc
    async with jam(world):
        url = f"{dc.api_base}/applications/{APP_ID}/guilds/{GUILD}/commands"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bot {TOKEN}"}) as http:
            body = {"name": "karaoke", "description": "Sing along", "type": 1}
            async with http.post(url, json=body) as resp:
                assert resp.status == 201
        answer = await _answer(dc, "karaoke")
        # …and the bot carries on.
        assert "/song" in (await _answer(dc, "help")).content
    assert answer.content == (
        "⚠️ That command isn't available any more; type / to see what I can do."
    )


async def test_acejam_run_starts_the_bot_when_a_token_is_set(world: World) -> None:
    # The production path: run_bot → enabled_adapters → serve with discord.py's own waits.
    dc = world.dc
    stop = asyncio.Event()
    task = asyncio.create_task(run_bot(world.settings, stop))
    try:
        await dc.wait_for_commands_synced("song", "help", guild_id=GUILD)
        await dc.wait_until_ready()
        inter = await dc.invoke_slash(GUILD, CHANNEL, ALICE, "help")
        assert "/song" in (await inter.wait_for_original()).content
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert dc.requests_to("GET /gateway/bot")  # the gateway URL came from the REST base
