"""`acejam doctor` as an operator runs it, against the loopback fakes: one ✓/✗ line per check,
what to do on each ✗, and exit 0 only when everything passes.

The checks run in this process (``diagnose`` is what the command runs, on settings built as
from .env); the last tests run the real command for its exit codes and printed lines."""

from __future__ import annotations

import asyncio
import secrets
import socket
from pathlib import Path
from typing import Any

from bot.app import web_listener
from bot.config import Settings
from bot.doctor import diagnose, line
from storage.db import HEAD_REVISION
from tests.fakes.acestep import FakeAceStep
from tests.fakes.discord import FakeDiscord, Perm
from tests.fakes.telegram import FakeTelegram
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY, acestep_settings, running_core, wavespeed_settings
from tests.kit.cli import acejam_env, run_acejam

GUILD = 900_000_000_000_000_001
TG_TOKEN = "123456:DOCTOR-TOKEN"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _doctor(settings: Settings) -> dict[str, str]:
    """``{check name: "✓ detail" | "✗ detail → fix"}``, as the command prints them."""
    lines: dict[str, str] = {}
    for finding in await diagnose(settings):
        mark, _, rest = line(finding).partition(" ")
        name, _, detail = rest.partition(": ")
        lines[name] = f"{mark} {detail}"
    return lines


def _fresh(tmp_path: Path) -> Path:
    """A DATA_DIR of its own: the cases run at once, each as a doctor on its own host."""
    return tmp_path / secrets.token_hex(4)


def _failed(lines: dict[str, str]) -> set[str]:
    return {name for name, text in lines.items() if text.startswith("✗")}


async def test_wavespeed_telegram_and_discord_healthy_then_each_broken(tmp_path: Path) -> None:
    async with (
        FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws,
        FakeTelegram(token=TG_TOKEN) as tg,
        FakeDiscord() as dc,
    ):
        dc.add_guild(GUILD, "Jam Club")
        dc.add_guild(  # neither @everyone nor the bot's role may attach files
            GUILD + 1,
            "No Files",
            everyone_permissions=Perm.EVERYONE_DEFAULT & ~Perm.ATTACH_FILES,
            bot_permissions=Perm.BOT_DEFAULT & ~Perm.ATTACH_FILES,
        )
        dc.add_guild(GUILD + 2, "Admins", bot_permissions=Perm.ADMINISTRATOR)
        dc.add_guild(  # neither @everyone nor the bot's role may start a thread
            GUILD + 3,
            "No Threads",
            everyone_permissions=Perm.EVERYONE_DEFAULT & ~Perm.CREATE_PUBLIC_THREADS,
        )
        good: dict[str, Any] = {
            "telegram_token": TG_TOKEN,
            "telegram_api_base_url": tg.base_url,
            "discord_token": dc.token,
            "discord_api_base_url": dc.api_base,
            "discord_guild_ids": f"{GUILD},{GUILD + 2},{GUILD + 3}",
        }

        def settings(**changes: Any) -> Settings:
            return wavespeed_settings(_fresh(tmp_path), ws.base_url, **good | changes)

        healthy, bad_key, bad_tokens, no_files, offline = await asyncio.gather(
            _doctor(settings()),
            _doctor(settings(wavespeed_api_key="ws-wrong-key")),
            _doctor(settings(telegram_token="123456:WRONG", discord_token="wrong")),
            _doctor(settings(discord_guild_ids=str(GUILD + 1))),
            _doctor(settings(wavespeed_base_url=f"http://127.0.0.1:{_closed_port()}")),
        )

    assert _failed(healthy) == set(), healthy
    assert healthy["Database"].startswith("✓ sqlite+aiosqlite:///")
    assert healthy["Database"].endswith(
        f"answers (empty; migrated to {HEAD_REVISION} at the next start)"
    )
    assert healthy["WaveSpeed"] == f"✓ key accepted at {ws.base_url[7:]}, balance $10.00"
    assert healthy["Telegram"] == "✓ token accepted: @AceJamBot"
    assert healthy["Discord"] == "✓ token accepted: AceJam"
    assert healthy["Discord gateway"].startswith("✓ ws://127.0.0.1:")
    can_post = (
        "✓ can post songs: View Channels, Send Messages, Embed Links, Attach Files, "
        "Read Message History, Send Messages in Threads"
    )
    assert healthy[f"Discord guild {GUILD} (Jam Club)"] == can_post
    assert healthy[f"Discord guild {GUILD + 3} (No Threads)"] == (
        f"{can_post}; no Create Public Threads, so a jam stays in the channel it was started in"
    )
    assert healthy[f"Discord guild {GUILD + 2} (Admins)"] == "✓ Administrator"
    assert healthy["Disk space"].startswith("✓ ") and " MB free in " in healthy["Disk space"]

    assert _failed(bad_key) == {"WaveSpeed"}
    assert bad_key["WaveSpeed"] == (
        f"✗ {ws.base_url[7:]} refused the key (HTTP 401: Unauthorized: invalid or inactive "
        "API key) → copy a valid key from https://wavespeed.ai/accesskey into WAVESPEED_API_KEY"
    )

    assert _failed(bad_tokens) == {"Telegram", "Discord"}
    assert bad_tokens["Telegram"] == (
        "✗ token refused (HTTP 401: Unauthorized) → ask @BotFather for the bot's token "
        "(/token) and put it in TELEGRAM_TOKEN"
    )
    assert bad_tokens["Discord"].startswith("✗ token refused (HTTP 401) → copy the token")
    assert not any(name.startswith("Discord g") for name in bad_tokens)  # nothing more to ask

    assert _failed(no_files) == {f"Discord guild {GUILD + 1} (No Files)"}
    assert no_files[f"Discord guild {GUILD + 1} (No Files)"] == (
        "✗ missing Attach Files → give the bot's role these permissions in Server Settings → Roles"
    )

    assert _failed(offline) == {"WaveSpeed"}
    assert offline["WaveSpeed"].startswith("✗ cannot reach http://127.0.0.1:")
    assert offline["WaveSpeed"].endswith(
        "→ check WAVESPEED_BASE_URL and that this machine is online"
    )


async def test_acestep_models_language_model_key_and_a_guild_the_bot_is_not_in(
    tmp_path: Path,
) -> None:
    async with (
        FakeAceStep(api_key="ace-key", models=("acestep-v15-turbo", "acestep-v15-base")) as ace,
        FakeAceStep(lm_model=None) as no_lm,
        FakeDiscord() as dc,
    ):
        discord = {"discord_token": dc.token, "discord_api_base_url": dc.api_base}

        def settings(url: str, **changes: Any) -> Settings:
            return acestep_settings(_fresh(tmp_path), url, **discord | changes)

        healthy, wrong_key, without_lm, offline = await asyncio.gather(
            _doctor(settings(ace.base_url, acestep_api_key="ace-key")),
            _doctor(settings(ace.base_url, acestep_api_key="nope")),
            _doctor(settings(no_lm.base_url, discord_guild_ids="123")),
            _doctor(settings(f"http://127.0.0.1:{_closed_port()}")),
        )

    assert _failed(healthy) == set(), healthy
    assert healthy["ACE-Step server"] == f"✓ {ace.base_url[7:]} answers /health"
    assert healthy["ACE-Step models"] == (
        "✓ acestep-v15-turbo, acestep-v15-base (default acestep-v15-turbo)"
    )
    assert healthy["ACE-Step language model"] == "✓ loaded (acestep-5Hz-lm-1.7B)"

    assert _failed(wrong_key) == {"ACE-Step key"}
    assert wrong_key["ACE-Step key"] == (
        f"✗ {ace.base_url[7:]} refused the key (HTTP 401) → set ACESTEP_API_KEY to the "
        "server's ACESTEP_API_KEY"
    )

    assert _failed(without_lm) == {"ACE-Step language model", "Discord guild 123"}
    assert without_lm["ACE-Step language model"].startswith("✗ not loaded: songs that need it")
    assert "ACESTEP_INIT_LLM=true" in without_lm["ACE-Step language model"]
    assert without_lm["Discord guild 123"].startswith(
        "✗ the bot is not in this server (or the id is wrong) → invite it with "
        "https://discord.com/oauth2/authorize?client_id="
    )

    assert _failed(offline) == {"ACE-Step server"}
    assert "`uv run acestep-api`" in offline["ACE-Step server"]
    assert "ACE-Step models" not in offline


async def test_no_platform_webhook_url_and_disk_space(tmp_path: Path) -> None:
    port = _closed_port()
    async with FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws:

        def settings(**changes: Any) -> Settings:
            values: dict[str, Any] = {
                "wavespeed_webhook_url": f"http://127.0.0.1:{port}/hooks/wavespeed",
                "wavespeed_webhook_listen": f"127.0.0.1:{port}",
            }
            return wavespeed_settings(_fresh(tmp_path), ws.base_url, **values | changes)

        reached, unrouted = await asyncio.gather(
            _doctor(settings()),
            _doctor(
                settings(
                    wavespeed_webhook_url=f"http://127.0.0.1:{_closed_port()}/hooks",
                    min_free_disk_mb=10**12,
                )
            ),
        )
    assert _failed(reached) == {"Chat platforms"}, reached
    assert reached["Chat platforms"] == (
        "✗ none configured: the bot would only work through `acejam generate` → set "
        "TELEGRAM_TOKEN (from @BotFather) and/or DISCORD_TOKEN (Discord developer portal)"
    )
    assert reached["Webhook URL"] == (
        f"✓ http://127.0.0.1:{port}/hooks/wavespeed reaches this machine's 127.0.0.1:{port}"
    )
    assert _failed(unrouted) == {"Chat platforms", "Webhook URL", "Disk space"}
    assert unrouted["Webhook URL"].startswith("✗ cannot reach http://127.0.0.1:")
    assert unrouted["Disk space"].endswith(
        "under MIN_FREE_DISK_MB=1000000000000 → free some space, lower AUDIO_RETENTION_DAYS, "
        "or move DATA_DIR"
    )


async def test_the_jam_board_url_reached_unrouted_or_served_by_nothing(tmp_path: Path) -> None:
    port = _closed_port()
    async with FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws:

        def settings(**changes: Any) -> Settings:
            values: dict[str, Any] = {
                "public_url": f"http://127.0.0.1:{port}/acejam",  # a proxy may strip the prefix
                "web_listen": f"127.0.0.1:{port}",
            }
            return wavespeed_settings(_fresh(tmp_path), ws.base_url, **values | changes)

        elsewhere = _closed_port()
        reached, unrouted, unserved = await asyncio.gather(
            _doctor(settings()),
            _doctor(settings(public_url=f"http://127.0.0.1:{elsewhere}")),
            _doctor(settings(web_listen=None)),
        )
    assert _failed(reached) == {"Chat platforms"}, reached
    assert reached["Jam board URL"] == (
        f"✓ http://127.0.0.1:{port}/acejam/jam/acejam-doctor reaches this machine's "
        f"127.0.0.1:{port}"
    )
    assert _failed(unrouted) == {"Chat platforms", "Jam board URL"}
    assert unrouted["Jam board URL"].startswith(
        f"✗ cannot reach http://127.0.0.1:{elsewhere}/jam/acejam-doctor: "
    )
    assert unrouted["Jam board URL"].endswith(
        f"→ route that URL (HTTPS proxy, port forward) to 127.0.0.1:{port}"
    )
    assert unserved["Jam board URL"] == (
        f"✗ PUBLIC_URL is http://127.0.0.1:{port}/acejam, but WEB_LISTEN is not set: nothing "
        "serves the board → set WEB_LISTEN (e.g. 127.0.0.1:8080) and route PUBLIC_URL's /jam/ "
        "to it"
    )


async def test_the_webhook_and_board_urls_while_the_bot_runs_and_holds_the_port(
    tmp_path: Path,
) -> None:
    port = _closed_port()
    async with FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws:
        settings = wavespeed_settings(
            _fresh(tmp_path),
            ws.base_url,
            wavespeed_webhook_url=f"http://127.0.0.1:{port}/hooks/wavespeed",
            public_url=f"http://127.0.0.1:{port}",
            web_listen=f"127.0.0.1:{port}",
        )
        async with running_core(settings) as core, web_listener(core):
            lines = await _doctor(settings)
    # The bot's own listener answers a GET on the webhook's POST route, and the board has no
    # jam by that name: both URLs reach it.
    assert lines["Webhook URL"] == f"✓ http://127.0.0.1:{port}/hooks/wavespeed answers (HTTP 405)"
    assert lines["Jam board URL"] == (
        f"✓ http://127.0.0.1:{port}/jam/acejam-doctor answers (HTTP 404)"
    )


async def test_the_command_prints_one_line_per_check_and_exits_0_only_when_all_pass(
    tmp_path: Path,
) -> None:
    async with FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws, FakeTelegram(token=TG_TOKEN) as tg:
        telegram = {"TELEGRAM_TOKEN": TG_TOKEN, "TELEGRAM_API_BASE_URL": tg.base_url}
        env = acejam_env(tmp_path / "data", ws.base_url, **telegram)
        (ok, out, err), (unset, unset_out, _) = await asyncio.gather(
            run_acejam("doctor", env=env, cwd=tmp_path),
            run_acejam("doctor", env=env | {"MAX_DURATION": "lots"}, cwd=tmp_path),
        )
    assert ok == 0, out + err
    assert [text.split(":")[0] for text in out.splitlines()] == [
        "✓ Settings",
        "✓ Database",
        "✓ WaveSpeed",
        "✓ Telegram",
        "✓ Disk space",
    ]
    assert unset == 1
    assert unset_out.splitlines() == [
        "✗ Settings: Invalid setting MAX_DURATION: Input should be a valid integer, unable to "
        "parse string as an integer → fix it in .env (see .env.example)"
    ]


async def test_a_host_that_only_makes_songs_has_no_chat_to_check(tmp_path: Path) -> None:
    async with FakeWaveSpeed(api_key=WAVESPEED_KEY) as ws:
        findings = await diagnose(
            wavespeed_settings(_fresh(tmp_path), ws.base_url), platforms=False
        )
    assert [(f.name, f.ok) for f in findings] == [
        ("Database", True),
        ("WaveSpeed", True),
        ("Disk space", True),
    ]
