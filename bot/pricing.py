"""What a job costs upstream: the price per second of the model that makes it.

A song runs on the song model; an edit may run on a model of its own (WaveSpeed's edit models,
``Capabilities.edit_models``) with its own price. A job's cost is the seconds it generates
(``request.duration``, every take) at that price: the rule quotas count by too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.domain import GenerationRequest, Task


@dataclass(frozen=True)
class Prices:
    """USD per second of generated audio: ``song`` for songs and any edit not in ``edits``."""

    song: float = 0.0
    edits: Mapping[Task, float] = field(default_factory=dict)

    def per_second(self, request: GenerationRequest) -> float:
        return self.edits.get(request.task, self.song) if request.edit else self.song

    def cost(self, request: GenerationRequest) -> float:
        """The job's cost if every take is made."""
        return request.duration * request.takes * self.per_second(request)
