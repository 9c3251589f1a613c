"""The bridge's side of one stdio child: a JSON-RPC client over its pipes.

The bridge is the child's only client. Its request ids are its own (``1, 2, ...``), never a
caller's, so calls of several callers on one child cannot collide (id rewriting); progress tokens
are rewritten the same way (``Call.token``). What the child writes is read line by line
(T-STDIO-02): answers settle the call waiting for them, notifications and the child's own requests
go to the owner's hooks, and anything else (a line that is not JSON, a stray answer) is logged and
dropped. A line over the limit, or the end of stdout, ends the child: every call still waiting gets
a clean error at once, never a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from anyport._exceptions import INTERNAL_ERROR, JSONRPCError, ParseError
from anyport.bridge._spawn import ChildProcess
from anyport.protocol import (
    LATEST_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
    brief,
    dumps_line,
    error_message,
    loads,
    result_message,
)

__all__ = ["BRIDGE_INFO", "Call", "Child", "ChildGone"]

log = logging.getLogger("anyport.bridge")

BRIDGE_INFO = {"name": "anyport-bridge", "version": "1"}

#: The owner's hooks: a notification of the child, and a request of the child (answered with the
#: result, or a ``JSONRPCError``).
OnNotify = Callable[["Child", str, dict[str, Any]], Awaitable[None]]
OnAsk = Callable[["Child", str, dict[str, Any]], Awaitable[Any]]

_ids = itertools.count(1)


class ChildGone(Exception):
    """The child ended (crashed, exited, was stopped or broke the framing)."""


class Call:
    """One request forwarded to a child, and where what the child says about it goes."""

    __slots__ = ("caller", "child_id", "future", "original_token", "owner", "token")

    def __init__(self, owner: object, original_token: str | int | None) -> None:
        #: Who the call is for (the bridge's routing object: an outlet and the caller's request).
        self.owner = owner
        self.original_token = original_token
        #: The progress token the child sees (unique on the child), or None.
        self.token: str | None = None
        self.child_id: int | None = None
        self.caller: Any = None
        self.future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()


class Child:
    """One child process and the calls in flight on it."""

    def __init__(self, process: ChildProcess, *, on_notify: OnNotify, on_ask: OnAsk) -> None:
        self.process = process
        self.number = next(_ids)
        self.on_notify = on_notify
        self.on_ask = on_ask
        self.era: str = "legacy"
        #: The legacy session this child serves alone (one child per session), else None.
        self.session: str | None = None
        #: The child's initialize result (legacy) or discover result (modern), once it answered.
        self.server: dict[str, Any] = {}
        self.calls: dict[int, Call] = {}
        self.by_token: dict[str, Call] = {}
        self._next_id = 0
        self._tokens = 0
        self.gone: str | None = None
        self.ended = asyncio.Event()
        self.last_used = time.monotonic()
        self.garbage = 0
        self._asks: set[asyncio.Task[None]] = set()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.gone is None

    # -- writing -------------------------------------------------------------------------------

    async def _write(self, message: dict[str, Any]) -> None:
        stdin = self.process.proc.stdin
        if self.gone is not None or stdin is None or stdin.is_closing():
            raise ChildGone(self.gone or "the child's stdin is closed")
        try:
            stdin.write(dumps_line(message))
            await stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ChildGone(f"cannot write to the child: {exc}") from exc

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        with contextlib.suppress(ChildGone):
            await self._write(msg)

    def new_token(self, call: Call) -> str:
        self._tokens += 1
        call.token = f"anyport-{self.number}-{self._tokens}"
        self.by_token[call.token] = call
        return call.token

    async def request(self, method: str, params: dict[str, Any], call: Call, timeout: float | None) -> dict[str, Any]:
        """Send one request for ``call``; the child's response message (``result`` or ``error``).
        Raises ``ChildGone`` or ``TimeoutError``; a cancelled caller cancels it on the child (U-01)."""
        self._next_id += 1
        cid = call.child_id = self._next_id
        self.calls[cid] = call
        self.last_used = time.monotonic()
        try:
            await self._write({"jsonrpc": "2.0", "id": cid, "method": method, "params": params})
            return await asyncio.wait_for(asyncio.shield(call.future), timeout)
        except (asyncio.CancelledError, TimeoutError) as exc:
            if self.gone is None and not call.future.done():
                reason = "timed out" if isinstance(exc, TimeoutError) else "the caller went away"
                note = self.notify("notifications/cancelled", {"requestId": cid, "reason": reason})
                self._asks_track(asyncio.get_running_loop().create_task(note))
            raise
        finally:
            self.calls.pop(cid, None)
            if call.token is not None:
                self.by_token.pop(call.token, None)
            self.last_used = time.monotonic()

    async def handshake(self, version: str, capabilities: dict[str, Any], client_info: dict[str, Any] | None,
                        era: str, timeout: float) -> dict[str, Any]:
        """Legacy: ``initialize`` + ``notifications/initialized`` (L-02, L-08). Modern: nothing to
        do (each request carries its ``_meta``), the child's discover result is known already."""
        self.era = era
        if era == "modern":
            return self.server
        info = {**BRIDGE_INFO, **(client_info or {})}
        params = {"protocolVersion": version, "capabilities": capabilities, "clientInfo": info}
        msg = await self.request("initialize", params, Call(None, None), timeout)
        result = msg.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("protocolVersion"), str):
            raise ChildGone(f"the child refused initialize: {brief(msg.get('error'))}")
        self.server = result
        await self.notify("notifications/initialized")
        return result

    async def discover(self, timeout: float) -> dict[str, Any] | None:
        """``server/discover`` (T-STDIO-15): the result when the child speaks 2026-07-28, else None."""
        meta = {META_PROTOCOL_VERSION: LATEST_VERSION, META_CLIENT_CAPABILITIES: {}, META_CLIENT_INFO: BRIDGE_INFO}
        try:
            msg = await self.request("server/discover", {"_meta": meta}, Call(None, None), timeout)
        except TimeoutError:
            return None
        result = msg.get("result")
        if isinstance(result, dict) and isinstance(result.get("supportedVersions"), list) and LATEST_VERSION in result["supportedVersions"]:
            self.server = result
            return result
        return None

    # -- reading -------------------------------------------------------------------------------

    async def _read(self) -> None:
        stdout = self.process.proc.stdout
        assert stdout is not None
        reason = "the child closed its stdout"
        try:
            while True:
                try:
                    line = await stdout.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    reason = "the child wrote a line over the size limit"
                    break
                if not line:
                    break
                if line.strip():
                    await self._on_line(line)
        except Exception as exc:  # a bug of ours must not leave calls waiting forever
            log.exception("reading child %d failed", self.pid)
            reason = f"reading the child failed: {exc}"
        if self.gone is None:
            # Say why in the callers' errors: its exit status and last stderr lines, when they come soon.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.proc.wait(), 1.0)
            await self.process.settle_stderr(0.2)
        self._end(reason, detailed=True)

    def _end(self, reason: str, *, detailed: bool = False) -> None:
        if self.gone is not None:
            return
        self.gone = reason
        error = ChildGone(self.describe_end() if detailed else reason)
        for call in list(self.calls.values()):
            if not call.future.done():
                call.future.set_exception(error)
                call.future.exception()  # retrieved: a caller that already left logs no warning
        self.ended.set()

    async def _on_line(self, line: bytes) -> None:
        try:
            msg = loads(line)
        except ParseError:
            self._garbage(line)
            return
        if not isinstance(msg, dict):
            self._garbage(line)
            return
        method = msg.get("method")
        if isinstance(method, str):
            raw = msg.get("params")
            params: dict[str, Any] = raw if isinstance(raw, dict) else {}
            if "id" in msg:
                self._asks_track(asyncio.get_running_loop().create_task(self._answer(msg["id"], method, params)))
            else:
                try:
                    await self.on_notify(self, method, params)
                except Exception:
                    log.debug("dropping %s from child %d", method, self.pid, exc_info=True)
            return
        call = self.calls.get(msg.get("id"))  # type: ignore[arg-type]
        if call is None or call.future.done() or ("result" not in msg and "error" not in msg):
            self._garbage(line)
            return
        call.future.set_result(msg)

    def _asks_track(self, task: asyncio.Task[None]) -> None:
        self._asks.add(task)
        task.add_done_callback(self._asks.discard)

    def _garbage(self, line: bytes) -> None:
        self.garbage += 1
        if self.garbage <= 20 or self.garbage % 1000 == 0:
            log.warning("child %d wrote something that is no JSON-RPC message (%d so far): %s",
                        self.pid, self.garbage, line[:200].decode("utf-8", "replace").rstrip())

    async def _answer(self, id_: Any, method: str, params: dict[str, Any]) -> None:
        """The child asked its client something: the owner asks the caller; the answer goes back."""
        try:
            result = await self.on_ask(self, method, params)
            reply = result_message(id_, result)
        except JSONRPCError as exc:
            reply = error_message(id_, exc.to_error())
        except Exception as exc:
            reply = error_message(id_, {"code": INTERNAL_ERROR, "message": f"the bridge could not ask the client: {exc}"})
        with contextlib.suppress(ChildGone):
            await self._write(reply)

    async def stop(self, grace: float) -> int | None:
        """Stop the process (close stdin, SIGTERM, SIGKILL) and fail what still waits on it."""
        self._end("the child was stopped")
        for task in list(self._asks):
            task.cancel()
        code = await self.process.stop(grace)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        return code

    def describe_end(self) -> str:
        code = self.process.returncode
        status = f" (exit status {code})" if code is not None else ""
        tail = self.process.stderr_tail()
        return f"{self.gone or 'the child ended'}{status}" + (f"; its stderr: {tail}" if tail else "")
