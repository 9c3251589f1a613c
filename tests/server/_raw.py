"""A bare JSON-RPC peer over any MessageStream: for wire shapes the Client does not expose
(CreateTaskResult, subscriptions/listen streams)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyport import JSONRPCError, Server
from anyport.protocol import LATEST_VERSION, TASKS_EXTENSION_ID, dumps, loads
from anyport.runtime import MessageStream
from anyport.testing import memory_pair

TASKS_CAPS: dict[str, Any] = {"elicitation": {}, "extensions": {TASKS_EXTENSION_ID: {}}}


class RawPeer:
    def __init__(self, stream: MessageStream, capabilities: dict[str, Any] | None = None) -> None:
        self.stream = stream
        self.capabilities = capabilities if capabilities is not None else dict(TASKS_CAPS)
        self.notifications: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self._ids = itertools.count(1)
        self._waiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        while True:
            data = await self.stream.receive()
            if data is None:
                return
            msg = loads(data)
            if "method" not in msg:
                fut = self._waiting.pop(msg.get("id"), None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
            elif "id" not in msg:
                self.notifications.append(msg)
                self.arrived.set()

    def meta(self, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "io.modelcontextprotocol/protocolVersion": LATEST_VERSION,
            "io.modelcontextprotocol/clientCapabilities": self.capabilities if capabilities is None else capabilities,
            "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
        }

    async def send(self, message: dict[str, Any]) -> None:
        await self.stream.send(dumps(message))

    def start(self, method: str, params: dict[str, Any] | None = None, *, modern: bool = True,
              capabilities: dict[str, Any] | None = None) -> tuple[int, asyncio.Future[dict[str, Any]]]:
        """Send a request without waiting; returns (id, future of the response message)."""
        id_ = next(self._ids)
        p = dict(params or {})
        if modern:
            p["_meta"] = {**self.meta(capabilities), **p.get("_meta", {})}
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[id_] = fut
        asyncio.get_running_loop().create_task(self.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": p}))
        return id_, fut

    async def call(self, method: str, params: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """The result, or raises JSONRPCError with the error's code."""
        _, fut = self.start(method, params, **kw)
        msg = await asyncio.wait_for(fut, 10)
        if "error" in msg:
            err = msg["error"]
            raise JSONRPCError(err["message"], code=err["code"], data=err.get("data"))
        result: dict[str, Any] = msg["result"]
        return result

    async def notification(self, method: str, timeout: float = 5.0, **match: Any) -> dict[str, Any]:
        """Wait for a notification with this method whose params contain ``match``."""
        async def find() -> dict[str, Any]:
            seen = 0
            while True:
                for msg in self.notifications[seen:]:
                    params = msg.get("params", {})
                    if msg["method"] == method and all(params.get(k) == v for k, v in match.items()):
                        return msg
                seen = len(self.notifications)
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(find(), timeout)

    async def wait_status(self, task_id: str, *statuses: str, timeout: float = 5.0) -> dict[str, Any]:
        """Poll tasks/get until the status is one of ``statuses``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            task = await self.call("tasks/get", {"taskId": task_id})
            if task["status"] in statuses:
                return task
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"task {task_id} stayed {task['status']}")
            await asyncio.sleep(0.02)

    async def aclose(self) -> None:
        await self.stream.aclose()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@asynccontextmanager
async def raw(app: Server, capabilities: dict[str, Any] | None = None) -> AsyncIterator[RawPeer]:
    """A RawPeer connected to ``app`` in this process."""
    client_end, server_end = memory_pair()
    serving = asyncio.get_running_loop().create_task(app.serve(server_end))
    peer = RawPeer(client_end, capabilities)
    try:
        yield peer
    finally:
        await peer.aclose()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        app.tasks.cancel_all()
        await asyncio.sleep(0)
