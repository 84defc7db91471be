"""The database's errors as the core knows them.

A store's public coroutines raise :class:`bot.errors.StoreUnavailable` (chained to the
driver's exception) for what the core waits out: anything the driver reports
(``DBAPIError``: "database is locked", a connection cut, the server restarting) and an
``OSError`` from a connection that could not be made. Everything else passes unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from bot.errors import StoreUnavailable

UNAVAILABLE: tuple[type[Exception], ...] = (DBAPIError, OSError)
Store = TypeVar("Store", bound=type)


def raises_store_unavailable(cls: Store) -> Store:
    """Class decorator: each public ``async def`` of ``cls``, its own or inherited from the
    parts it is composed of, raises StoreUnavailable for :data:`UNAVAILABLE`."""
    for name in dir(cls):
        member = inspect.getattr_static(cls, name)
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _translating(member))
    return cls


def _translating(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def translated(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(type(exc).__name__) from exc

    return translated
