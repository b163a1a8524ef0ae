"""What the HTTP backends share: one async client per event loop (an async HTTP client cannot outlive the loop it was
made in) and closing it; for the SDK-backed ones (OpenAI, Anthropic) also Retry-After parsing and a repr that hides
the key."""

from __future__ import annotations

import asyncio
from typing import Any


class LoopClients:
    """One async HTTP client per event loop: a client cannot outlive the loop it was made in, and the CLI, tests and
    notebooks each run their own loops. Subclasses make the client (`_make_client`) and may say how it closes."""

    def __init__(self) -> None:
        self._clients: dict[int, Any] = {}

    def _make_client(self) -> Any:  # pragma: no cover - each backend defines it
        raise NotImplementedError

    async def _close_client(self, client: Any) -> None:
        await client.close()  # the OpenAI and Anthropic SDK clients; httpx's own is aclose()

    def _client(self) -> Any:
        loop_id = id(asyncio.get_running_loop())
        if loop_id not in self._clients:
            self._clients[loop_id] = self._make_client()
        return self._clients[loop_id]

    async def close_loop_client(self) -> None:
        """Close the running loop's client while that loop still runs. Left open, its sockets leak until garbage
        collection, whose finaliser then fails on the closed loop ("Event loop is closed")."""
        client = self._clients.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            await self._close_client(client)

    async def close_all_clients(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            try:
                await self._close_client(client)
            except RuntimeError:  # a client of a loop that is already closed
                pass


class SDKBackend(LoopClients):
    """What the SDK-backed HTTP backends (OpenAI, Anthropic) share."""

    local = False
    model: str
    base_url: str | None

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self.close_all_clients()


def retry_after_seconds(error: Any) -> float | None:
    """The Retry-After header of an SDK status error, in seconds, when the server sent one."""
    try:
        value = error.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None
