"""What an ACE-Step server's result entries say, read defensively (bot/backends/acestep_results.py):
the shapes the real server sends (acestep/api/jobs/local_cache_updates.py), "N/A" and all."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.backends.acestep_results import status_from, written_of
from bot.ports import RemoteOutput, RemoteState, WrittenSong


def url(file: str) -> str:
    return f"http://engine{file}"


def entry(file: str, **fields: Any) -> dict[str, Any]:
    return {"file": file, "status": 1, "prompt": "fado", "lyrics": "", **fields}


def item(status: int, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"task_id": "t", "status": status, "result": json.dumps(entries)}


def test_each_take_gets_its_place_in_the_batchs_seed_list() -> None:
    entries = [entry(f"/v1/audio?path=/o/t_{i}.mp3", seed_value="11,22,33") for i in range(3)]
    status = status_from(item(1, entries), url)
    assert status is not None and status.state is RemoteState.SUCCEEDED
    assert [(out.url[-7:], out.seed) for out in status.outputs] == [
        ("t_0.mp3", 11),
        ("t_1.mp3", 22),
        ("t_2.mp3", 33),
    ]
    assert (status.output_url, status.seed_used) == (status.outputs[0].url, 11)


@pytest.mark.parametrize(
    ("seed_value", "seeds"),
    [("5", [5, 5]), ("", [None, None]), ("1,x", [1, None]), (7, [7, 7]), (None, [None, None])],
)
def test_odd_seed_values_never_break_the_takes(seed_value: Any, seeds: list[int | None]) -> None:
    entries = [entry("/a", seed_value=seed_value), entry("/b", seed_value=seed_value)]
    status = status_from(item(1, entries), url)
    assert status is not None and [out.seed for out in status.outputs] == seeds


@pytest.mark.parametrize(
    ("metas", "expected"),
    [
        (
            {"bpm": 120, "duration": 95, "keyscale": "C Major", "timesignature": "4"},
            (120, "C major", 4, 95.0),
        ),
        ({"bpm": "N/A", "duration": "N/A", "keyscale": "N/A", "timesignature": "N/A"}, None),
        ({"bpm": "96.0", "duration": 61.5, "keyscale": "f#m", "timesignature": "6/8"}, None),
        ({}, (None, None, None, None)),
        ({"bpm": True, "duration": -3, "keyscale": "", "timesignature": None}, None),
        ({"keyscale": "weird mode"}, (None, "weird mode", None, None)),
    ],
)
def test_what_the_model_wrote_is_read_whatever_the_metas_say(
    metas: dict[str, Any], expected: tuple[Any, ...] | None
) -> None:
    written = written_of(entry("/a", prompt="  fado,  guitar ", lyrics="[Verse]\nx\n", metas=metas))
    assert written is not None
    assert (written.tags, written.lyrics) == ("fado, guitar", "[Verse]\nx")
    got = (written.bpm, written.key_scale, written.time_signature, written.duration)
    if expected is None:  # all "N/A" or unusable
        expected = (
            (96, "F# minor", 6, 61.5) if metas.get("bpm") == "96.0" else (None, None, None, None)
        )
    assert got == expected


def test_no_caption_means_nothing_written() -> None:
    assert written_of({"file": "/a", "prompt": "", "metas": {"bpm": 100}}) is None
    assert written_of({"file": "/a"}) is None


@pytest.mark.parametrize(
    ("entries", "code"),
    [
        ([], "failed"),  # the published server: no reason
        (
            [{"file": "", "status": 2, "error": "5Hz LM init failed: no GPU memory"}],
            "no_language_model",
        ),
        ([{"file": "", "status": 2, "error": "CUDA out of memory"}], "failed"),
    ],
)
def test_a_failure_says_whether_the_language_model_was_missing(
    entries: list[dict[str, Any]], code: str
) -> None:
    status = status_from(item(2, entries), url)
    assert status is not None and status.state is RemoteState.FAILED and status.error_code == code


def test_a_take_without_a_file_is_not_an_output() -> None:
    status = status_from(item(1, [entry(""), entry("/b", seed_value="9")]), url)
    assert status is not None
    assert status.outputs == (
        RemoteOutput("http://engine/b", 9, WrittenSong(tags="fado", lyrics="")),
    )


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("5Hz LM init failed (needed for format): model not found", "no_language_model"),
        ("LLM not initialized", "no_language_model"),
        ("create_sample failed: LLM generation timed out", "failed"),  # it ran, then failed
        ("LLM produced invalid metadata", "failed"),
    ],
)
def test_only_a_missing_model_reads_as_no_language_model(reason: str, code: str) -> None:
    status = status_from(item(2, [{"file": "", "status": 2, "error": reason}]), url)
    assert status is not None and status.error_code == code
