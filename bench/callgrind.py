"""Instructions per request on two hot paths, counted by valgrind's callgrind.

A deterministic complement to the timed benchmarks (bench/stdio.py, bench/http.py): the whole
server process runs under ``valgrind --tool=callgrind`` and the instructions it executes (Ir) are
read from the totals of the callgrind output file. Each path is measured by subtraction:

    Ir/request = (Ir_total(W warm-up + N measured calls) - Ir_total(W warm-up calls)) / N

two fresh server processes with the same start-up, the same W warm-up calls and the same shutdown;
start-up, warm-up (imports, caches, first-call paths) and shutdown cancel out and what is left is
the steady-state cost of one request, everything in the process included (the event loop, uvicorn,
the JSON codec, the allocator).

- ``stdio``: ``python -m anyport serve APP`` (the interop fixture by default) on pipes; the legacy
  era does ``initialize`` + ``notifications/initialized`` first; then ``tools/call echo``, one
  request written and its answer read before the next.
- ``http``: ``python -m anyport serve APP --http --stateless --json-response`` (uvicorn; uvloop
  and httptools when installed, as ``anyport serve --http`` picks them), the "stateless JSON"
  case of bench/http.py: ``tools/call echo`` POSTs with ``MCP-Protocol-Version: 2025-11-25`` and no
  handshake (``--era modern``: the 2026-07-28 ``_meta`` envelope and ``Mcp-Method``/``Mcp-Name``
  headers), sequentially on ONE keep-alive connection to 127.0.0.1.

``--auth jwt`` / ``--auth api-key`` (HTTP only) serve with authentication and send a credential
with every request: a JWT (ES256) verified against a JWKS that this process serves on loopback
(``--jwt-issuer``/``--jwks-url``/``--resource-url``), or an API key from a keys file
(``--api-keys``). Compare with ``--auth none`` (the default) for the cost of authentication.

The client is this process (raw pipes / a raw socket, not under valgrind). Before measuring,
each server is started once without valgrind, so both measured runs find the same bytecode
caches. Servers get ``PYTHONPATH=--src`` (default: this checkout's src/), ``PYTHONHASHSEED=0``
and no ``ANYPORT_*`` variables, run in an empty temporary directory and are stopped by this script
(stdio: stdin closed; HTTP: the connection closed, then SIGTERM). Every wait is bounded.

Usage: python bench/callgrind.py [--only stdio|http] [--src DIR] [--warmup W] [--calls N] [--auth none|jwt|api-key] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("stdio", "http")
ERAS = ("legacy", "modern")
LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
CLIENT_INFO = {"name": "anyport-callgrind", "version": "1.0.0"}
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
}
ECHO_TEXT = "hello, benchmark"
#: Lines that are not the awaited answer (notifications, say) skipped before giving up.
MAX_SKIPPED = 100
_TOTALS = re.compile(rb"^(totals|summary):\s*(\d+)", re.MULTILINE)


class BenchError(Exception):
    """A run that could not be measured: the server died, hung, or answered wrongly."""


def log(text: str) -> None:
    print(f"[callgrind] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def tail(f: IO[bytes], limit: int = 800) -> str:
    f.flush()
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - limit))
    return f.read().decode(errors="replace").strip()


def callgrind_total(path: Path) -> int:
    """The instruction count of a callgrind output file: its ``totals:`` line (``summary:`` when
    there is none); the sum when the file holds several dumps."""
    found: dict[bytes, int] = {}
    for m in _TOTALS.finditer(path.read_bytes()):
        found[m.group(1)] = found.get(m.group(1), 0) + int(m.group(2))
    if not found:
        raise BenchError(f"no totals/summary line in {path}")
    return found.get(b"totals", found.get(b"summary", 0))


def echo_params(era: str) -> dict[str, Any]:
    params: dict[str, Any] = {"name": "echo", "arguments": {"text": ECHO_TEXT}}
    if era == "modern":
        params["_meta"] = MODERN_META
    return params


def check_echo(msg: Any, request_id: int) -> None:
    """A successful echo answer to ``request_id``, or BenchError."""
    if not isinstance(msg, dict) or msg.get("id") != request_id:
        raise BenchError(f"answer to id {request_id} expected, got {str(msg)[:300]}")
    result = msg.get("result")
    if not isinstance(result, dict) or result.get("isError"):
        raise BenchError(f"tools/call echo failed: {str(msg)[:300]}")
    content = result.get("content") or [{}]
    if content[0].get("text") != ECHO_TEXT:
        raise BenchError(f"unexpected echo answer: {str(msg)[:300]}")


@dataclass(frozen=True, slots=True)
class Config:
    python: str
    src: Path
    app: Path
    valgrind: str
    era: str
    warmup: int
    calls: int
    timeout: float
    startup_timeout: float
    work: Path
    auth: BenchAuth | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
        for k in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONTRACEMALLOC", "PYTHONMALLOC", "PYTHONSTARTUP"):
            env.pop(k, None)
        env["PYTHONPATH"] = str(self.src)
        env["PYTHONHASHSEED"] = "0"
        return env

    def command(self, path: str, out: Path | None, port: int = 0) -> list[str]:
        cmd = [self.python, "-m", "anyport", "serve", str(self.app)]
        if path == "http":
            cmd += ["--http", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                    "--stateless", "--json-response"]
            if self.auth is not None:
                cmd += self.auth.flags(port)
        if out is None:
            return cmd
        return [self.valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", *cmd]


class Server:
    """One server process; stderr (valgrind's and the server's) goes to a temporary file."""

    def __init__(self, cfg: Config, cmd: list[str], stdio: bool) -> None:
        self.cfg = cfg
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            cmd, cwd=cfg.work, env=cfg.env(), stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdio else subprocess.DEVNULL, stderr=self.stderr, close_fds=True,
        )
        self.t0 = time.monotonic()
        self.buf = b""

    def died(self, what: str) -> BenchError:
        return BenchError(f"{what}; exit code {self.proc.poll()}; stderr: {tail(self.stderr)}")

    # -- stdio ------------------------------------------------------------------------------------

    def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise self.died("server closed stdin") from None

    def read_line(self, timeout: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self.died(f"no answer within {timeout:.0f} s")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise self.died("server closed stdout")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def answer(self, request_id: int, timeout: float) -> Any:
        for _ in range(MAX_SKIPPED):
            line = self.read_line(timeout)
            if not line.strip():
                continue
            msg = json.loads(line)
            if isinstance(msg, dict) and msg.get("id") == request_id:
                return msg
        raise BenchError(f"no answer to id {request_id} in {MAX_SKIPPED} lines")

    # -- shutdown ---------------------------------------------------------------------------------

    def stop(self, close_stdin: bool, timeout: float) -> str:
        """Ends the process (stdin EOF, else SIGTERM; SIGKILL after ``timeout``): how it ended."""
        proc = self.proc
        if close_stdin and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        elif proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
        how = f"exit code {proc.returncode}"
        if proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.terminate()
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            how = f"killed after {timeout:.0f} s (exit code {proc.returncode})"
        if proc.stdout is not None:
            proc.stdout.close()
        return how

    def close(self) -> None:
        if self.proc.poll() is None:
            self.stop(close_stdin=False, timeout=5)
        self.stderr.close()


# -- the stdio path -------------------------------------------------------------------------------


def stdio_run(cfg: Config, calls: int, out: Path | None) -> float:
    """One stdio server: handshake (legacy), ``calls`` sequential echo calls, stdin closed.
    Returns the wall time in seconds."""
    server = Server(cfg, cfg.command("stdio", out), stdio=True)
    try:
        if cfg.era == "legacy":
            server.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": LEGACY_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}})
            init = server.answer(0, cfg.startup_timeout)
            if "result" not in init:
                raise BenchError(f"initialize failed: {str(init)[:300]}")
            server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        params = echo_params(cfg.era)
        first = True
        for rid in range(1, calls + 1):
            server.send({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params})
            check_echo(server.answer(rid, cfg.startup_timeout if first else cfg.timeout), rid)
            first = False
        how = server.stop(close_stdin=True, timeout=cfg.startup_timeout)
        if server.proc.returncode != 0:
            raise server.died(f"server ended badly ({how})")
        return time.monotonic() - server.t0
    finally:
        server.close()


class BenchAuth:
    """The credentials of ``--auth``: a JWKS served from this process and a token for each port
    (``jwt``), or a keys file and its key (``api-key``)."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self._server: Any = None
        if kind == "jwt":
            import threading

            from joserfc import jwk

            self.key = jwk.ECKey.generate_key("P-256", parameters={"kid": "bench", "alg": "ES256", "use": "sig"})
            document = json.dumps({"keys": [self.key.as_dict(private=False)]}).encode()
            reply = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (
                len(document), document)
            listener = socket.create_server(("127.0.0.1", 0))
            listener.settimeout(0.5)
            self._server = listener
            self._stop = threading.Event()

            def serve() -> None:  # answers every request with the JWKS (bench/ shadows http.server)
                while not self._stop.is_set():
                    try:
                        conn, _ = listener.accept()
                    except (TimeoutError, OSError):
                        continue
                    with conn:
                        conn.settimeout(5)
                        with contextlib.suppress(OSError):
                            data = b""
                            while b"\r\n\r\n" not in data and len(data) < 65536:
                                chunk = conn.recv(4096)
                                if not chunk:
                                    break
                                data += chunk
                            conn.sendall(reply)

            self.issuer = f"http://127.0.0.1:{listener.getsockname()[1]}"
            threading.Thread(target=serve, daemon=True).start()
        else:
            from anyport.auth import new_api_key

            self.api_key, entry = new_api_key("bench", ["tools.read"])
            self.keys_file = work / "keys.txt"
            self.keys_file.write_text(entry.line() + "\n")

    def flags(self, port: int) -> list[str]:
        if self.kind == "jwt":
            return ["--jwt-issuer", self.issuer, "--jwks-url", self.issuer + "/jwks",
                    "--resource-url", f"http://127.0.0.1:{port}/mcp"]
        return ["--api-keys", str(self.keys_file), "--resource-url", f"http://127.0.0.1:{port}/mcp"]

    def header(self, port: int) -> str:
        if self.kind == "jwt":
            from joserfc import jwt

            now = int(time.time())
            claims = {"iss": self.issuer, "sub": "bench", "aud": f"http://127.0.0.1:{port}/mcp", "iat": now,
                      "exp": now + 6 * 3600, "scope": "tools.read", "client_id": "bench"}
            return f"Authorization: Bearer {jwt.encode({'alg': 'ES256', 'kid': 'bench'}, claims, self.key)}\r\n"
        return f"X-API-Key: {self.api_key}\r\n"

    def close(self) -> None:
        if self._server is not None:
            self._stop.set()
            self._server.close()


# -- the HTTP path --------------------------------------------------------------------------------


class HttpClient:
    """A minimal HTTP/1.1 client: one keep-alive connection, one request at a time."""

    def __init__(self, sock: socket.socket, port: int, era: str, extra: str = "") -> None:
        self.sock = sock
        self.buf = b""
        head = [f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                "Accept: application/json, text/event-stream\r\n", extra]
        if era == "modern":
            head.append(f"MCP-Protocol-Version: {MODERN_VERSION}\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n")
        else:
            head.append(f"MCP-Protocol-Version: {LEGACY_VERSION}\r\n")
        self.head = "".join(head).encode()
        self.params = echo_params(era)

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise BenchError("server closed the connection")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise BenchError("header line too long")
            self._more()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def echo(self, rid: int) -> None:
        body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": self.params},
                          separators=(",", ":")).encode()
        self.sock.sendall(self.head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        status = self._line()
        headers: dict[bytes, bytes] = {}
        for _ in range(200):
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        else:
            raise BenchError("too many response headers")
        if b"content-length" in headers:
            data = self._take(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            for _ in range(10_000):
                size = int(self._line().split(b";")[0], 16)
                parts.append(self._take(size))
                self._line()
                if size == 0:
                    break
            data = b"".join(parts)
        else:
            raise BenchError(f"response without a length: {status!r} {headers}")
        if not status.startswith(b"HTTP/1.1 200"):
            raise BenchError(f"HTTP {status.decode(errors='replace')}: {data[:300]!r}")
        if headers.get(b"connection", b"").lower() == b"close":
            raise BenchError("the server closes the keep-alive connection")
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip()
        if ctype != b"application/json":
            raise BenchError(f"JSON reply expected, got {ctype.decode(errors='replace')!r}")
        check_echo(json.loads(data), rid)

    def finish(self) -> None:
        """Half-closes the connection and waits for the server to close its side, so the server has
        seen the end of the connection before it is told to stop (the same shutdown every run)."""
        self.sock.shutdown(socket.SHUT_WR)
        for _ in range(1000):
            if not self.sock.recv(65536):
                return
        raise BenchError("the server keeps sending after the last answer")


def connect(server: Server, port: int, timeout: float) -> socket.socket:
    """The client's one connection, retried until the server listens (uvicorn listens once the
    app's start-up is done). No probe connection: refused attempts never reach the server."""
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise server.died("server exited before listening")
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise server.died(f"server not listening after {timeout:.0f} s") from None
            time.sleep(0.05)


def http_run(cfg: Config, calls: int, out: Path | None) -> float:
    """One HTTP server: ``calls`` sequential echo POSTs on one keep-alive connection, the
    connection closed, SIGTERM. Returns the wall time in seconds."""
    port = free_port()
    server = Server(cfg, cfg.command("http", out, port), stdio=False)
    try:
        sock = connect(server, port, cfg.startup_timeout)
        with sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = HttpClient(sock, port, cfg.era, cfg.auth.header(port) if cfg.auth is not None else "")
            for rid in range(1, calls + 1):
                sock.settimeout(cfg.startup_timeout if rid == 1 else cfg.timeout)
                try:
                    client.echo(rid)
                except (OSError, BenchError) as exc:
                    raise server.died(f"request {rid}: {exc}") from None
            sock.settimeout(cfg.timeout)
            client.finish()
        how = server.stop(close_stdin=False, timeout=cfg.startup_timeout)
        if server.proc.returncode != 0:
            raise server.died(f"server ended badly ({how})")
        return time.monotonic() - server.t0
    finally:
        server.close()


# -- measuring ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    path: str
    era: str
    warmup: int
    calls: int
    ir_warmup_only: int
    ir_warmup_and_calls: int
    ir_per_request: float
    wall_s_warmup_only: float
    wall_s_warmup_and_calls: float


def measure(cfg: Config, path: str) -> Result:
    run = stdio_run if path == "stdio" else http_run
    run(cfg, 1, None)  # without valgrind: bytecode caches written now, not during a measured run
    outs = {n: cfg.work / f"{path}-{n}.callgrind.out" for n in (cfg.warmup, cfg.warmup + cfg.calls)}
    walls: dict[int, float] = {}
    for n, out in outs.items():
        log(f"{path}: {n} calls under callgrind ...")
        walls[n] = run(cfg, n, out)
        log(f"{path}: {n} calls: {callgrind_total(out):,} Ir in {walls[n]:.1f} s")
    base, full = (callgrind_total(outs[n]) for n in (cfg.warmup, cfg.warmup + cfg.calls))
    return Result(
        path, cfg.era, cfg.warmup, cfg.calls, base, full, (full - base) / cfg.calls,
        round(walls[cfg.warmup], 2), round(walls[cfg.warmup + cfg.calls], 2),
    )


def table(results: Sequence[Result]) -> str:
    rows = [["path", "Ir/request", "Ir(W+N)", "Ir(W)", "W", "N", "wall s (W+N / W)"]]
    for r in results:
        label = "stdio tools/call" if r.path == "stdio" else "HTTP stateless JSON"
        rows.append([
            f"{label} ({r.era})", f"{r.ir_per_request:,.0f}", f"{r.ir_warmup_and_calls:,}", f"{r.ir_warmup_only:,}",
            str(r.warmup), str(r.calls), f"{r.wall_s_warmup_and_calls:.0f} / {r.wall_s_warmup_only:.0f}",
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for j, row in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("| " + " | ".join(cells) + " |")
        if j == 0:
            lines.append("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--only", choices=PATHS, help="measure one path (default: both)")
    p.add_argument("--src", type=Path, default=ROOT / "src", help="src dir put on PYTHONPATH (default: %(default)s)")
    p.add_argument("--app", type=Path, help="server file (default: tests/interop/fixture_server.py next to --src)")
    p.add_argument("--python", default=sys.executable, help="interpreter of the servers (default: this one)")
    p.add_argument("--valgrind", default="valgrind", help="valgrind binary")
    p.add_argument("--era", choices=ERAS, default="legacy",
                   help="legacy: 2025-11-25 (stdio handshake; HTTP stateless, no handshake); modern: 2026-07-28")
    p.add_argument("--warmup", type=int, default=200, help="warm-up calls in both runs (default 200)")
    p.add_argument("--calls", type=int, default=2000, help="measured calls (default 2000)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one answer (default 60)")
    p.add_argument("--startup-timeout", type=float, default=600.0,
                   help="seconds for start-up / first answer / exit under valgrind (default 600)")
    p.add_argument("--auth", choices=("none", "jwt", "api-key"), default="none",
                   help="HTTP: serve with authentication and send a JWT or an API key with every request")
    p.add_argument("--keep", type=Path, help="keep the callgrind output files in this directory")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = p.parse_args(argv)
    if args.warmup < 0 or args.calls < 1:
        p.error("--warmup must be >= 0 and --calls >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    valgrind = shutil.which(args.valgrind)
    if valgrind is None:
        print(f"callgrind.py: {args.valgrind} not found", file=sys.stderr)
        return 2
    src = args.src.resolve()
    if not (src / "anyport" / "__init__.py").is_file():
        print(f"callgrind.py: no anyport package in {src}", file=sys.stderr)
        return 2
    app = (args.app or src.parent / "tests" / "interop" / "fixture_server.py").resolve()
    if not app.is_file():
        print(f"callgrind.py: no server file {app} (use --app)", file=sys.stderr)
        return 2
    paths = [args.only] if args.only else list(PATHS)
    results: list[Result] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="anyport-callgrind-") as tmp:
        auth = BenchAuth(args.auth, Path(tmp)) if args.auth != "none" else None
        cfg = Config(args.python, src, app, valgrind, args.era, args.warmup, args.calls, args.timeout,
                     args.startup_timeout, Path(tmp), auth)
        log(f"src {src}, app {app}, era {args.era}, auth {args.auth}, W={args.warmup}, N={args.calls}")
        try:
            for path in paths:
                results.append(measure(cfg, path))
        except BenchError as exc:
            print(f"callgrind.py: {exc}", file=sys.stderr)
            return 1
        finally:
            if auth is not None:
                auth.close()
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                for f in Path(tmp).glob("*.callgrind.out"):
                    shutil.copy2(f, args.keep / f.name)
    elapsed = time.monotonic() - t0
    if args.json:
        print(json.dumps({
            "src": str(src), "app": str(app), "python": args.python, "seconds": round(elapsed, 1),
            "results": [asdict(r) for r in results],
        }, indent=2))
    else:
        print(table(results))
        print(f"\nsrc {src}; {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
