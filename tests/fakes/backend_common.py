"""What the two backend fakes share on top of :mod:`tests.fakes.common`: job faults.

Both fakes are :class:`~tests.fakes.common.LoopbackServer` s and their ``faults`` is a
:class:`BackendFaults`, a :class:`~tests.fakes.common.FaultPlan` of HTTP faults (the common
model: counting, order and fields are in :mod:`tests.fakes.common.faults`) on the routes
``"submit"``, ``"poll"``, ``"download"`` and per fake a few more, e.g. ``"stats"``::

    fake.faults.add("submit", status=503, times=2)          # refused, nothing created
    fake.faults.add("submit", status=502, processed=True)   # created upstream, then a 502
    fake.faults.add("submit", delay_response=2.0)           # created at once, answer 2 s late
    fake.faults.add("poll", delay=2.0)                      # wait 2 s, then handle normally
    fake.faults.add("poll", malformed=True)                 # 200 with a body that is not JSON
    fake.faults.add("poll", drop=True)                      # connection closed, no answer
    fake.faults.add("poll", status=500, about=some_id)      # only requests about that id
    fake.faults.add("download", status=404)                 # expired output URL
    fake.faults.add("download", truncate=True)              # Content-Length > bytes sent
    fake.faults.add("download", malformed=True)             # 200 with an HTML page, not audio
    fake.faults.add("download", redirect_to="http://169.254.169.254/latest/meta-data")

**Job faults** shape the outcome of the next submitted jobs (one hit per job created; same
``times`` counting)::

    fake.faults.add_job(fail="Content flagged", error_code=1200)  # ends failed
    fake.faults.add_job(hang=True)                                # never finishes
    fake.faults.add_job(nsfw=True)                                # WaveSpeed: has_nsfw_contents
    fake.faults.add_job(output_url="http://127.0.0.2:9/x.mp3")    # output points elsewhere
    fake.faults.add_job(runtime=30.0)                             # nominal seconds for this job
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tests.fakes.common import Fault, FaultPlan, Scripted

# A nominal runtime in seconds, or a function of the submitted JSON body giving one.
Runtime = float | Callable[[dict[str, Any]], float]

JOB_ROUTE = "job"  # the plan of job faults has this one route: "a job is created"


@dataclass(kw_only=True, eq=False)
class JobFault(Scripted):
    fail: str | bool | None = None  # failure message (WaveSpeed) / True (ACE-Step: no reason)
    error_code: int | str | None = None  # WaveSpeed: appended to the error text as "(code N)"
    fail_status: str = "failed"  # WaveSpeed terminal status: failed|cancelled|timeout|deleted
    hang: bool = False
    nsfw: bool = False
    output_url: str | None = None  # WaveSpeed: outputs[0]; ACE-Step: the ``file`` value
    output_as_object: bool = False  # WaveSpeed: outputs[0] = {"url": ...}
    bad_result: bool = False  # ACE-Step: ``result`` is not JSON
    runtime: float | None = None


class BackendFaults(FaultPlan[Fault]):
    """HTTP faults on the fake's routes plus job faults; see the module docstring."""

    def __init__(self, routes: Iterable[str]) -> None:
        super().__init__(Fault, routes)
        self.jobs: FaultPlan[JobFault] = FaultPlan(JobFault, (JOB_ROUTE,))

    def add_job(self, *, times: int | None = 1, **fields: Any) -> JobFault:
        return self.jobs.add(JOB_ROUTE, times=times, **fields)

    def take_job(self) -> JobFault | None:
        return self.jobs.take(JOB_ROUTE)

    def clear(self) -> None:
        super().clear()
        self.jobs.clear()


AUDIO_CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac"}
