"""For a backend whose submit is its only request: nothing to do before it (``Backend.prepare``).

ACE-Step sends an edit's source inside the submit itself (multipart), so it has no unbilled
step for the worker to record first; WaveSpeed uploads it separately (bot/backends/wavespeed.py).
"""

from __future__ import annotations

from bot.domain import GenerationRequest


class NothingToPrepare:
    def needs_preparing(self, request: GenerationRequest) -> bool:
        return False

    async def prepare(self, request: GenerationRequest) -> GenerationRequest:
        return request
