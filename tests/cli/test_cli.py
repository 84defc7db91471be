"""The real `acejam` command in subprocesses: generate, jobs, and recovery after kill -9."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
from pathlib import Path

from tests.fakes.audio import probe_audio
from tests.fakes.wavespeed import FakeWaveSpeed
from tests.harness import WAVESPEED_KEY
from tests.kit.cli import ACEJAM, acejam_env, acejam_killed_when, run_acejam


def _job_states(data_dir: Path) -> list[str]:
    database = data_dir / "acejam.db"
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
        try:
            return [row[0] for row in connection.execute("SELECT state FROM jobs ORDER BY id")]
        except sqlite3.OperationalError:  # not migrated yet
            return []


async def test_generate_writes_a_decodable_song(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        env = acejam_env(tmp_path / "data", fake.base_url)
        out_file = tmp_path / "song.mp3"
        code, out, err = await run_acejam(
            "generate",
            "--tags",
            "lo-fi, rainy piano",
            "--duration",
            "12",
            "--seed",
            "99",
            "-o",
            str(out_file),
            env=env,
            cwd=tmp_path,
        )
        assert code == 0, err
        assert f"file: {out_file}" in out
        assert "seed: 99" in out
        assert "duration: 12.0 s" in out
        assert abs(probe_audio(out_file)[0] - 12) <= 0.1
        code, out, _ = await run_acejam("jobs", env=env, cwd=tmp_path)
        assert code == 0 and "succeeded" in out
        # Fetched from the CDN host the API pointed at, with no DOWNLOAD_ALLOWED_HOSTS set.
        (prediction,) = fake.predictions.values()
        assert prediction.outputs[0].startswith(f"{fake.cdn_url}/predictions/{prediction.id}/")
        assert fake.downloads == [prediction.id] and "DOWNLOAD_ALLOWED_HOSTS" not in env
    assert WAVESPEED_KEY not in out + err


async def test_an_output_on_a_private_host_is_refused_and_the_operator_told_why(
    tmp_path: Path,
) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.faults.add_job(output_url="http://10.0.0.9/predictions/x/1.mp3")
        env = acejam_env(tmp_path / "data", fake.base_url)
        code, out, err = await run_acejam(
            "generate", "--tags", "ambient", "--duration", "6", env=env, cwd=tmp_path
        )
        assert code != 0 and "download_refused" in out + err
        code, out, _ = await run_acejam("jobs", "--json", env=env, cwd=tmp_path)
    assert code == 0
    (job,) = json.loads(out)
    assert job["state"] == "failed" and job["error_code"] == "download_refused"
    assert "DOWNLOAD_ALLOWED_HOSTS=10.0.0.9:80" in job["error_message"]
    assert job["cost_usd"] > 0  # WaveSpeed billed it: the month's spend says so


async def test_generate_refuses_bad_input_with_a_sentence(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        env = acejam_env(tmp_path / "data", fake.base_url)
        code, _, err = await run_acejam(
            "generate", "--tags", "rock", "--duration", "999", env=env, cwd=tmp_path
        )
    assert code == 2
    assert "999 s is too long: songs here are 5 to 240 s long." in err
    assert fake.submits == []


async def test_a_bad_setting_stops_startup_with_one_line(tmp_path: Path) -> None:
    env = acejam_env(tmp_path / "data", "http://127.0.0.1:9", MAX_DURATION="lots")
    code, _out, err = await run_acejam("jobs", env=env, cwd=tmp_path)
    assert code == 2
    assert err.strip().splitlines() == [
        "Invalid setting MAX_DURATION: Input should be a valid integer, unable to parse "
        "string as an integer"
    ]


async def test_run_without_tokens_explains_what_to_set(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        env = acejam_env(tmp_path / "data", fake.base_url)
        process = await asyncio.create_subprocess_exec(
            *ACEJAM, "run", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        text = ""
        async with asyncio.timeout(30):
            while "AceJam running" not in text:  # signal handlers are in place from here
                text += (await process.stderr.readline()).decode()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    assert "No chat platform is configured" in text
    assert "TELEGRAM_TOKEN" in text and "DISCORD_TOKEN" in text


async def test_kill_9_of_generate_then_run_finishes_the_job_once(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        fake.runtime = 75.0  # 3 s real: plenty of time to kill the generator mid-job
        env = acejam_env(tmp_path / "data", fake.base_url)
        # Killed once upstream has the job and our database says so; the instant between
        # the two is the one place a crash fails the job instead (see docs/jobs.md).
        await acejam_killed_when(
            lambda: _job_states(tmp_path / "data") == ["submitted"],
            *("generate", "--tags", "synthwave", "--duration", "10"),
            env=env,
            cwd=tmp_path,
        )

        log = (tmp_path / "run.log").open("wb")
        runner = await asyncio.create_subprocess_exec(
            *ACEJAM, "run", env=env, cwd=tmp_path, stdout=log, stderr=log
        )
        try:
            async with asyncio.timeout(30):
                while True:
                    _, out, _ = await run_acejam("jobs", env=env, cwd=tmp_path)
                    if "succeeded" in out:
                        break
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise AssertionError((tmp_path / "run.log").read_text() + out) from None
        finally:
            runner.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(runner.wait(), 20) == 0
        assert len(fake.submits) == 1
        assert "failed" not in out


async def test_admin_commands_block_set_quota_and_report(tmp_path: Path) -> None:
    async with FakeWaveSpeed(time_scale=0.04, api_key=WAVESPEED_KEY) as fake:
        env = acejam_env(tmp_path / "data", fake.base_url)
        code, _, err = await run_acejam(
            "generate", "--tags", "ambient", "--duration", "6", env=env, cwd=tmp_path
        )
        assert code == 0, err
        code, out, err = await run_acejam(
            "admin",
            "block",
            "--platform",
            "telegram",
            "--user",
            "42",
            "--note",
            "spam",
            env=env,
            cwd=tmp_path,
        )
        assert code == 0 and "blocked" in out, err
        code, out, _ = await run_acejam(
            "admin",
            "quota",
            "--platform",
            "telegram",
            "--user",
            "7",
            "unlimited",
            env=env,
            cwd=tmp_path,
        )
        assert code == 0 and "quota unlimited" in out
        code, out, _ = await run_acejam(
            "admin",
            "settings",
            "--platform",
            "telegram",
            "--scope",
            "-100",
            "max_duration=90",
            "blocked_words=foo,bar",
            "own_audio=on",
            env=env,
            cwd=tmp_path,
        )
        assert code == 0 and "max_duration = 90" in out and "('foo', 'bar')" in out
        assert "own_audio = on" in out
        code, _, err = await run_acejam(
            "admin",
            "settings",
            "--platform",
            "telegram",
            "--scope",
            "-100",
            "colour=blue",
            env=env,
            cwd=tmp_path,
        )
        assert code == 2 and "unknown chat setting" in err
        code, out, _ = await run_acejam("admin", "usage", env=env, cwd=tmp_path)
        assert code == 0 and "cli" in out and " 6 " in out
        code, _, err = await run_acejam("admin", "cancel", "999", env=env, cwd=tmp_path)
        assert code == 1 and "No such job" in err


async def test_generate_against_an_acestep_server(tmp_path: Path) -> None:
    from tests.fakes.acestep import FakeAceStep

    async with FakeAceStep(time_scale=0.04, api_key="ace-test-key") as fake:
        env = acejam_env(tmp_path / "data", "http://127.0.0.1:9")
        env.update(BACKEND="acestep", ACESTEP_API_URL=fake.base_url, ACESTEP_API_KEY="ace-test-key")
        del env["WAVESPEED_API_KEY"]
        lyrics = tmp_path / "lyrics.txt"
        lyrics.write_text("[Verse]\nrain on the window\n[Chorus]\nla la la\n")
        out_file = tmp_path / "ace.mp3"
        code, out, err = await run_acejam(
            "generate",
            "--tags",
            "lo-fi",
            "--duration",
            "15",
            "--seed",
            "5",
            "--lyrics-file",
            str(lyrics),
            "-o",
            str(out_file),
            env=env,
            cwd=tmp_path,
        )
    assert code == 0, err
    assert "seed: 5" in out and "duration: 15.0 s" in out
    assert abs(probe_audio(out_file)[0] - 15) <= 0.1
    body = fake.submits[0]
    assert body["lyrics"].startswith("[Verse]\nrain on the window")
    assert body["batch_size"] == 1 and body["use_random_seed"] is False and body["seed"] == 5


async def test_admin_values_spelled_the_chats_way_or_the_clis_way(tmp_path: Path) -> None:
    """`acejam admin` reads values with the chats' grammar (bot/admin_grammar.py): 10m is
    600, role quotas as role:seconds or role=value, and a value it can't use is refused with
    the sentence Discord and Telegram give."""
    env = acejam_env(tmp_path / "data", "http://127.0.0.1:9")  # nothing here reaches the backend
    scope = ["--platform", "telegram", "--scope", "-100"]
    code, out, err = await run_acejam(
        "admin",
        "settings",
        *scope,
        "quota_seconds_per_day=10m",
        "max_duration=1:30",
        "role_quotas=admins=1h;vip:600",
        "allow_nsfw=on",
        env=env,
        cwd=tmp_path,
    )
    assert code == 0, err
    assert "quota_seconds_per_day = 600" in out and "max_duration = 90" in out
    assert "role_quotas = {'admins': 3600, 'vip': 600}" in out and "allow_nsfw = True" in out
    code, out, err = await run_acejam(
        "admin", "quota", "--platform", "telegram", "--user", "7", "10m", env=env, cwd=tmp_path
    )
    assert code == 0 and "quota 10m" in out, err
    code, _, err = await run_acejam(
        "admin", "settings", *scope, "quota_seconds_per_day=lots", env=env, cwd=tmp_path
    )
    assert code == 2
    assert " ".join(err.split()) == (
        "“lots” isn't a quota. A quota is a number of seconds a day (like `600`, `10m`, `1h` "
        "or `1:30`), `unlimited`, or `default`."
    )
