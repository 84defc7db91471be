"""``/extend``, ``/remix`` and ``/repaint`` text → what the user typed for an edit. Pure.

The grammar is ``/song``'s: the first line holds the parts, ``|`` between them if you like,
and the lyrics are the lines below. What differs is the numbers at its start::

    /extend [id] [seconds] [at=end|start] [tags]      e.g. /extend 12 45 at=start jazz
    /remix [id] <tags> [strength]                     e.g. /remix 12 jazz, brass | 0.7
    /repaint <id> <start> <end> [tags]                e.g. /repaint 12 1:05 1:20 choir

Times are ``1:05`` or seconds (``65``; ``| 65s`` as a part of its own). A song's number may
be written ``#12``; written bare, it is the number before the times a command takes
(``/repaint 12 0:30 0:45``).
A reply names the source (one of the bot's tracks, or your own audio), so as a reply every
bare number is a time: ``/extend 45`` extends the track replied to by 45 s. Without a reply a
lone ``/extend 12`` is song #12 (as ``/show 12``), and ``/repaint 0:30 0:45`` is your latest
song. Named parts (``at=start``, ``seconds=45``, ``strength=0.7``, ``start=1:05``,
``end=1:20``) may come anywhere on the first line. The times themselves are read by the core
(``bot.edits``), which also says what is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from adapters.telegram.parse import ShowHelp, command_arguments
from bot.domain import Invalid, Task

_SONG_ID = re.compile(r"^#(\d{1,19})$")
_WHOLE = re.compile(r"^\d{1,19}$")
# 65.5, 1:05, 1:05.5: a time that can't be a song's number. ("65s" only as a part of its
# own: at the start of a line it would eat the "90s" of "90s house".)
_TIME = re.compile(r"^(?:\d{1,5}[.,]\d{1,3}|\d{1,3}:\d{1,2}(?:[.,]\d{1,3})?)$")
_SECONDS = re.compile(r"^\d{1,5}(?:[.,]\d{1,3})?\s*s$", re.IGNORECASE)
# 0.7, .7, 1.0, 0,7 — a remix strength at the end of the tags
_STRENGTH = re.compile(r"^(?:0?[.,]\d{1,3}|1[.,]0{1,3})$")
_NAMED = re.compile(r"^([A-Za-z_]{1,16})\s*=\s*(.*)$", re.DOTALL)
MAX_JOB_ID = 2**63 - 1

# The named parts each command takes: what the user writes → the field it fills.
NAMED_FIELDS: dict[Task, dict[str, str]] = {
    Task.EXTEND: {"at": "at", "seconds": "seconds", "tags": "tags"},
    Task.REMIX: {"strength": "strength", "tags": "tags"},
    Task.REPAINT: {"start": "start", "end": "end", "tags": "tags"},
}
# How many times each command reads from its numbers (after the song's number).
TIMES: dict[Task, tuple[str, ...]] = {
    Task.EXTEND: ("seconds",),
    Task.REMIX: (),
    Task.REPAINT: ("start", "end"),
}
COMMANDS = {Task.EXTEND: "extend", Task.REMIX: "remix", Task.REPAINT: "repaint"}


@dataclass(frozen=True)
class EditText:
    """What an edit command's text gives, as typed; None where it says nothing."""

    of_job: int | None = None
    seconds: str | None = None
    at: str | None = None
    start: str | None = None
    end: str | None = None
    strength: str | None = None
    tags: str | None = None
    lyrics: str | None = None


def read_edit(text: str, task: Task, *, source_named: bool) -> EditText | Invalid | ShowHelp:
    """The parts of ``/extend``, ``/remix`` or ``/repaint`` (``task``). ``source_named``:
    the message replies to what it edits (a track of ours, or audio), so its bare numbers
    are all times. ShowHelp: a command that can't mean anything without more (a bare
    ``/repaint`` or ``/remix``)."""
    rest = command_arguments(text)
    first_line, _, following = rest.partition("\n")
    lyrics = following.strip() or None
    named_words = NAMED_FIELDS[task]
    fields: dict[str, str] = {}
    numbers: list[str] = []
    song_ids: list[int] = []
    tags: list[str] = []
    for part in (p.strip() for p in first_line.split("|")):
        if not part:
            continue
        whole = _NAMED.match(part)
        if whole is not None and " " not in whole[1]:
            problem = _name(whole[1], whole[2].strip(), named_words, fields, task)
            if problem is not None:
                return problem
            continue
        if _SECONDS.match(part) and task != Task.REMIX:  # "| 45s": a time of its own
            numbers.append(part)
            continue
        words = part.split()
        taken = 0
        for word in words:
            if (found := _SONG_ID.match(word)) is not None:
                song_ids.append(int(found[1]))
            elif task == Task.REMIX:
                # No times here: the song's number first, a strength; else the style starts
                # (so "/remix 12 808 drums" keeps its 808).
                first = not numbers and not song_ids
                if not ((_WHOLE.match(word) and first) or _STRENGTH.match(word)):
                    break
                numbers.append(word)
            elif _WHOLE.match(word) or _TIME.match(word):
                numbers.append(word)
            elif (named := _NAMED.match(word)) is not None and named[1].lower() in named_words:
                problem = _name(named[1], named[2], named_words, fields, task)
                if problem is not None:
                    return problem
            else:
                break
            taken += 1
        if taken < len(words):
            tags.append(" ".join(words[taken:]))
    if task == Task.REMIX and tags and "strength" not in fields:
        # "/remix jazz, brass 0.7" or "/remix jazz | 0.7": a strength ends the tags.
        last = tags[-1].rsplit(maxsplit=1)
        if _STRENGTH.match(last[-1]):
            fields["strength"] = last[-1]
            tags[-1] = last[0] if len(last) > 1 else ""
            tags = [t for t in tags if t]
    if len(tags) > 1:
        return Invalid(
            f"I don't know what “{_short(tags[1])}” is for: give the style once, "
            f"e.g. {_example(task)}."
        )
    if "tags" in fields and tags:
        return Invalid("The style is there twice; keep one.")
    given_tags = fields.pop("tags", None) or (tags[0] if tags else None)
    read = _numbers(task, numbers, song_ids, source_named=source_named, named=set(fields))
    if isinstance(read, Invalid):
        return read
    of_job, times = read
    for name, value in times.items():
        if name in fields:
            return Invalid(f"`{name}=` is there twice; keep one.")
        fields[name] = value
    if task == Task.REPAINT and not ("start" in fields and "end" in fields):
        if of_job is None and not fields and not given_tags and not lyrics:
            return ShowHelp()
        return Invalid(
            "Say which part to make again: its start and end, e.g. "
            "`/repaint 12 1:05 1:20` (or reply `/repaint 1:05 1:20` to the track)."
        )
    if task == Task.REMIX and not given_tags:
        if of_job is None and not fields and not lyrics:
            return ShowHelp()
        return Invalid("Give the new style after the song's number, e.g. `/remix 12 jazz, brass`.")
    return EditText(
        of_job=of_job,
        seconds=fields.get("seconds"),
        at=fields.get("at"),
        start=fields.get("start"),
        end=fields.get("end"),
        strength=fields.get("strength"),
        tags=given_tags,
        lyrics=lyrics,
    )


def _name(
    word: str, value: str, known: dict[str, str], fields: dict[str, str], task: Task
) -> Invalid | None:
    """Store ``word=value`` in ``fields``; the sentence when it can't be."""
    name = known.get(word.lower())
    if name is None:
        parts = ", ".join(f"`{n}=`" for n in known if n != "tags")
        return Invalid(f"I don't know `{_short(word)}=`; /{COMMANDS[task]} takes {parts}.")
    if name in fields:
        return Invalid(f"`{word.lower()}=` is there twice; keep one.")
    fields[name] = value.rstrip("sS") if name in ("seconds", "start", "end") else value
    return None


def _numbers(
    task: Task, numbers: list[str], song_ids: list[int], *, source_named: bool, named: set[str]
) -> tuple[int | None, dict[str, str]] | Invalid:
    """The song's number and the times, from the numbers at the start of the parts (the
    times already ``named`` with ``start=`` and the like take none)."""
    slots = tuple(slot for slot in TIMES[task] if slot not in named)
    if len(song_ids) > 1:
        return Invalid("Give one song's number.")
    of_job = song_ids[0] if song_ids else None
    if task == Task.REMIX:
        # Remix takes no times: a whole number is the song, a fraction the strength.
        times: dict[str, str] = {}
        for word in numbers:
            if _STRENGTH.match(word) and "strength" not in times and "strength" not in named:
                times["strength"] = word
            elif _WHOLE.match(word) and of_job is None:
                of_job = int(word)
            else:
                return Invalid(f"I don't know what “{_short(word)}” is for: {_example(task)}.")
        return _checked(of_job, times)
    bare_song = (
        # Without a reply, a lone "/extend 12" is song #12, as "/show 12" is.
        task == Task.EXTEND
        and not source_named
        and of_job is None
        and len(numbers) == 1
        and _WHOLE.match(numbers[0]) is not None
    )
    if of_job is None and (len(numbers) > len(slots) or bare_song):
        first = numbers.pop(0)
        if not _WHOLE.match(first):
            return Invalid(f"A song's number is a whole number, like `#12`; {_example(task)}.")
        of_job = int(first)
    if len(numbers) > len(slots):
        given = [slot for slot in TIMES[task] if slot in named]
        if given:  # "/extend 12 45 seconds=40"
            return Invalid(f"`{given[0]}=` is there twice; keep one.")
        return Invalid(f"There are more numbers than I can place: {_example(task)}.")
    times = {name: word.rstrip("sS ") for name, word in zip(slots, numbers, strict=False)}
    return _checked(of_job, times)


def _checked(
    of_job: int | None, times: dict[str, str]
) -> tuple[int | None, dict[str, str]] | Invalid:
    if of_job is not None and of_job > MAX_JOB_ID:
        return Invalid("I can't find that song.")
    return of_job, times


def _example(task: Task) -> str:
    return {
        Task.EXTEND: "e.g. `/extend 12 45 at=start`",
        Task.REMIX: "e.g. `/remix 12 jazz, brass 0.7`",
        Task.REPAINT: "e.g. `/repaint 12 1:05 1:20 choir`",
    }[task]


def _short(text: str, limit: int = 24) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
