"""Musical controls a request may carry, and the sentences that refuse a bad one. Pure.

The ranges are ACE-Step 1.5's own (``acestep/constants.py``: BPM 30–300, keys as note,
accidental and major/minor, time signatures 2, 3, 4 and 6, its list of vocal languages), the
only model we drive that takes them as parameters; a backend without such parameters gets
them written into the tags (:func:`as_tags`).
"""

from __future__ import annotations

import re
from typing import TypedDict, Unpack

from bot.domain import Controls, GenerationRequest, Invalid, Limits, validate_request

BPM_MIN = 30
BPM_MAX = 300
TIME_SIGNATURES = (2, 3, 4, 6)
# ACE-Step 1.5's VALID_LANGUAGES (ISO 639-1 codes, "yue" for Cantonese), less "unknown".
VOCAL_LANGUAGES = (
    "ar", "az", "bg", "bn", "ca", "cs", "da", "de", "el", "en",
    "es", "fa", "fi", "fr", "he", "hi", "hr", "ht", "hu", "id",
    "is", "it", "ja", "ko", "la", "lt", "ms", "ne", "nl", "no",
    "pa", "pl", "pt", "ro", "ru", "sa", "sk", "sr", "sv", "sw",
    "ta", "te", "th", "tl", "tr", "uk", "ur", "vi", "yue", "zh",
)  # fmt: skip
# "C major", "F# minor", "Bb major", "B♭ minor"; "Cm" and "c#" are read as minor/major too.
_KEY = re.compile(
    r"(?P<note>[A-Ga-g])\s*(?P<accidental>[#♯b♭]?)\s*(?P<mode>major|minor|maj|min|m)?",
    re.IGNORECASE,
)
_TIME = re.compile(r"([0-9])(?:\s*/\s*[0-9]{1,2})?")


def parse_controls(
    *,
    bpm: int | str | None = None,
    key: str | None = None,
    time_signature: int | str | None = None,
    language: str | None = None,
) -> Controls | Invalid:
    """Each value as a user typed it (blank = not given), or the sentence naming what's allowed."""
    parsed_bpm = None
    if not _blank(bpm):
        text = str(bpm).strip().lower().removesuffix("bpm").strip()
        if not re.fullmatch(r"[0-9]{1,4}", text) or not BPM_MIN <= int(text) <= BPM_MAX:
            return Invalid(
                f"“{_short(bpm)}” isn't a tempo I can use: BPM is a whole number from "
                f"{BPM_MIN} to {BPM_MAX}, e.g. `bpm=120`."
            )
        parsed_bpm = int(text)
    parsed_key = None
    if not _blank(key):
        parsed_key = canonical_key(str(key))
        if parsed_key is None:
            return Invalid(
                f"“{_short(key)}” isn't a key I know: write a note A–G, optionally # or b, "
                "and major or minor, e.g. `key=C major` or `key=F# minor`."
            )
    parsed_time = None
    if not _blank(time_signature):
        match = _TIME.fullmatch(str(time_signature).strip())
        if match is None or int(match[1]) not in TIME_SIGNATURES:
            allowed = ", ".join(str(t) for t in TIME_SIGNATURES)
            return Invalid(
                f"“{_short(time_signature)}” isn't a time signature I can use: beats per bar "
                f"are {allowed} (as in 2/4, 3/4, 4/4, 6/8), e.g. `time=3`."
            )
        parsed_time = int(match[1])
    parsed_language = None
    if not _blank(language):
        code = str(language).strip().lower()
        if code not in VOCAL_LANGUAGES:
            return Invalid(
                f"“{_short(language)}” isn't a vocal language code I know: use a two-letter "
                f"code such as en, es, pt, fr, de, ja, ko or zh ({len(VOCAL_LANGUAGES)} in all: "
                f"{', '.join(VOCAL_LANGUAGES)})."
            )
        parsed_language = code
    return Controls(parsed_bpm, parsed_key, parsed_time, parsed_language)


class SongFields(TypedDict, total=False):
    """A song request's fields as a user typed them; missing, None or blank: not given."""

    tags: str | None
    lyrics: str | None
    duration: int | str | None
    seed: int | str | None
    takes: int | str | None
    bpm: int | str | None
    key: str | None
    time_signature: int | str | None
    language: str | None
    describe: str | None


def read_request(*, limits: Limits, **fields: Unpack[SongFields]) -> GenerationRequest | Invalid:
    """Every field of a song request as a user typed it → a request, or the first reason
    why not (the controls first: they are the newest, and the most often mistyped)."""
    controls = parse_controls(
        bpm=fields.get("bpm"),
        key=fields.get("key"),
        time_signature=fields.get("time_signature"),
        language=fields.get("language"),
    )
    if isinstance(controls, Invalid):
        return controls
    request = validate_request(
        tags=fields.get("tags"),
        lyrics=fields.get("lyrics"),
        duration=fields.get("duration"),
        seed=fields.get("seed"),
        takes=fields.get("takes"),
        controls=controls,
        describe=fields.get("describe"),
        limits=limits,
    )
    if isinstance(request, GenerationRequest) and limits.controls_in_tags:
        sent = tags_with_controls(request.tags, controls)
        if len(sent) > limits.max_tags_chars:
            room = limits.max_tags_chars - len(as_tags(controls)) - 2
            return Invalid(
                f"With {as_tags(controls)} written into them, the style tags are {len(sent)} "
                f"characters long; this music engine takes {limits.max_tags_chars}. Shorten "
                f"the tags to {max(room, 0)} characters or leave out a control."
            )
    return request


def canonical_key(text: str) -> str | None:
    """``"f#m"`` → ``"F# minor"``; ``"B♭ major"`` → ``"Bb major"``; None if not a key."""
    match = _KEY.fullmatch(text.strip())
    if match is None:
        return None
    accidental = {"♯": "#", "♭": "b"}.get(match["accidental"], match["accidental"].lower())
    mode = (match["mode"] or "major").lower()
    if mode == "m" and match["mode"] == "M":  # "CM" is major in chord names
        mode = "major"
    mode = "minor" if mode in ("m", "min", "minor") else "major"
    return f"{match['note'].upper()}{accidental} {mode}"


def as_tags(controls: Controls) -> str:
    """The controls as words for a model that reads them from its tags: ``120 bpm, C major,
    3/4 time, sung in pt``."""
    words = []
    if controls.bpm is not None:
        words.append(f"{controls.bpm} bpm")
    if controls.key_scale is not None:
        words.append(controls.key_scale)
    if controls.time_signature is not None:
        words.append(f"{controls.time_signature}/{8 if controls.time_signature == 6 else 4} time")
    if controls.vocal_language is not None:
        words.append(f"sung in {controls.vocal_language}")
    return ", ".join(words)


def tags_with_controls(tags: str, controls: Controls) -> str:
    """The tags a backend without control parameters is sent: the controls' words after the
    user's (``lo-fi, chill, 120 bpm, C major``), as WaveSpeed's own examples write them."""
    words = as_tags(controls)
    tags = tags.strip().rstrip(",").rstrip()
    if not words:
        return tags
    return f"{tags}, {words}" if tags else words


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _short(value: object, limit: int = 24) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
