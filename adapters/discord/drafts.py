"""A song request as typed on Discord, before the core validates it: the /song options, or the
compose form's five inputs, whose last one holds the musical controls on one line
(``takes=2 bpm=120 key=F# minor time=3 lang=pt``, the names Telegram's ``/song`` uses).

Pure: nothing here reads Discord or the database. Values stay strings; the core
(``GenerationService.validate``) turns them into a request or a sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.discord.lineage import result_seconds
from bot.controls import SongFields
from bot.domain import Invalid, Job

# A form's controls line: what a user writes before "=", and the field it fills.
LINE_NAMES = {
    "takes": "takes",
    "bpm": "bpm",
    "key": "key",
    "time": "time_signature",
    "lang": "language",
}
LINE_EXAMPLE = "takes=2 bpm=120 key=F# minor time=3 lang=en"
# "name=" at the start or after a separator (spaces, "|", "," or ";"): values may hold spaces.
_NAME = re.compile(r"(?:^|[\s|,;]+)([A-Za-z_]{1,16})\s*=\s*")
_SEPARATORS = " \t|,;"


@dataclass(frozen=True)
class Draft:
    """A song request as typed. ``controls`` is the form's controls line as typed (the slash
    command's options fill the fields instead); ``parent_id`` is the track a ✏️ Edit began
    from, recorded on the new job."""

    tags: str = ""
    lyrics: str = ""
    duration: str = ""
    seed: str = ""
    takes: str = ""
    bpm: str = ""
    key: str = ""
    time_signature: str = ""
    language: str = ""
    describe: str = ""
    controls: str = ""
    parent_id: int | None = None

    def fields(self) -> SongFields | Invalid:
        """Everything for ``service.validate``, the controls line read into its fields (a
        line that names a field the options gave too: the line wins, it was typed last)."""
        line = read_line(self.controls)
        if isinstance(line, Invalid):
            return line
        fields = SongFields(
            tags=self.tags,
            lyrics=self.lyrics,
            duration=self.duration,
            seed=self.seed,
            takes=self.takes,
            bpm=self.bpm,
            key=self.key,
            time_signature=self.time_signature,
            language=self.language,
            describe=self.describe,
        )
        fields.update(line)  # type: ignore[typeddict-item]
        return fields

    def controls_line(self) -> str:
        """The controls line a form shows: as typed, or written from the fields."""
        if self.controls.strip():
            return self.controls
        return write_line(
            takes=self.takes,
            bpm=self.bpm,
            key=self.key,
            time_signature=self.time_signature,
            language=self.language,
        )


def read_line(text: str) -> dict[str, str] | Invalid:
    """``"bpm=120 key=C major"`` → ``{"bpm": "120", "key": "C major"}``, or why not."""
    found = list(_NAME.finditer(text))
    leading = text[: found[0].start()] if found else text
    if leading.strip(_SEPARATORS):
        return Invalid(
            f"I can't read “{_short(leading.strip())}” in the controls line: write each as "
            f"name=value, e.g. `{LINE_EXAMPLE}`."
        )
    fields: dict[str, str] = {}
    for number, match in enumerate(found):
        word = match[1].lower()
        name = LINE_NAMES.get(word)
        if name is None:
            known = ", ".join(f"`{n}=`" for n in LINE_NAMES)
            return Invalid(f"I don't know `{_short(word)}=`; the controls line takes {known}.")
        if name in fields:
            return Invalid(f"`{word}=` is there twice; keep one.")
        end = found[number + 1].start() if number + 1 < len(found) else len(text)
        fields[name] = text[match.end() : end].strip(_SEPARATORS)
    return fields


def write_line(**fields: str) -> str:
    """Fields (by their ``service.validate`` names) as a controls line; blank ones left out."""
    words = {field: word for word, field in LINE_NAMES.items()}
    return " ".join(
        f"{words[name]}={value.strip()}" for name, value in fields.items() if value.strip()
    )


def draft_of(job: Job) -> Draft:
    """A delivered song's request, as a form shows it for ✏️ Edit: its tags (what a language
    model wrote, once recorded; else the description), lyrics, length, the seed of the take
    it is about (the kept one, else the first) and controls. One take, as a variation on
    Telegram is, unless the form asks for more."""
    request = job.request
    controls = request.controls
    seed = job.seed_used if job.seed_used is not None else request.seed
    kept = next((take for take in job.takes if take.number == (job.kept_take or 1)), None)
    if kept is not None and kept.seed is not None:
        seed = kept.seed
    return Draft(
        tags=request.tags or request.describe,
        lyrics=request.lyrics,
        # An edit's own duration counts what it generated (an extend: the seconds added);
        # a song made again from its form is as long as the whole track was.
        duration=str(round(result_seconds(job))),
        seed=str(seed) if seed is not None and seed >= 0 else "",
        bpm=_text(controls.bpm),
        key=_text(controls.key_scale),
        time_signature=_text(controls.time_signature),
        language=_text(controls.vocal_language),
        parent_id=job.id,
    )


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _short(text: str, limit: int = 24) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
