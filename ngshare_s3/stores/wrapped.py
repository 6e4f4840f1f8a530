"""A store seen through a context manager entered around every call it answers, coroutine or
stream alike, so that what every call needs (timing, error translation) stays out of the
backends and is written once."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

# Given the operation's name, the context every call of it runs in.
Around = Callable[[str], contextlib.AbstractContextManager[Any]]


class WrappedStore:
    """Every coroutine and async generator method of `store` runs inside `around(name)`;
    everything else passes through untouched."""

    def __init__(self, store: Any, around: Around):
        self._store = store
        self._around = around

    def __getattr__(self, operation: str) -> Any:
        attribute = getattr(self._store, operation)
        if inspect.iscoroutinefunction(attribute):
            wrapped = self._wrap_call(operation, attribute)
        elif inspect.isasyncgenfunction(attribute):
            wrapped = self._wrap_stream(operation, attribute)
        else:
            return attribute
        setattr(self, operation, wrapped)  # wrap once per operation, not once per call
        return wrapped

    def _wrap_call(self, operation: str, call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)
        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            with self._around(operation):
                return await call(*args, **kwargs)

        return wrapped

    def _wrap_stream(self, operation: str, stream: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
        @functools.wraps(stream)
        async def wrapped(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            with self._around(operation):
                async with contextlib.aclosing(stream(*args, **kwargs)) as items:
                    async for item in items:
                        yield item

        return wrapped
