"""Starting and stopping one stdio child: its own process group, a parent-death signal, an
allow-listed environment, its stderr kept as a bounded tail, and SIGTERM then SIGKILL to the group.

The parent-death signal comes from a tiny launcher run by the same Python (``-I -S -c``): it asks
the kernel (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, through ctypes) to kill it when the bridge dies,
checks that the bridge is still its parent (it may have died in between), then ``exec``s the
command, which keeps the setting. So ``kill -9`` of the bridge leaves no child behind, without a
``preexec_fn`` (unsafe with threads). The signal reaches the child only, not what it started (the
server behind ``npx`` or ``sh -c``): for those the launcher first forks a watchdog into the group
(``watch_group``, ~4 MiB) that blocks on a pipe whose other end only the bridge holds; when the
bridge is gone, however it died, the pipe closes and the watchdog kills the whole group. Elsewhere
than Linux there is no parent-death signal; the watchdog and the end of stdin remain.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["DEFAULT_ENV", "ChildProcess", "child_env", "spawn"]

log = logging.getLogger("anyport.bridge")

#: Variables a child gets from the bridge's environment unless told otherwise (``--env``).
DEFAULT_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")

_LAUNCHER = """\
import os, signal, sys
parent, watch = int(sys.argv[1]), int(sys.argv[2])
if watch >= 0 and os.fork() == 0:
    # The group's watchdog (forked before anything else is loaded: it stays small). It holds no
    # pipe of the server; when the bridge is gone (the other end of its pipe closes, however the
    # bridge died) it kills the whole group, grandchildren too.
    # Every other descriptor goes: a forked process never execs, so close-on-exec ones (the
    # loop's own pipes and sockets, the server's pipes) would stay open in it otherwise.
    os.closerange(0, watch)
    os.closerange(watch + 1, os.sysconf("SC_OPEN_MAX"))
    try:
        while os.read(watch, 64):
            pass
    except OSError:
        pass
    os.killpg(0, signal.SIGKILL)
    os._exit(0)
if watch >= 0:
    os.close(watch)
if sys.platform.startswith("linux"):
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)
    except Exception:
        pass
if os.getppid() != parent:  # the bridge died before the parent-death signal was set
    os._exit(70)
try:
    os.execvp(sys.argv[3], sys.argv[3:])
except OSError as exc:
    sys.stderr.write(f"anyport bridge: cannot run {sys.argv[3]!r}: {exc.strerror}\\n")
    os._exit(127)
"""


def child_env(allow: Iterable[str] = DEFAULT_ENV, set_: Mapping[str, str] | None = None,
              source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: the allowed names present in ``source`` (the bridge's own by
    default), then ``set_``. Nothing else: no token or secret reaches a child unless named."""
    src = os.environ if source is None else source
    env = {name: src[name] for name in allow if name in src}
    env.update(set_ or {})
    return env


class ChildProcess:
    """One running child: its pipes, its stderr tail, and how to stop its whole process group."""

    def __init__(self, proc: asyncio.subprocess.Process, argv: Sequence[str], tail_lines: int, watch_fd: int = -1) -> None:
        self.proc = proc
        #: The bridge's end of the watchdog's pipe: open while the child may live (closed by ``stop``).
        self.watch_fd = watch_fd
        self.pid = proc.pid
        self.argv = list(argv)
        self.tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._stderr = asyncio.get_running_loop().create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        """T-STDIO-06: always drain stderr (a full pipe would block the child); keep a bounded tail."""
        stream = self.proc.stderr
        if stream is None:
            return
        name = os.path.basename(self.argv[0]) if self.argv else "child"
        while True:
            try:
                line = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):  # a giant stderr line: drop a chunk of it
                with contextlib.suppress(Exception):
                    await stream.read(65536)
                continue
            if not line:
                return
            text = line[:2000].decode("utf-8", "replace").rstrip()
            self.tail.append(text)
            log.info("[%s %d] %s", name, self.pid, text)

    async def settle_stderr(self, timeout: float) -> None:
        """Wait a little for the last stderr lines of a child that is ending."""
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._stderr), timeout)

    def stderr_tail(self, lines: int = 5) -> str:
        return " | ".join(list(self.tail)[-lines:])

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def stop(self, grace: float) -> int | None:
        """Close stdin, then SIGTERM the group, then SIGKILL it (T-STDIO-09/10); the exit status."""
        proc = self.proc
        if proc.stdin is not None and not proc.stdin.is_closing():
            with contextlib.suppress(Exception):
                proc.stdin.close()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                _kill_group(self.pid, sig)
            try:
                await asyncio.wait_for(proc.wait(), grace if sig is not signal.SIGKILL else 5.0)
                break
            except TimeoutError:
                continue
        # The group may still hold grandchildren after the leader exited: end them too.
        _kill_group(self.pid, signal.SIGKILL)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._stderr, 1.0)
        self._stderr.cancel()
        if self.watch_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.watch_fd)  # the watchdog (killed with the group already) needs it no more
            self.watch_fd = -1
        transport = getattr(proc, "_transport", None)  # its pipes, now: not when collected after the loop
        if transport is not None:
            transport.close()
        return proc.returncode


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def spawn(argv: Sequence[str], *, env: Mapping[str, str], cwd: str | None = None,
                line_limit: int = 16 * 1024 * 1024, tail_lines: int = 50, watch_group: bool = True) -> ChildProcess:
    """Start ``argv`` in a process group of its own, killed with the bridge (see the module doc).
    ``watch_group``: also a watchdog in the group that kills all of it when the bridge is gone.
    Raises ``OSError`` when even the launcher cannot start."""
    if not argv:
        raise ValueError("no command to run")
    read_end, write_end = os.pipe() if watch_group else (-1, -1)
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), str(read_end), *argv]
    try:
        proc = await asyncio.create_subprocess_exec(
            *launcher, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=dict(env), cwd=cwd, start_new_session=True, limit=line_limit,
            pass_fds=(read_end,) if watch_group else (),
        )
    except BaseException:
        if watch_group:
            os.close(write_end)
        raise
    finally:
        if watch_group:
            os.close(read_end)
    return ChildProcess(proc, argv, tail_lines, watch_fd=write_end)
