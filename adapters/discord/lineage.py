"""What the bot says about edits (#15): where an edit came from (the core's lineage sentence,
"extended from #12"), how long its result is, and the model it ran on where that is not the
song model (WaveSpeed's edit models), on the status, track and failure cards and in
/history; and /help's line about the edit commands. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from bot import messages
from bot.domain import Job, Task

ICON = "🧬"


def lineage_line(job: Job) -> str | None:
    """ "🧬 extended from #12"; None for a song made from scratch."""
    text = messages.lineage(job)
    return f"{ICON} {text}" if text else None


def result_seconds(job: Job) -> float:
    """How long the song is (or will be): an extend's whole longer song, not only the
    seconds it adds (which is what ``request.duration`` counts for the quota)."""
    edit = job.request.edit
    return edit.output_seconds if edit is not None else job.request.duration


def edit_model(job: Job, models: Mapping[Task, str]) -> str | None:
    """The model an edit ran on, where the backend names one of its own for that task."""
    if job.request.edit is None:
        return None
    return models.get(job.request.task)


_EDIT_HELP = (
    (Task.EXTEND, "`/extend` or ➕ makes a song longer (`seconds:`, `at:` end or start)"),
    (Task.REMIX, "`/remix tags:` plays it in another style (`strength:` 0 to 1)"),
    (Task.REPAINT, "`/repaint id: start: end:` makes one part again (times as `1:05`)"),
)


def edit_help(edits: frozenset[Task]) -> list[str]:
    """/help's line about the edit commands the backend offers (none offered: no line)."""
    offered = [line for task, line in _EDIT_HELP if task in edits]
    if not offered:
        return []
    own = " `audio:` takes a file of your own instead, where this chat allows it."
    return [
        " · ".join(offered)
        + " — `id:` a song's #number (empty: your latest)."
        + (own if edits & {Task.EXTEND, Task.REMIX} else "")
    ]
