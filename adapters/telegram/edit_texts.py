"""What the edit commands write (``/extend``, ``/remix``, ``/repaint``, ➕), for
``parse_mode=HTML``. The rules and their refusals are the core's (``bot.edits``); this is
how to type them, and the lines a track's card and ``/history`` add for an edit."""

from __future__ import annotations

import html
from collections.abc import Mapping

from bot import messages
from bot.domain import Job, Task

REPAINT_OWN_AUDIO = (
    "/repaint works on my tracks: reply it to one of them (or give its number). Your own "
    "audio can be remixed or extended: reply /remix or /extend to it."
)
# The core's sentence, with Telegram's way to switch it on.
OWN_AUDIO_OFF = (
    "Editing audio you send isn't switched on in this chat; an admin can turn it on with "
    "/admin own_audio on, or send it to me in a direct message."
)
OLD_BUTTON = "That message is too old to use; send /extend instead."
EXTEND_QUEUED = "➕ A longer version — queued."

USAGE = {
    Task.EXTEND: (
        "<b>/extend</b> <i>song</i> <i>seconds</i> at=end|start <i>tags</i>\n"
        "Makes a track longer (30 s unless you say), continuing its style: the result is "
        "the whole longer song. Everything is optional: <code>/extend</code> alone extends "
        "your latest song; reply <code>/extend 45</code> to a track (or to audio you send) "
        "to extend that one. Times are seconds or minutes (<code>1:05</code>); new lyrics "
        "go on the lines below.\n"
        "e.g. <code>/extend 12 45 at=start piano intro</code>"
    ),
    Task.REMIX: (
        "<b>/remix</b> <i>song</i> <i>tags</i> <i>strength</i>\n"
        "Plays a track again in another style, keeping its structure. The strength (0–1, "
        "0.5 unless you say) is how closely it keeps the original. Reply it to a track, or "
        "to audio you send; new lyrics go on the lines below.\n"
        "e.g. <code>/remix 12 jazz, brass 0.7</code>"
    ),
    Task.REPAINT: (
        "<b>/repaint</b> <i>song</i> <i>start</i> <i>end</i> <i>tags</i>\n"
        "Makes one part of a track again and leaves the rest: the start and end are seconds "
        "or minutes (<code>1:05</code>). Reply it to a track to leave out the number; new "
        "lyrics for that part go on the lines below.\n"
        "e.g. <code>/repaint 12 1:05 1:20 gospel choir</code>"
    ),
}
HELP_LINES = {
    Task.EXTEND: "/extend — make a track longer, e.g. <code>/extend 12 45</code>",
    Task.REMIX: "/remix — a track in another style, e.g. <code>/remix 12 jazz, brass</code>",
    Task.REPAINT: "/repaint — make one part again, e.g. <code>/repaint 12 1:05 1:20 choir</code>",
}
COMMAND_HINTS = {
    Task.EXTEND: "Make a track longer: /extend 12 45 (or reply /extend to a track or audio)",
    Task.REMIX: "A track in another style: /remix 12 jazz, brass 0.7",
    Task.REPAINT: "Make one part of a track again: /repaint 12 1:05 1:20 choir",
}
ORDER = (Task.EXTEND, Task.REMIX, Task.REPAINT)


def usage(task: Task) -> str:
    return USAGE[task]


def help_section(offered: frozenset[Task]) -> str:
    """The edits this bot's engine offers, for /help (empty when it offers none)."""
    lines = [HELP_LINES[task] for task in ORDER if task in offered]
    if not lines:
        return ""
    own = (
        "Reply /remix or /extend to audio you send to start from it (in groups, where an "
        "admin allows it)."
        if offered & {Task.REMIX, Task.EXTEND}
        else ""
    )
    under = "➕ under a track makes it 30 s longer." if Task.EXTEND in offered else ""
    return "\n".join(["<b>Build on a track</b>", *lines, *(line for line in (own, under) if line)])


def lineage_line(job: Job) -> str | None:
    """What an edit is made from, as a line of its card: "🧬 Extended from #12"."""
    lineage = messages.lineage(job)
    if not lineage:
        return None
    return f"🧬 {html.escape(lineage[:1].upper() + lineage[1:], quote=False)}"


def made_from(job: Job, edit_models: Mapping[Task, str]) -> str | None:
    """An edit's line on its track's card: what it was made from, and the model where it
    is not the song model ("🧬 Extended from #12 · with wavespeed-ai/ace-step/audio-outpaint")."""
    line = lineage_line(job)
    if line is None:
        return None
    model = edit_models.get(job.request.task) if job.request.edit is not None else None
    return f"{line} · with {html.escape(model, quote=False)}" if model else line
