"""What every loopback fake shares: one fault model and one server lifecycle.

A fake subclasses :class:`LoopbackServer` (``tests/fakes/common/loopback.py``): it adds its routes
to ``self.app`` in ``__init__``; ``async with`` starts it on 127.0.0.1 at a free port
(``base_url``) and closing stops it, waking ``sleep`` and cancelling what ``spawn`` started.

It owns ``self.faults = FaultPlan(Fault, routes=(...))`` (``tests/fakes/common/faults.py``) and
serves each request as ``await answer(request, self.faults.take(route, about=ids), handle,
error=render_error, malformed=render_garbage, sleep=self.sleep)``. Tests script faults with
``fake.faults.add(route, status=..., delay=..., processed=..., drop=..., times=N)``, where
``times=N`` always means *the next N matching requests* (None: all of them). The docstring of
``faults.py`` is the reference: counting, routes, and the order in which a fault is applied.
"""

from tests.fakes.common.faults import (
    ANY_ROUTE,
    Fault,
    FaultPlan,
    Scripted,
    answer,
    same_route,
    truncated_response,
)
from tests.fakes.common.loopback import LoopbackServer

__all__ = [
    "ANY_ROUTE",
    "Fault",
    "FaultPlan",
    "LoopbackServer",
    "Scripted",
    "answer",
    "same_route",
    "truncated_response",
]
