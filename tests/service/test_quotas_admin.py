"""Quotas, fairness, budgets, overrides and moderation, through the real service."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from bot.clock import utcnow
from bot.domain import UNLIMITED, Destination, JobState
from bot.service import Accepted, Refused, Requester
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import (
    WAVESPEED_KEY,
    RecordingDelivery,
    running_core,
    wait_for_job,
    wavespeed_settings,
)
from tests.kit.audit import audit, rules_of
from tests.kit.memory_core import Running

GUILD = "guild-1"


def _user(n: int, roles: frozenset[str] = frozenset()) -> Requester:
    return Requester("discord", f"user-{n}", f"user {n}", roles=roles)


def _dest(requester: Requester, chat: str = "channel-1", scope: str = GUILD) -> Destination:
    return Destination(requester.platform, chat, requester.user_id, scope_id=scope)


async def _ask(core, requester: Requester, duration: int = 10, tags: str = "lo-fi", **kw):  # type: ignore[no-untyped-def]
    request = core.service.validate(tags=tags, duration=duration)
    return await core.service.submit(
        requester, kw.pop("dest", None) or _dest(requester), request, **kw
    )


async def test_ledger_balances_under_concurrent_load_with_failures_and_cancels(
    tmp_path: Path,
) -> None:
    rng = random.Random(1234)
    chat = RecordingDelivery("discord")
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"  # two dozen songs: WAV renders in no time, MP3 doesn't
        fake.faults.add_job(fail="boom", times=6)
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            wavespeed_max_concurrency=4,
            max_active_jobs_per_user=4,
            quota_seconds_per_day=100,
            max_active_jobs_per_chat=100,
        )
        async with running_core(settings, [chat]) as core:
            users = [_user(n) for n in range(6)]
            outcomes = await asyncio.gather(
                *(_ask(core, u, duration=rng.choice([10, 20, 30])) for u in users for _ in range(5))
            )
            accepted = [o for o in outcomes if isinstance(o, Accepted)]
            refused = [o for o in outcomes if isinstance(o, Refused)]
            assert refused and all(r.code in {"quota", "active_jobs"} for r in refused)
            for outcome in rng.sample(accepted, 5):
                await core.service.cancel(
                    outcome.job.id, Requester("discord", outcome.job.destination.user_id)
                )
            final = {JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED}
            jobs = [await wait_for_job(core, o.job.id, final, timeout=60) for o in accepted]
            for user in users:
                mine = [j for j in jobs if j.destination.user_id == user.user_id]
                if not mine:
                    continue
                balance = await audit(core).ledger_balance(mine[0].user_id)
                delivered = sum(j.request.duration for j in mine if j.state == JobState.DELIVERED)
                given_back = sum(j.request.duration for j in mine if j.state != JobState.DELIVERED)
                assert balance.get("reserve", 0) == delivered + given_back
                assert balance.get("refund", 0) == given_back  # exactly once each
                assert balance.get("commit", 0) == delivered
                quota = await core.service.quota(user, GUILD)
                assert quota.used_seconds == delivered <= 100
    assert {j.state for j in jobs} >= {JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED}


async def test_two_flooding_users_are_served_in_turn(tmp_path: Path, running: Running) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"  # nine songs rendered: WAV in no time, MP3 in seconds
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            wavespeed_max_concurrency=1,
            max_active_jobs_per_user=10,
            quota_seconds_per_day=1000,
        )
        fake.runtime = 100.0  # hold the single slot while both users queue up
        async with running(settings, [RecordingDelivery("discord")]) as core:
            first = await _ask(core, _user(0), tags="alice 0")
            await wait_for_job(core, first.job.id, {JobState.SUBMITTED, JobState.RUNNING})
            for n in range(1, 6):
                await _ask(core, _user(0), tags=f"alice {n}")
            for n in range(2):
                await _ask(core, _user(1), tags=f"bob {n}")
            fake.runtime = 1.0
            queue = await core.service.queue_of(_user(1))
            # Bob was never served: his first job goes before Alice's next, and his second
            # before Alice's too (she was served last).
            assert [e.position for e in queue] == [1, 2]
            last = await _ask(core, _user(2), tags="carol 0")
            assert isinstance(last, Accepted) and last.position == 2
            await core.service.cancel(first.job.id, _user(0))
            async with asyncio.timeout(30):
                while len(fake.submits) < 9:
                    await asyncio.sleep(0.05)
    order = [s["tags"] for s in fake.submits]
    assert order[:6] == ["alice 0", "bob 0", "carol 0", "alice 1", "bob 1", "alice 2"]


async def test_chat_and_user_overrides_and_roles(tmp_path: Path, running: Running) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"  # a 240 s song renders in no time as WAV
        settings = wavespeed_settings(tmp_path, fake.base_url, quota_seconds_per_day=600)
        async with running(settings, [RecordingDelivery("discord")]) as core:
            admin = core.service.admin
            await admin.update_chat_rules(
                "discord", GUILD, quota_seconds_per_day=20, role_quotas={"dj": 200}
            )
            small = await _ask(core, _user(1), duration=30)
            assert isinstance(small, Refused) and small.code == "quota"
            assert "daily allowance of 20 s" in small.message
            dj = await _ask(core, _user(2, frozenset({"dj"})), duration=30)
            assert isinstance(dj, Accepted)
            elsewhere = await _ask(
                core, _user(1), duration=30, dest=_dest(_user(1), scope="guild-2")
            )
            assert isinstance(elsewhere, Accepted)  # the small quota is guild-1's only
            # More than QUOTA_SECONDS_PER_DAY is the operator's to give (`acejam admin`).
            await core.admin.set_user_quota("discord", "user-1", GUILD, UNLIMITED)
            assert isinstance(await _ask(core, _user(1), duration=240), Accepted)
            quota = await core.service.quota(_user(1), GUILD)
            assert quota.unlimited
            await admin.set_blocked("discord", "user-3", "*", True, note="spam")
            blocked = await _ask(core, _user(3))
            assert isinstance(blocked, Refused) and blocked.code == "blocked"
            await admin.set_blocked("discord", "user-3", "*", False)
            assert isinstance(await _ask(core, _user(3)), Accepted)


async def test_monthly_budget_stops_new_jobs(tmp_path: Path, running: Running) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"  # a 60 s song renders in no time as WAV, not as MP3
        settings = wavespeed_settings(
            tmp_path, fake.base_url, monthly_budget_usd=0.02, wavespeed_price_per_second=0.0003
        )
        async with running(settings, [RecordingDelivery("discord")]) as core:
            first = await _ask(core, _user(1), duration=60)  # $0.018
            over = await _ask(core, _user(2), duration=10)  # would make $0.021
            await core.service.admin.update_chat_rules(
                "discord", "guild-2", monthly_budget_usd=0.001
            )
            guild_over = await _ask(
                core, _user(3), duration=5, dest=_dest(_user(3), scope="guild-2")
            )
            assert isinstance(first, Accepted)
            job = await wait_for_job(core, first.job.id, {JobState.DELIVERED})
            usage = await core.service.admin.usage(platform="discord")
    assert isinstance(over, Refused) and over.code == "budget"
    assert "budget for this month is used up" in over.message
    assert isinstance(guild_over, Refused) and "This chat's music budget" in guild_over.message
    assert job.cost_usd is not None and abs(job.cost_usd - 0.018) < 1e-9
    assert [(r.user_id, r.jobs, r.seconds) for r in usage] == [("user-1", 1, 60)]


async def test_blocked_words_channels_and_durations(tmp_path: Path, running: Running) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        settings = wavespeed_settings(tmp_path, fake.base_url, blocked_words=["badword"])
        async with running(settings, [RecordingDelivery("discord")]) as core:
            admin = core.service.admin
            await admin.update_chat_rules(
                "discord",
                GUILD,
                blocked_words=("grim",),
                allowed_channels=("music",),
                max_duration=60,
                default_duration=30,
            )
            words = await _ask(core, _user(1), tags="lofi BadWord", dest=_dest(_user(1), "music"))
            chat_word = await _ask(core, _user(1), tags="grim beats", dest=_dest(_user(1), "music"))
            fine_word = await _ask(
                core, _user(1), tags="grimy beats", dest=_dest(_user(1), "music")
            )
            channel = await _ask(core, _user(2), dest=_dest(_user(2), "general"))
            too_long = await _ask(core, _user(3), duration=90, dest=_dest(_user(3), "music"))
            request = core.service.validate(tags="jazz")  # no duration named
            defaulted = await core.service.submit(_user(4), _dest(_user(4), "music"), request)
    assert isinstance(words, Refused) and words.code == "blocked_word"
    assert isinstance(chat_word, Refused) and chat_word.code == "blocked_word"
    assert isinstance(fine_word, Accepted)
    assert isinstance(channel, Refused) and channel.code == "channel"
    assert isinstance(too_long, Refused) and "at most 60 seconds" in too_long.message
    assert isinstance(defaulted, Accepted) and defaulted.job.request.duration == 30


async def test_flagged_output_is_held_back_unless_the_chat_allows_it(
    tmp_path: Path, running: Running
) -> None:
    chat = RecordingDelivery("discord")
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"  # renders in no time; the format is not the point here
        fake.faults.add_job(nsfw=True, times=2)
        settings = wavespeed_settings(tmp_path, fake.base_url, wavespeed_price_per_second=0.0003)
        async with running(settings, [chat]) as core:
            held = await _ask(core, _user(1))
            held_job = await wait_for_job(core, held.job.id, {JobState.FAILED})
            await core.service.admin.update_chat_rules("discord", "guild-2", allow_nsfw=True)
            allowed = await _ask(core, _user(2), dest=_dest(_user(2), scope="guild-2"))
            allowed_job = await wait_for_job(core, allowed.job.id, {JobState.DELIVERED})
            quota = await core.service.quota(_user(1), GUILD)
            usage = await core.service.admin.usage(platform="discord")
    assert held_job.error_code == "nsfw"
    # Made and billed upstream, then refused by the chat's own rules: the song counts
    # against its asker's quota (or it could be asked for again and again for free), and
    # its cost stays on the month's bill.
    assert quota.used_seconds == 10
    assert held_job.cost_usd is not None and abs(held_job.cost_usd - 0.003) < 1e-9
    assert sum(row.cost_usd for row in usage) == pytest.approx(0.006)
    assert [d[0] for d in chat.delivered] == [allowed_job.id]
    [failed] = [e.message or "" for e in chat.events if e.kind.value == "failed"]
    assert "held it back" in failed and "It still counts against your quota." in failed


async def test_admin_settings_are_checked_and_list_edits_never_lost(
    tmp_path: Path, running: Running
) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        async with running(wavespeed_settings(tmp_path, fake.base_url)) as core:
            admin = core.service.admin
            problems = []
            for changes in (
                {"max_duration": 999},
                {"default_duration": 100, "max_duration": 60},
                {"quota_seconds_per_day": -5},
                {"max_active_jobs": 0},
                {"monthly_budget_usd": -1.0},
                {"colour": "blue"},
            ):
                try:
                    await admin.update_chat_rules("discord", GUILD, **changes)
                except ValueError as exc:
                    problems.append(str(exc))
            words = [f"word{n}" for n in range(12)]
            await asyncio.gather(
                *(admin.edit_list("discord", GUILD, "blocked_words", add=[w]) for w in words)
            )
            await admin.set_role_quota("discord", GUILD, "dj", 300)
            await core.admin.set_role_quota("discord", GUILD, "vip", UNLIMITED)  # the operator
            rules = await admin.edit_list("discord", GUILD, "blocked_words", remove=["WORD0"])
    assert problems == [
        "max duration must be between 5 and 240 seconds.",
        "The default duration can't be longer than the maximum.",
        "A quota is a number of seconds, or unlimited.",
        "The songs-at-once limit must be at least 1.",
        "A budget can't be negative.",
        "unknown chat setting(s): colour",
    ]
    assert sorted(rules.blocked_words) == sorted(words[1:])
    assert rules.role_quotas == {"dj": 300, "vip": UNLIMITED}
    assert rules.max_duration is None  # nothing invalid was stored


async def test_a_quota_change_here_does_not_copy_a_global_block(
    tmp_path: Path, running: Running
) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        async with running(wavespeed_settings(tmp_path, fake.base_url)) as core:
            admin = core.service.admin
            await admin.set_blocked("discord", "user-5", "*", True)
            await admin.set_user_quota("discord", "user-5", GUILD, 300)
            await admin.set_blocked("discord", "user-5", "*", False)
            outcome = await _ask(core, _user(5))
            standing = await admin.standing("discord", "user-5", GUILD)
    assert isinstance(outcome, Accepted)
    assert standing.quota_seconds_per_day == 300 and not standing.blocked


async def test_chat_admins_may_only_lower_the_operators_limits(
    tmp_path: Path, running: Running
) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.runtime = 100.0  # songs stay in the works while we count them
        fake.output_format = "wav"  # renders in no time; the format is not the point here
        settings = wavespeed_settings(
            tmp_path,
            fake.base_url,
            quota_seconds_per_day=60,
            max_active_jobs_per_chat=4,
            max_active_jobs_per_user=10,
        )
        async with running(settings, [RecordingDelivery("discord")]) as core:
            admin = core.service.admin  # what a guild's or chat's admins may do
            problems = []
            for attempt in (
                admin.update_chat_rules("discord", GUILD, quota_seconds_per_day=4800),
                admin.update_chat_rules("discord", GUILD, quota_seconds_per_day=UNLIMITED),
                admin.set_role_quota("discord", GUILD, "dj", 600),
                admin.set_user_quota("discord", "user-1", GUILD, UNLIMITED),
                admin.update_chat_rules("discord", GUILD, max_active_jobs=100),
            ):
                try:
                    await attempt
                except ValueError as refusal:
                    problems.append(str(refusal))
            assert problems == [
                "The bot's operator allows at most 1 min a day here; only they can raise it.",
                "The bot's operator allows at most 1 min a day here; only they can raise it.",
                "The bot's operator allows at most 1 min a day here; only they can raise it.",
                "The bot's operator allows at most 1 min a day for them here; only they can "
                "raise it.",
                "The bot's operator allows at most 4 songs at once here; only they can raise it.",
            ]
            rules = await admin.update_chat_rules(
                "discord", GUILD, quota_seconds_per_day=30, max_active_jobs=2
            )  # lowering is theirs to do
            assert (rules.quota_seconds_per_day, rules.max_active_jobs) == (30, 2)

            # Rules stored before the ceilings were checked (4,800 s, 1,000 songs at once)
            # don't lift them either.
            await core.rules.update_chat_rules(
                "discord",
                GUILD,
                {"quota_seconds_per_day": 4800, "max_active_jobs": 1000, "role_quotas": {}},
                utcnow(),
            )
            await rules_of(core).set_user_rules(
                "discord", "user-2", GUILD, utcnow(), quota_seconds_per_day=UNLIMITED
            )
            made = [await _ask(core, _user(1), duration=20) for _ in range(4)]
            assert [isinstance(m, Accepted) for m in made] == [True, True, True, False]
            assert isinstance(made[3], Refused) and made[3].code == "quota"
            assert "of your daily 1 min left" in made[3].message
            assert (await core.service.quota(_user(1), GUILD)).limit_seconds == 60
            assert (await core.service.quota(_user(2), GUILD)).limit_seconds == 60
            assert isinstance(await _ask(core, _user(2), duration=5), Accepted)  # the 4th
            busy = await _ask(core, _user(3), duration=5)
            assert isinstance(busy, Refused) and busy.code == "scope_busy"


async def test_only_the_operator_raises_limits_per_chat_or_per_user(
    tmp_path: Path, running: Running
) -> None:
    async with FakeWaveSpeed(time_scale=0.02, api_key=WAVESPEED_KEY) as fake:
        fake.output_format = "wav"
        settings = wavespeed_settings(tmp_path, fake.base_url, quota_seconds_per_day=60)
        async with running(settings, [RecordingDelivery("discord")]) as core:
            operator, admin = core.admin, core.service.admin  # `acejam admin`; a chat's admins
            await operator.update_chat_rules("discord", GUILD, quota_seconds_per_day=600)
            assert (await core.service.quota(_user(1), GUILD)).limit_seconds == 600
            assert (await core.service.quota(_user(1), "guild-2")).limit_seconds == 60
            await admin.update_chat_rules("discord", GUILD, quota_seconds_per_day=300)
            assert (await core.service.quota(_user(1), GUILD)).limit_seconds == 300
            await admin.set_role_quota("discord", GUILD, "dj", 600)  # back up to the ceiling
            try:
                await admin.update_chat_rules("discord", GUILD, quota_seconds_per_day=601)
            except ValueError as refusal:
                assert "at most 10 min a day here" in str(refusal)
            else:
                raise AssertionError("a chat admin raised the operator's ceiling")

            await operator.set_user_quota("discord", "user-2", "*", 1200)  # everywhere
            assert (await core.service.quota(_user(2), "guild-2")).limit_seconds == 1200
            assert isinstance(
                await _ask(core, _user(2), duration=240, dest=_dest(_user(2), scope="guild-2")),
                Accepted,
            )
            await admin.set_user_quota("discord", "user-2", "guild-2", 900)  # lower: fine
            assert (await core.service.quota(_user(2), "guild-2")).limit_seconds == 900
            try:
                await admin.set_user_quota("discord", "user-2", "guild-2", 1500)
            except ValueError as refusal:
                assert "at most 20 min a day for them here" in str(refusal)
            else:
                raise AssertionError("a chat admin raised the operator's grant")
            await operator.set_user_quota("discord", "user-3", GUILD, UNLIMITED)
            assert (await core.service.quota(_user(3), GUILD)).unlimited
