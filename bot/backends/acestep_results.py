"""Reading an ACE-Step server's ``/query_result`` items (``/work/shared/docs/upstreams.md`` §2).

An item is ``{task_id, status: 0|1|2, result, progress_text}`` where ``result`` is a JSON
*string* holding a list. On success the list has one entry per take (``batch_size``), and
every entry repeats what the whole batch shares (``acestep/api/jobs/local_cache_updates.py``):

- ``file``: ``/v1/audio?path=...``, this take's own;
- ``seed_value``: *all* the batch's seeds, comma-separated, in the order of the entries
  (``_extract_seed_value`` in ``acestep/api/job_result_payload.py``);
- ``prompt``/``lyrics``: the caption and lyrics the music was made from, i.e. what the 5 Hz
  language model wrote in sample mode (``metas.prompt``/``metas.lyrics`` keep what was sent);
- ``metas``: ``bpm``, ``duration``, ``keyscale``, ``timesignature``, each possibly ``"N/A"``.

Newer servers add ``error`` to a failed entry (``"5Hz LM init failed: ..."``); the published
one says nothing. Everything is read defensively: a value that can't be read is None.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from bot.controls import canonical_key
from bot.ports import RemoteOutput, RemoteState, RemoteStatus, WrittenSong

FAILURE_MESSAGE = "the engine reported a failure"
# A failed job's error that says the 5 Hz language model was missing or would not load
# ("5Hz LM init failed: ...", "LLM not initialized"), not one where it ran and failed.
_LM_FAILURE = re.compile(
    r"\b(lm init failed|llm (is )?not (initialized|loaded|available)|no language model)", re.I
)


def status_from(item: Mapping[str, Any], output_url: Callable[[str], str]) -> RemoteStatus | None:
    """The item's status, or None when it can't be read (transient for that id)."""
    entries = entries_of(item.get("result"))
    try:
        code = int(item.get("status"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if entries is None:
        return None
    if code == 0:
        running = next((e for e in entries if "progress" in e or "stage" in e), None)
        if running is None or str(running.get("stage", "")).lower() == "queued":
            return RemoteStatus(RemoteState.PENDING)
        return RemoteStatus(
            RemoteState.RUNNING,
            progress=fraction(running.get("progress")),
            stage=str(running["stage"]) if running.get("stage") else None,
        )
    if code == 1:
        outputs = takes_of(entries, output_url)
        if not outputs:
            return RemoteStatus(
                RemoteState.FAILED,
                error_code="no_output",
                error_message="succeeded without an output file",
            )
        return RemoteStatus(RemoteState.SUCCEEDED, progress=1.0, outputs=outputs)
    if code == 2:
        reason = _error_text(item, entries)
        if reason and _LM_FAILURE.search(reason):
            return RemoteStatus(
                RemoteState.FAILED, error_code="no_language_model", error_message=reason[:300]
            )
        return RemoteStatus(
            RemoteState.FAILED, error_code="failed", error_message=reason or FAILURE_MESSAGE
        )
    return None


def takes_of(
    entries: list[dict[str, Any]], output_url: Callable[[str], str]
) -> tuple[RemoteOutput, ...]:
    """One output per entry with a file, in the server's order, each with its own seed."""
    with_file = [e for e in entries if isinstance(e.get("file"), str) and e["file"]]
    outputs = []
    for index, entry in enumerate(with_file):
        seeds = seeds_of(entry.get("seed_value"))
        # Entry i's seed is the i-th of the batch's list; a lone seed is the entry's own.
        seed: int | None
        if len(seeds) == 1:
            seed = seeds[0]
        else:
            seed = seeds[index] if index < len(seeds) else None
        outputs.append(RemoteOutput(output_url(entry["file"]), seed, written_of(entry)))
    return tuple(outputs)


def written_of(entry: Mapping[str, Any]) -> WrittenSong | None:
    """What the entry says the music was made from; None when it says no caption at all."""
    tags = entry.get("prompt")
    if not isinstance(tags, str) or not tags.strip():
        return None
    lyrics = entry.get("lyrics")
    metas = entry.get("metas")
    metas = metas if isinstance(metas, Mapping) else {}
    key = _text(metas.get("keyscale", metas.get("key_scale")))
    language = _text(
        metas.get("vocal_language", metas.get("language", entry.get("vocal_language")))
    )
    return WrittenSong(
        tags=" ".join(tags.split()),
        lyrics=lyrics.strip() if isinstance(lyrics, str) else "",
        bpm=_whole(metas.get("bpm")),
        key_scale=(canonical_key(key) or key) if key else None,
        time_signature=_beats(metas.get("timesignature", metas.get("time_signature"))),
        duration=_seconds(metas.get("duration")),
        vocal_language=language.lower() if language and language.lower() != "unknown" else None,
    )


def entries_of(result: Any) -> list[dict[str, Any]] | None:
    """``result`` (a JSON string holding a list) as a list of dicts; None if unreadable."""
    if result is None or result == "":
        return []
    if isinstance(result, str):
        try:
            result = json.loads(result)
        except ValueError:
            return None
    if isinstance(result, dict):
        result = [result]
    if not isinstance(result, list):
        return None
    return [entry for entry in result if isinstance(entry, dict)]


def fraction(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return min(1.0, max(0.0, number)) if math.isfinite(number) else None


def seeds_of(value: Any) -> list[int | None]:
    """``seed_value`` comes as an int, a string, or "123,456" (one per take, in order; one
    that can't be read keeps its place as None)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value] if value >= 0 else []
    if isinstance(value, str) and value.strip():
        parts = [part.strip() for part in value.split(",")]
        return [int(part) if part.isdigit() else None for part in parts]
    return []


def _error_text(item: Mapping[str, Any], entries: list[dict[str, Any]]) -> str | None:
    for source in (*entries, item):
        reason = source.get("error")
        if isinstance(reason, str) and reason.strip():
            return reason.strip()
    return None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return None if text in ("", "N/A", "None") else text


def _number(value: Any) -> float | None:
    text = _text(value)
    if text is None:
        return None
    try:
        number = float(text.lower().removesuffix("bpm").removesuffix("s").strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _whole(value: Any) -> int | None:
    number = _number(value)
    return round(number) if number is not None else None


def _seconds(value: Any) -> float | None:
    return _number(value)


def _beats(value: Any) -> int | None:
    """``4``, ``"4"`` or ``"4/4"`` → 4 (beats per bar)."""
    text = _text(value)
    if text is None:
        return None
    return _whole(text.split("/")[0])
