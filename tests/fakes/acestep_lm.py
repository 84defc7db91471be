"""The fake ACE-Step server's 5 Hz language model: what it writes, and which requests need it.

As the real server decides (``acestep/api/job_llm_preparation.py``): a request needs the
model when it asks for ``thinking``, ``sample_mode``, a non-empty ``sample_query`` or
``use_format``. In sample mode the model's caption, lyrics, BPM, key, time signature and
length *replace* what was sent (only a non-"en" ``vocal_language`` is passed on to it); with
``use_format`` it polishes the caption and lyrics sent and keeps the values given.

Without the model, newer servers fail just those jobs, with an ``error`` saying so; the
published wheel fails every job and says nothing (``FakeAceStep(old_server=True)``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

NO_LM_ERROR = "5Hz LM init failed: LLM not initialized (ACESTEP_INIT_LLM=false)"


@dataclass(frozen=True)
class Written:
    """What the fake model writes for a description (tests may set their own)."""

    caption: str = "melancholic fado, portuguese guitar, rain ambience, female vocals"
    lyrics: str = "[Verse]\nChuva na janela\n[Chorus]\nLisboa chora comigo"
    bpm: int | str = 72
    keyscale: str = "D Minor"
    timesignature: str = "3"
    duration: float | str = 10.0  # short: the fake encodes real audio of this length
    language: str = "pt"


def needs_lm(body: dict[str, Any]) -> bool:
    query = body.get("sample_query")
    return any(
        (
            _flag(body.get("thinking")),
            _flag(body.get("sample_mode")),
            isinstance(query, str) and bool(query.strip()),
            _flag(body.get("use_format")),
        )
    )


def written_for(body: dict[str, Any], model: Written) -> Written | None:
    """What the music is made from when the model wrote it; None when it did not."""
    query = body.get("sample_query")
    if _flag(body.get("sample_mode")) or (isinstance(query, str) and query.strip()):
        language = body.get("vocal_language")
        if isinstance(language, str) and language not in ("", "en", "unknown"):
            return replace(model, language=language)
        return model
    if _flag(body.get("use_format")):
        # Format keeps what the user gave and polishes the caption and lyrics.
        caption = f"{body.get('prompt', '')}, polished".strip(", ")
        lyrics = str(body.get("lyrics", "")).strip() + "\n[Outro]"
        given = {
            "bpm": body.get("bpm"),
            "keyscale": body.get("key_scale"),
            "timesignature": body.get("time_signature"),
            "duration": body.get("audio_duration"),
            "language": body.get("vocal_language"),
        }
        kept = {name: value for name, value in given.items() if value not in (None, "")}
        return replace(model, caption=caption, lyrics=lyrics, **kept)
    return None


def format_answer(body: dict[str, Any], model: Written) -> dict[str, Any]:
    """``/format_input``'s ``data``: the caption and lyrics polished, the metadata filled."""
    return {
        "caption": f"{body.get('prompt', '')}, polished".strip(", "),
        "lyrics": str(body.get("lyrics", "")),
        "bpm": model.bpm,
        "key_scale": model.keyscale,
        "time_signature": model.timesignature,
        "duration": model.duration,
        "vocal_language": model.language,
    }


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)
