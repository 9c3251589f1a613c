"""The children of one bridge: starting them (or taking a warm spare), the bounded pool, restarts
with backoff, and stopping them.

Two models (``BridgeOptions.shared``):

- **one child per session** (default): a legacy session gets its own child, started on the
  session's first request and stopped when the session ends (DELETE, the HTTP+SSE connection
  closing, the session's idle timeout) or when it was idle ``idle_timeout`` seconds, whether or not a
  GET stream is open. A 2026-07-28 request, which has no session, gets a child of its own for the
  request (and for its MRTR rounds). No child ever serves two callers.
- **shared children** (a server declared stateless): every request goes to the least busy child of
  a pool of ``min_children``..``max_children``, at most ``concurrency`` requests at once on each.

``spares`` children are kept started (not initialized: the caller's capabilities are not known
yet) so a new session does not wait for a process to start. At most ``max_children`` run at once,
spares included; beyond that a request waits up to ``queue_timeout`` for room, then gets
``PoolExhausted`` (HTTP 503 with ``Retry-After`` before a new session or a 2026-07-28 request).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from anyport._exceptions import SERVER_BUSY, JSONRPCError
from anyport.bridge._child import Child, ChildGone, OnAsk, OnNotify
from anyport.bridge._spawn import DEFAULT_ENV, child_env, spawn

__all__ = ["BridgeOptions", "ChildStartError", "Pool", "PoolExhausted", "header_env"]

log = logging.getLogger("anyport.bridge")


#: Headers no option can pass to a child: the caller's credentials and the transport's own (A-33).
_NEVER_PASSED = frozenset({"authorization", "proxy-authorization", "cookie", "mcp-session-id", "last-event-id"})


def header_env(name: str) -> str:
    """The environment variable a passed header becomes: ``X-Tenant`` -> ``MCP_HEADER_X_TENANT``."""
    return "MCP_HEADER_" + "".join(ch if ch.isalnum() else "_" for ch in name.upper())


class PoolExhausted(JSONRPCError):
    """No child can take the request now (``max_children`` reached, all busy)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, code=SERVER_BUSY, data={"retryAfter": retry_after})
        self.retry_after = retry_after


class ChildStartError(JSONRPCError):
    """A child could not be started or did not answer its handshake."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=SERVER_BUSY)


@dataclass(frozen=True, kw_only=True)
class BridgeOptions:
    """How a bridge runs its children (``anyport bridge --help`` names each option)."""

    command: tuple[str, ...]
    shared: bool = False
    min_children: int = 0
    max_children: int = 32
    spares: int = 1
    concurrency: int = 16
    idle_timeout: float = 600.0
    grace: float = 3.0
    start_timeout: float = 30.0
    call_timeout: float | None = 300.0
    queue_timeout: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    env_allow: tuple[str, ...] = DEFAULT_ENV
    env_set: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    max_line_bytes: int = 16 * 1024 * 1024
    stderr_lines: int = 50
    #: "auto": ask ``server/discover`` first (T-STDIO-15); "legacy": always ``initialize``.
    child_era: str = "auto"
    #: HTTP request headers a child started for a session or a request sees, as environment
    #: variables ``MCP_HEADER_<NAME>`` (``X-Tenant`` -> ``MCP_HEADER_X_TENANT``). Credentials never.
    pass_headers: tuple[str, ...] = ()
    #: A watchdog process in each child's group that kills the group when the bridge dies (see
    #: ``anyport.bridge._spawn``): also what a wrapper such as ``npx`` started goes with ``kill -9``.
    watch_group: bool = True

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("no command to bridge")
        if not 0 <= self.min_children <= self.max_children or self.max_children < 1:
            raise ValueError("need 0 <= --min <= --max and --max >= 1")
        if self.concurrency < 1:
            raise ValueError("--concurrency must be >= 1")
        if self.child_era not in ("auto", "legacy"):
            raise ValueError("child_era is 'auto' or 'legacy'")
        refused = [h for h in self.pass_headers if h.lower() in _NEVER_PASSED]
        if refused:
            raise ValueError(f"--pass-header {refused[0]}: credentials are never passed to children")
        if self.pass_headers and self.shared:
            raise ValueError("--pass-header needs a child per session (shared children are started for nobody)")


class Pool:
    """Every child of one bridge, whatever it serves."""

    def __init__(self, options: BridgeOptions, *, on_notify: OnNotify, on_ask: OnAsk) -> None:
        self.options = options
        self.on_notify = on_notify
        self.on_ask = on_ask
        self.children: set[Child] = set()
        self.spares: list[Child] = []
        self.shared: list[Child] = []
        self._room = asyncio.Condition()
        self.failures = 0  # consecutive failed starts
        self.last_failure: str | None = None
        self._not_before = 0.0
        self.closed = False
        self.started = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refill_task: asyncio.Task[None] | None = None
        #: Stops under way (a child, or a process started for nobody): awaited by ``aclose``.
        self._stopping: dict[object, asyncio.Future[Any]] = {}
        self._spawning: set[asyncio.Future[Any]] = set()
        #: Learned from the first child: "modern" when it answered server/discover.
        self.era = "legacy"

    # -- starting --------------------------------------------------------------------------------

    @property
    def room(self) -> int:
        return self.options.max_children - len(self.children)

    def backoff_left(self) -> float:
        return max(0.0, self._not_before - time.monotonic())

    async def _spawn(self, extra_env: dict[str, str] | None = None) -> Child:
        if self.closed:
            raise ChildStartError("the bridge is shutting down")
        wait = self.backoff_left()
        if wait > 0:
            raise ChildStartError(
                f"the stdio server failed to start {self.failures} time(s) in a row; next attempt in {wait:.1f} s"
                + (f" (last: {self.last_failure})" if self.last_failure else "")
            )
        o = self.options
        env = child_env(o.env_allow, {**o.env_set, **(extra_env or {})})
        spawning = asyncio.ensure_future(spawn(o.command, env=env, cwd=o.cwd, line_limit=o.max_line_bytes,
                                               tail_lines=o.stderr_lines, watch_group=o.watch_group))
        self._spawning.add(spawning)
        spawning.add_done_callback(self._spawning.discard)
        try:
            process = await asyncio.shield(spawning)
        except asyncio.CancelledError:
            # Started for nobody (the caller went away): stopped all the same, never left behind.
            spawning.add_done_callback(self._orphan)
            raise
        except OSError as exc:
            self._failed(f"cannot start {o.command[0]!r}: {exc}")
            raise ChildStartError(f"cannot start the stdio server: {exc}") from exc
        child = Child(process, on_notify=self.on_notify, on_ask=self.on_ask)
        self.children.add(child)
        self.started += 1
        self._watch(child)
        return child

    def _orphan(self, spawning: asyncio.Future[Any]) -> None:
        if not spawning.cancelled() and spawning.exception() is None:
            process = spawning.result()
            self._stopping[process] = asyncio.ensure_future(process.stop(self.options.grace))
            self._stopping[process].add_done_callback(lambda _t: self._stopping.pop(process, None))

    def _failed(self, reason: str) -> None:
        self.failures += 1
        self.last_failure = reason
        delay = min(self.options.backoff_max, self.options.backoff_initial * 2 ** (self.failures - 1))
        self._not_before = time.monotonic() + delay
        log.warning("stdio server failed to start (%d in a row, next attempt in %.1f s): %s", self.failures, delay, reason)

    def _watch(self, child: Child) -> None:
        async def reap() -> None:
            await child.ended.wait()
            if child in self.children:
                log.info("child %d ended: %s", child.pid, child.describe_end())
                # A child that is gone is stopped anyway (its group, its pipes), then forgotten.
                await self.stop(child)
        self._track(reap())

    def _track(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start(self, version: str, capabilities: dict[str, Any], client_info: dict[str, Any] | None,
                    extra_env: dict[str, str] | None = None) -> Child:
        """A child ready for one caller: a warm spare (none when it needs an environment of its own)
        or a new process, after its handshake."""
        child = self.spares.pop() if self.spares and not extra_env else None
        if child is None or not child.alive:
            await self._wait_for_room()
            child = await self._spawn(extra_env)
        self.refill()
        return await self._handshake(child, version, capabilities, client_info)

    async def _wait_for_room(self) -> None:
        """Room for one more child (``max_children``), waiting up to ``queue_timeout`` for it."""
        deadline = time.monotonic() + self.options.queue_timeout
        while self.room <= 0:
            if self.spares:  # a warm child makes room: it is not in use
                await self.stop(self.spares[0])
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise PoolExhausted(f"Server busy: all {self.options.max_children} children are in use", retry_after=1.0)
            async with self._room:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), min(left, 0.25))

    async def _handshake(self, child: Child, version: str, capabilities: dict[str, Any],
                         client_info: dict[str, Any] | None) -> Child:
        o = self.options
        try:
            async with asyncio.timeout(o.start_timeout):
                if self.era == "modern":
                    await child.discover(o.start_timeout)
                await child.handshake(version, capabilities, client_info, self.era, o.start_timeout)
        except (ChildGone, TimeoutError) as exc:
            await self.stop(child)
            why = child.describe_end() if isinstance(exc, ChildGone) else f"no answer to initialize within {o.start_timeout:g} s"
            self._failed(why)
            raise ChildStartError(f"the stdio server did not start: {why}") from None
        self.failures = 0
        return child

    async def probe(self) -> Child:
        """The first child: learns the child's era and what it serves (its serverInfo, capabilities)."""
        child = await self._spawn()
        if self.options.child_era == "auto":
            try:
                found = await asyncio.wait_for(child.discover(min(5.0, self.options.start_timeout)), self.options.start_timeout)
            except ChildGone:
                found = None
            if found is not None:
                self.era = "modern"
        if not child.alive:
            await self.stop(child)
            self._failed(child.describe_end())
            raise ChildStartError(f"the stdio server did not start: {child.describe_end()}")
        from anyport.protocol import LATEST_LEGACY_VERSION

        # Shared children all declare the same capabilities (some servers list tools by them).
        return await self._handshake(child, LATEST_LEGACY_VERSION, self._shared_caps if self.options.shared else {}, None)

    def refill(self) -> None:
        """Top up the warm spares and (shared model) the pool's minimum, in the background."""
        if self.closed or (self._refill_task is not None and not self._refill_task.done()):
            return
        self._refill_task = asyncio.get_running_loop().create_task(self._refill())

    async def _refill(self) -> None:
        while not self.closed:
            want_spare = len(self.spares) < self.options.spares and self.room > 0
            want_shared = self.options.shared and len(self.shared) < self.options.min_children and self.room > 0
            if not (want_spare or want_shared):
                return
            wait = self.backoff_left()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            try:
                if want_shared:
                    await self._add_shared()
                else:
                    self.spares.append(await self._spawn())
            except ChildStartError:
                continue

    # -- the shared model ------------------------------------------------------------------------

    async def _add_shared(self) -> Child:
        from anyport.protocol import LATEST_LEGACY_VERSION

        child = self.spares.pop() if self.spares else await self._spawn()
        child = await self._handshake(child, LATEST_LEGACY_VERSION, self._shared_caps, None)
        self.shared.append(child)
        return child

    #: What a shared child is told its client supports: the bridge asks the caller on each request.
    _shared_caps: ClassVar[dict[str, Any]] = {"roots": {}, "sampling": {}, "elicitation": {}}

    async def shared_child(self) -> Child:
        """The least busy shared child with room for one more request; waits for room a while."""
        deadline = time.monotonic() + self.options.queue_timeout
        while True:
            live = [c for c in self.shared if c.alive]
            self.shared = live
            free = [c for c in live if len(c.calls) < self.options.concurrency]
            if free:
                return min(free, key=lambda c: len(c.calls))
            if self.room > 0 or self.spares:
                return await self._add_shared()
            left = deadline - time.monotonic()
            if left <= 0:
                raise PoolExhausted(
                    f"Server busy: all {len(live)} children are at their limit of {self.options.concurrency} requests",
                    retry_after=1.0,
                )
            async with self._room:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), min(left, 0.25))

    async def released(self) -> None:
        """A request finished or a child stopped: someone waiting for room may go on."""
        async with self._room:
            self._room.notify_all()

    def exhausted(self) -> bool:
        """No room for another child, and (shared) none with room for another request."""
        if self.options.shared:
            return self.room <= 0 and not self.spares and all(len(c.calls) >= self.options.concurrency for c in self.shared)
        return self.room <= 0 and not self.spares

    # -- stopping ------------------------------------------------------------------------------

    async def stop(self, child: Child) -> None:
        """Stop ``child`` (once, whoever asks): the stop goes on even if the caller is cancelled."""
        stopping = self._stopping.get(child)
        if stopping is None:
            if child not in self.children:
                return
            self.children.discard(child)
            with contextlib.suppress(ValueError):
                self.shared.remove(child)
            with contextlib.suppress(ValueError):
                self.spares.remove(child)
            stopping = self._stopping[child] = asyncio.ensure_future(child.stop(self.options.grace))
            stopping.add_done_callback(lambda _t: self._stopping.pop(child, None))
        await asyncio.shield(stopping)
        await self.released()
        self.refill()

    def stop_soon(self, child: Child) -> None:
        self._track(self.stop(child))

    async def aclose(self) -> None:
        self.closed = True
        if self._refill_task is not None:
            self._refill_task.cancel()
        if self._spawning:  # a process being started now is stopped with the others
            await asyncio.wait(list(self._spawning), timeout=10)
            await asyncio.sleep(0)
        await asyncio.gather(*(self.stop(c) for c in list(self.children)), return_exceptions=True)
        while self._stopping:  # stops begun elsewhere (a session that ended, a child that crashed)
            await asyncio.gather(*list(self._stopping.values()), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
