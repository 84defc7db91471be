"""How a phase ended: what the loop does with the job next (`Worker._settle`).

Phases do one step's work (a submit, a poll's answer, a download, a post) and return one of
these; only the loop moves a job between phases, ends it or lets it go.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain import Job
from bot.ports import RemoteStatus


@dataclass(frozen=True)
class Fail:
    """End the job as failed. ``billed``: the upstream finished the song, so its cost stays."""

    code: str
    detail: str
    billed: bool = False


@dataclass(frozen=True)
class Leave:
    """The job leaves this worker: delivered, cancelled, taken over, or left for a process
    that can deliver it. ``release`` hands its lease back first, so another takes it up."""

    release: bool = False


@dataclass(frozen=True)
class Refused:
    """The upstream refused a submit before taking it: claim nothing for ``pause`` seconds,
    then queue the job again (``reason`` for its events), or end it once its tries are spent."""

    pause: float
    reason: str
    fail: Fail | None = None


@dataclass(frozen=True)
class Submitted:
    """The upstream took the job (``job`` as recorded): poll it from now on."""

    job: Job


@dataclass(frozen=True)
class SubmitAgain:
    """The upstream forgot the job it took; ``job`` is back in ``submitting`` (recorded):
    send it again, to whichever server the backend picks now."""

    job: Job


@dataclass(frozen=True)
class PollLater:
    """Poll the job again in ``delay`` seconds."""

    delay: float


@dataclass(frozen=True)
class Fetch:
    """The upstream made the song (``runtime`` seconds after submit): download it."""

    status: RemoteStatus
    runtime: float


@dataclass(frozen=True)
class Deliver:
    """The audio is stored and the job succeeded: post it to the chat now."""


Outcome = Fail | Leave | Refused | Submitted | SubmitAgain | PollLater | Fetch | Deliver
