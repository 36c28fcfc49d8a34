"""An ASGI app that imports and builds the real app on its first request.

Standard library only: this is what the plugin module imports in every Airflow process.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LazyASGIApp:
    """Delegates to `module:factory()`, called once, on the first request (or `.app`).

    The factory runs under a lock, so concurrent first requests build one app. An exception in
    the factory propagates to that request (a 500 with the traceback in the API server log)
    and the next request tries again.
    """

    def __init__(self, factory_path: str) -> None:
        module, _, name = factory_path.partition(":")
        if not module or not name:
            raise ValueError(
                f"factory path must look like 'package.module:function', got {factory_path!r}"
            )
        self.factory_path = factory_path
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> ASGIApp:
        """The real app, built now if it was not yet."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    module, _, name = self.factory_path.partition(":")
                    factory = getattr(importlib.import_module(module), name)
                    self._app = factory()
        return self._app

    @property
    def built(self) -> bool:
        return self._app is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # Airflow only runs the lifespan of mounted FastAPI instances; answer it anyway so
            # that a server running this app on its own starts cleanly.
            await _accept_lifespan(receive, send)
            return
        await self.app(scope, receive, send)

    def __repr__(self) -> str:
        state = "built" if self.built else "not built yet"
        return f"<LazyASGIApp {self.factory_path} ({state})>"


async def _accept_lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
