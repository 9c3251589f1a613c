"""stdio: a server on this process's stdin/stdout, and a client that spawns a server process.

Server side: stdout carries protocol messages and nothing else (T-STDIO-03). At start the real
stdout is duplicated for our own use and file descriptor 1 is pointed at stderr, so a stray
``print()`` in user code, a logging handler bound to stdout, or a child process inheriting fd 1
all end up on stderr instead of corrupting the stream. The server exits on stdin EOF (T-STDIO-11).

Client side: the child's stdout is framed without asyncio's 64 KiB line limit, its stderr is
always drained (kept as a tail for error reports, forwarded to logging), and closing follows
close-stdin -> wait -> SIGTERM -> wait -> SIGKILL (T-STDIO-09/10). A child that exits while
requests are outstanding is reported as ``ServerExitedError`` with its exit code and stderr tail.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import stat
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from anyport._exceptions import BrokenConnectionError, ConnectionClosedError, ServerExitedError, TransportError
from anyport.limits import Limits
from anyport.protocol._framing import LineFramer, Oversized, head_id
from anyport.runtime import StreamRuntime, _inline

if TYPE_CHECKING:
    from anyport.runtime import Application

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "StdioClientStream", "claim_stdout", "run_stdio_server", "serve_stdio"]

#: Default limit for one incoming message on a stdio server (``Limits.max_message_bytes``). Lines
#: above it are answered with -32600 and skipped without buffering them whole. Clients read
#: without a practical limit.
DEFAULT_MAX_MESSAGE_BYTES = Limits().max_message_bytes
_CLIENT_MAX_MESSAGE_BYTES = 1024 * 1024 * 1024
_CHUNK = 256 * 1024

log = logging.getLogger("anyport.stdio")


def _pollable(fd: int) -> bool:
    """Pipes, sockets and terminals can be watched by the event loop. Regular files and the other
    character devices (``/dev/null``) cannot: epoll refuses them, and uvloop aborts the process."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))


class _Writer:
    """Writes to a pipe with flow control, or to a regular file / tty with plain writes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        if not _pollable(self.fd):
            return  # a regular file or /dev/null: plain writes (uvloop aborts on epoll of them)
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(self.fd, "wb", buffering=0, closefd=False)
        try:
            transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, pipe)
        except (ValueError, OSError):
            return  # a regular file or something else that is not a pipe: write directly
        self._writer = asyncio.StreamWriter(transport, protocol, None, loop)

    def put(self, data: bytes) -> None:
        """Write without waiting: into the pipe transport's buffer, or straight into the file."""
        if self._writer is not None:
            self._writer.write(data)
            return
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def backlogged(self) -> bool:
        """More than 1 MiB of output waits for the client to read it."""
        return self._writer is not None and self._writer.transport.get_write_buffer_size() > 1 << 20

    async def write(self, data: bytes) -> None:
        self.put(data)
        if self.backlogged():
            await self.writable()

    async def drain(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()

    async def writable(self) -> None:
        """Wait while more than 1 MiB of output waits for the client to read it (backpressure)."""
        if self._writer is not None and self.backlogged():  # (narrows _writer for mypy)
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()


class _StdinPump(asyncio.Protocol):
    """Stdin as an event-loop protocol: each chunk is handled inside the read callback.

    No reader task to wake and no extra turn of the loop per message: a request whose handler
    never waits is answered before the callback returns. If handling a chunk has to wait (a
    full output pipe), it goes on in a task and later chunks queue behind it, with reading
    paused, so messages are always handled in order.
    """

    def __init__(self, handle: Callable[[bytes], Coroutine[Any, Any, None]]) -> None:
        self._handle = handle
        self._transport: asyncio.ReadTransport | None = None
        self._backlog: collections.deque[bytes] = collections.deque()
        self._busy = False
        self._eof = False
        #: Set once stdin reached EOF (or broke) and every chunk read before has been handled.
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def connect(cls, fd: int, handle: Callable[[bytes], Coroutine[Any, Any, None]]) -> _StdinPump | None:
        if not _pollable(fd):
            return None
        pipe = os.fdopen(fd, "rb", buffering=0, closefd=False)
        try:
            _, pump = await asyncio.get_running_loop().connect_read_pipe(lambda: cls(handle), pipe)
        except (ValueError, OSError):
            return None
        return pump

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._busy:
            self._backlog.append(data)
            if self._transport is not None:
                self._transport.pause_reading()
            return
        self._run(data)

    def _run(self, data: bytes) -> None:
        try:
            done, rest = _inline.start(self._handle(data))
        except Exception:
            log.exception("error while handling stdin")
            return
        if done:
            return
        assert isinstance(rest, _inline.Resumed)
        self._busy = True
        task = asyncio.get_running_loop().create_task(_inline.finish(rest), context=rest.context)
        task.add_done_callback(self._resume)

    def _resume(self, task: asyncio.Task[None]) -> None:
        self._busy = False
        if not task.cancelled() and task.exception() is not None:
            log.error("error while handling stdin", exc_info=task.exception())
        while self._backlog and not self._busy:
            self._run(self._backlog.popleft())
        if self._busy:
            return
        if self._eof:
            self._finish()
        elif self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def eof_received(self) -> bool | None:
        self._eof = True
        if not self._busy and not self._backlog:
            self._finish()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof_received()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Reader:
    """Stdin the event loop cannot watch: a regular file (``server < requests.jsonl``) is read
    directly, since it never blocks; anything else in a worker thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        try:
            self._file = stat.S_ISREG(os.fstat(fd).st_mode)
        except OSError:
            self._file = False

    async def read(self) -> bytes:
        if self._file:
            return os.read(self.fd, _CHUNK)
        return await asyncio.get_running_loop().run_in_executor(None, os.read, self.fd, _CHUNK)


class _StdoutStream:
    """The server's MessageStream over (stdin, the saved stdout).

    While ``hold`` is on (the read loop handles one chunk of input), messages are collected and
    written together by ``release``: one write for every answer a chunk produced, instead of one
    per answer. Messages are never reordered.
    """

    def __init__(self, writer: _Writer) -> None:
        self._writer = writer
        self._held: list[bytes] | None = None
        self._held_size = 0

    async def send(self, data: bytes) -> None:
        held = self._held
        if held is None:
            await self._writer.write(data + b"\n")
            return
        held.append(data)
        self._held_size += len(data)
        if self._held_size > _CHUNK:
            self.release()
            self.hold()
            await self._writer.writable()

    def hold(self) -> None:
        if self._held is None:
            self._held = []
            self._held_size = 0

    def release(self) -> None:
        """Write what was held, in one piece, without waiting (the caller awaits ``writable``)."""
        held, self._held = self._held, None
        if held:
            held.append(b"")
            self._writer.put(b"\n".join(held))

    async def receive(self) -> bytes | None:  # pragma: no cover - the stdio loop feeds frames itself
        return None

    async def aclose(self) -> None:
        await self._writer.drain()


def claim_stdout() -> int:
    """Keep the real stdout for protocol messages; send everything else written to fd 1 to stderr.

    Call it before importing user code, so banners printed at import time land on stderr too.
    Text still buffered in ``sys.stdout`` is flushed after the switch, onto stderr.
    """
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout.flush()
    return proto_fd


async def serve_stdio(
    server: Application,
    *,
    stdin_fd: int = 0,
    stdout_fd: int | None = None,
    limits: Limits | None = None,
    max_message_bytes: int | None = None,
    eof_grace: float = 2.0,
) -> None:
    """Serve ``server`` on stdin/stdout until stdin reaches EOF.

    ``limits``: ``max_message_bytes`` (one line) and ``max_inflight`` (requests running at once)
    apply here; ``max_message_bytes`` given on its own overrides the one in ``limits``.
    On EOF, requests still running get ``eof_grace`` seconds to finish (so ``cat requests |
    server`` gets its answers), then are cancelled and the server returns (T-STDIO-11).
    """
    limits = limits or Limits()
    if max_message_bytes is None:
        max_message_bytes = limits.max_message_bytes
    out_fd = claim_stdout() if stdout_fd is None else stdout_fd
    writer = _Writer(out_fd)
    reader = _Reader(stdin_fd)  # for stdin that the event loop cannot watch (a regular file)
    await writer.start()
    out = _StdoutStream(writer)
    session = StreamRuntime(server, out)
    session.conn.max_inflight = limits.max_inflight
    framer = LineFramer(max_message_bytes)

    async def handle(chunk: bytes) -> None:
        out.hold()  # the answers this chunk produces at once go out in one write
        try:
            for item in framer.feed(chunk):
                if isinstance(item, Oversized):
                    # Never parsed whole; its id is read from its first bytes (T-STDIO-17, J-08).
                    await session.send_error_frame(
                        f"Invalid Request: message of {item.size} bytes exceeds the limit of {max_message_bytes} bytes",
                        id_=head_id(item.head),
                    )
                else:
                    await session.feed(item)
        finally:
            out.release()
        # A client that stops reading stops us reading: no unbounded output buffer (T-STDIO-02).
        if writer.backlogged():
            await writer.writable()

    try:
        pump = await _StdinPump.connect(stdin_fd, handle)
        if pump is not None:
            await pump.done
        else:
            while chunk := await reader.read():
                await handle(chunk)
        tail = framer.pending()
        if tail:
            await session.feed(tail)
        # Let requests already running finish before exiting on EOF.
        pending = session.running()
        if pending:
            await asyncio.wait(pending, timeout=eof_grace)
    finally:
        await session.close()


def run_stdio_server(server: Application, **kw: Any) -> None:
    """Blocking entry point: run the event loop (uvloop when installed) and serve stdio."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve_stdio(server, **kw))


class StdioClientStream:
    """A MessageStream to a server process we spawn and supervise."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        shutdown_timeout: float = 2.0,
        stderr_lines: int = 50,
        max_message_bytes: int = _CLIENT_MAX_MESSAGE_BYTES,
    ) -> None:
        if not command:
            raise ValueError("an empty command")
        self.command = list(command)
        self.env = None if env is None else {**os.environ, **env}
        self.cwd = cwd
        self.shutdown_timeout = shutdown_timeout
        self.process: asyncio.subprocess.Process | None = None
        self._framer = LineFramer(max_message_bytes)
        self._lines: collections.deque[bytes] = collections.deque()
        self._stderr: collections.deque[str] = collections.deque(maxlen=stderr_lines)
        self._stderr_task: asyncio.Task[None] | None = None
        self._eof = False
        self._closed = False

    async def start(self) -> None:
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self.env,
                cwd=self.cwd,
                limit=_CHUNK,
            )
        except OSError as exc:
            raise BrokenConnectionError(f"cannot start {self.command[0]!r}: {exc}") from exc
        self._stderr_task = asyncio.get_running_loop().create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        stream = self.process.stderr
        framer = LineFramer(64 * 1024)
        while True:
            chunk = await stream.read(_CHUNK)
            if not chunk:
                break
            for line in framer.feed(chunk):
                if isinstance(line, bytes):
                    text = line.decode("utf-8", "replace")
                    self._stderr.append(text)
                    log.debug("server stderr: %s", text)

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr)

    async def send(self, data: bytes) -> None:
        if self._closed:
            raise ConnectionClosedError("the stdio client is closed")
        proc = self.process
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise await self.exit_error()
        try:
            proc.stdin.write(data + b"\n")
            if proc.stdin.transport.get_write_buffer_size() > 1 << 20:
                await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise await self.exit_error() from exc

    async def receive(self) -> bytes | None:
        while not self._lines:
            if self._eof or self.process is None or self.process.stdout is None:
                return None
            chunk = await self.process.stdout.read(_CHUNK)
            if not chunk:
                self._eof = True
                tail = self._framer.pending()
                if tail:
                    self._lines.append(tail)
                continue
            for item in self._framer.feed(chunk):
                if isinstance(item, bytes):
                    self._lines.append(item)
                else:
                    log.warning("dropped a %d-byte message from the server: over the limit", item.size)
        return self._lines.popleft()

    async def exit_error(self) -> TransportError:
        """Why the connection ended: the exit code and stderr tail of the server process."""
        if self._closed:
            return ConnectionClosedError("the stdio client is closed")
        proc = self.process
        code = None
        if proc is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                code = await asyncio.wait_for(proc.wait(), 1.0)
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 0.5)
        return ServerExitedError(
            f"server process {self.command[0]!r} exited", returncode=code, stderr_tail=self.stderr_tail()
        )

    async def aclose(self) -> None:
        """close stdin -> wait -> SIGTERM -> wait -> SIGKILL (T-STDIO-09, T-STDIO-10)."""
        if self._closed:
            return
        self._closed = True
        proc = self.process
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if proc.returncode is not None:
                break
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(proc.wait(), self.shutdown_timeout)
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._stderr_task
