"""An in-process stand-in for the two names the Worker entry imports from Cloudflare's Python
Workers SDK: ``WorkerEntrypoint`` and ``asgi.fetch``. Not Cloudflare's code (that needs Pyodide and
its JavaScript ``Request``/``Response``): a re-implementation of the calling convention that
``workers.asgi.fetch`` follows, as read in cloudflare/workers-py (packages/runtime-sdk/src/workers/asgi.py):

1. every request runs a whole lifespan: a task receives ``lifespan.startup`` and the adapter
   waits for ``lifespan.startup.complete`` (an app without lifespan support is served anyway);
2. the request body is read in whole first and queued as ``http.request`` messages (each chunk
   with ``more_body=True``, then an empty one with ``more_body=False``);
3. the scope has ``type``, ``asgi``, ``http_version`` 1.1, ``method``, ``scheme``, the unquoted
   ``path``, ``raw_path``, ``query_string``, lower-cased byte ``headers``, the Worker's ``env`` and
   a copy of the lifespan ``state``, and no ``client``, ``server`` or ``root_path``;
4. ``receive()`` after the body waits until the response is finished, then says ``http.disconnect``
   (the app cannot see a client leave mid-stream);
5. a first body chunk with ``more_body=True`` turns the response into a stream; otherwise the
   response is one buffer;
6. the lifespan shutdown runs when the request task ends (right away for a buffered answer, after
   the stream for a streamed one).
"""

from __future__ import annotations

import asyncio
import types
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit


@dataclass
class Request:
    """What the adapter reads of a JavaScript Request."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass
class Response:
    """What the adapter gives back: status, headers and the body (its chunks, if streamed)."""

    status: int
    headers: list[tuple[str, str]]
    chunks: list[bytes] = field(default_factory=list)
    streamed: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)


class WorkerEntrypoint:
    def __init__(self, env: Any = None, ctx: Any = None) -> None:
        self.env = env
        self.ctx = ctx


#: Tasks that outlive a request (the stream of a streamed answer and the shutdown after it):
#: the runtime keeps them alive with ``wait_until``.
background: set[asyncio.Task[Any]] = set()


async def drain(timeout: float = 5.0) -> None:
    """Wait for what the runtime would keep alive after the responses (bounded)."""
    async with asyncio.timeout(timeout):
        while background:
            await asyncio.gather(*background)


def _keep(coro: Any) -> asyncio.Task[Any]:
    task = asyncio.ensure_future(coro)
    background.add(task)
    task.add_done_callback(background.discard)
    return task


async def _start(app: Any) -> tuple[Any, dict[str, Any]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    state: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    started: asyncio.Future[bool] = loop.create_future()
    stopped: asyncio.Future[None] = loop.create_future()

    async def send(message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete" and not started.done():
            started.set_result(True)
        elif kind == "lifespan.startup.failed" and not started.done():
            started.set_exception(RuntimeError(message.get("message") or "startup failed"))
        elif kind == "lifespan.shutdown.complete" and not stopped.done():
            stopped.set_result(None)
        elif kind == "lifespan.shutdown.failed" and not stopped.done():
            stopped.set_exception(RuntimeError(message.get("message") or "shutdown failed"))

    async def run() -> None:
        try:
            await app({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}, inbox.get, send)
            if not started.done():
                started.set_result(False)
            elif not stopped.done():
                stopped.set_result(None)
        except Exception:
            if not started.done():
                started.set_result(False)
            elif not stopped.done():
                stopped.set_result(None)

    await inbox.put({"type": "lifespan.startup"})
    _keep(run())
    supported = await started

    async def shutdown() -> None:
        if supported:
            await inbox.put({"type": "lifespan.shutdown"})
            await stopped

    return shutdown, state


async def fetch(app: Any, req: Request, env: Any, ctx: Any = None) -> Response:
    shutdown, state = await _start(app)
    url = urlsplit(req.url)
    scope = {
        "asgi": {"spec_version": "2.0", "version": "3.0"}, "headers": [(k.lower().encode(), v.encode()) for k, v in req.headers],
        "http_version": "1.1", "method": req.method, "scheme": url.scheme, "path": unquote(url.path),
        "raw_path": url.path.encode(), "query_string": url.query.encode(), "type": "http", "env": env, "state": dict(state),
    }
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    if req.body:
        await inbox.put({"type": "http.request", "body": req.body, "more_body": True})
    await inbox.put({"type": "http.request", "body": b"", "more_body": False})
    finished = asyncio.Event()
    result: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
    start: dict[str, Any] = {}
    response: Response | None = None

    async def receive() -> dict[str, Any]:
        if not inbox.empty():
            return await inbox.get()
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal response
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            return
        body, more = message.get("body", b""), message.get("more_body", False)
        if response is None:
            headers = [(k.decode(), v.decode()) for k, v in start.get("headers", [])]
            response = Response(start["status"], headers, streamed=more)
            result.set_result(response)
        response.chunks.append(body)
        if not more:
            response.finished.set()
            finished.set()

    async def run_app() -> None:
        try:
            await app(scope, receive, send)
            if not result.done():
                raise RuntimeError("The application did not generate a response")
        except Exception as exc:
            if not result.done():
                result.set_exception(exc)
            finished.set()

    task = asyncio.ensure_future(run_app())
    try:
        answer = await result
    except Exception:
        await task
        await shutdown()
        raise
    if task.done() or not answer.streamed:
        await task
        await shutdown()
    else:
        async def finalize() -> None:
            try:
                await task
            finally:
                await shutdown()

        _keep(finalize())
    return answer


def modules() -> dict[str, types.ModuleType]:
    """``workers`` and ``workers.asgi`` as modules, for ``sys.modules``."""
    workers = types.ModuleType("workers")
    asgi = types.ModuleType("workers.asgi")
    asgi.fetch = fetch  # type: ignore[attr-defined]
    workers.WorkerEntrypoint = WorkerEntrypoint  # type: ignore[attr-defined]
    workers.asgi = asgi  # type: ignore[attr-defined]
    return {"workers": workers, "workers.asgi": asgi}
