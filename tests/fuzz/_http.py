"""The HTTP fuzzer: a real uvicorn on a free loopback port serving ``create_app`` (T-HTTP-*, T-SSE-*).

Streamable HTTP POSTs with generated bodies (single messages, batches, garbage, deep nesting,
oversized) and generated headers (Accept, Content-Type, MCP-Protocol-Version, Mcp-Session-Id,
Mcp-Method, Mcp-Name, Origin, Host: random, missing, duplicated, base64-sentinel encoded); raw
sockets for truncated, slow and malformed requests; the 2024-11-05 HTTP+SSE transport (GET /sse,
then POST /messages/?session_id=...) with the same frames as the stdio fuzzer.

Checked for every answer: never a 5xx; a JSON body is valid JSON-RPC and names only ids the
request carried (or none); a 200 answers every request of the body exactly once; a 202 has an
empty body and comes only for bodies without requests (T-HTTP-08); no -32603 from client input;
error bodies stay small. After each batch: ``/healthz`` and a 2026-07-28 ``tools/list`` answer.
At the end every session is DELETEd and the app's live sessions and SSE connections return to
what they were before.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import queue
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from tests.fuzz._gen import CAPS, INFO, LEGACY, MODERN, PV, Frame, Gen, encode
from tests.fuzz._oracle import (
    INTERNAL_ERROR,
    MAX_ERROR_BYTES,
    Expectation,
    StreamModel,
    Tally,
    compare,
    id_key,
    outgoing_problem,
    response_problem,
    signature,
    valid_id,
)

#: Settings of the fuzzed app: a small body limit (oversized bodies are cheap) and a short body
#: timeout (slow bodies are answered 408 quickly).
MAX_BODY = 512 * 1024
BODY_TIMEOUT = 0.5
ACCEPT_BOTH = "application/json, text/event-stream"
NAME_FIELDS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
LIVE_META = {PV: MODERN, CAPS: {}, INFO: {"name": "fuzz-live", "version": "1"}}


def make_app(**kw: Any) -> Any:
    """The app under test: the interop fixture server, small limits."""
    from anyport.transports.http import create_app
    from tests.interop.fixture_server import app as fixture_app

    return create_app(fixture_app, **{"max_body_bytes": MAX_BODY, "body_timeout": BODY_TIMEOUT, **kw})


@dataclass
class HttpReport:
    inputs: int = 0
    batches: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    #: Inputs the HTTP client refused to send (invalid header bytes): not sent, not counted.
    unsendable: int = 0
    #: Up to 3 examples of each kind of failure (``signature``); ``kinds`` counts them all.
    failures: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)

    def fail(self, problem: str) -> None:
        kind = signature(problem)
        self.kinds[kind] += 1
        if self.kinds[kind] <= 3:
            self.failures.append(problem)


class _ErrorLog(logging.Handler):
    """Counts errors the server logs (an exception in the app, a failed SSE connection)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record)[-3000:])


@dataclass
class _Case:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]
    body: bytes
    kind: str
    clean: bool  # no header chaos: the request itself is well-formed HTTP for its era
    sid: str | None = None


def _sse_messages(body: bytes) -> list[bytes]:
    """The ``data`` of each event of a whole SSE body (the server writes LF line ends, one data line)."""
    out = []
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
        payload = b"\n".join(data)
        if payload.strip():
            out.append(payload)
    return out


def _body_ids(body: bytes) -> tuple[list[Any], list[Any]]:
    """(request ids, response-shaped ids) readable in a body: what an answer may name."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [], []
    items = obj if isinstance(obj, list) else [obj]
    reqs = [i["id"] for i in items if isinstance(i, dict) and "method" in i and valid_id(i.get("id"))]
    others = [i["id"] for i in items if isinstance(i, dict) and "method" not in i and valid_id(i.get("id"))]
    return reqs, others


class HttpFuzzer:
    def __init__(self, app: Any, base: str, gen: Gen) -> None:
        self.app = app
        self.base = base
        self.port = int(base.rsplit(":", 1)[1])
        self.gen = gen
        # A new connection per request: on a kept-alive loopback connection each answer here waits
        # ~40 ms for a delayed ACK (Nagle), a fresh one takes ~1 ms.
        transport = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
        self.client = httpx.Client(base_url=base, timeout=httpx.Timeout(20.0), transport=transport)
        del self.client.headers["accept"]  # httpx's default Accept: */* would hide a missing one
        #: Live sessions we know of -> their revision.
        self.sessions: dict[str, str] = {}
        #: Every session id the server ever gave out (for the final DELETE).
        self.issued: set[str] = set()
        self.deleted: list[str] = []
        self.report = HttpReport()
        self.errors = _ErrorLog()

    # -- requests ----------------------------------------------------------------------------

    def _session_for(self, version: str | None = None) -> tuple[str, str] | None:
        if self.app.stateless:
            return None  # legacy requests are served without a session (T-HTTP-44 picks the revision)
        if self.deleted and self.gen.random() < 0.03:
            return self.gen.choice(self.deleted), "2025-11-25"  # T-HTTP-42: a DELETEd session is gone (404)
        if not self.sessions or self.gen.random() < 0.05:
            self._open_session(version or self.gen.choice(LEGACY))
        if not self.sessions:
            return None
        sid = self.gen.choice(sorted(self.sessions))
        return sid, self.sessions[sid]

    def _open_session(self, version: str) -> None:
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}}
        r = self.client.post("/mcp", headers={"accept": ACCEPT_BOTH, "content-type": "application/json"}, content=encode(body))
        sid = r.headers.get("mcp-session-id")
        if r.status_code != 200 or sid is None:
            self.report.fail(f"initialize {version} answered {r.status_code}: {r.text[:300]}")
            return
        self.issued.add(sid)
        self.sessions[sid] = version
        h = {"accept": ACCEPT_BOTH, "content-type": "application/json", "mcp-session-id": sid, "mcp-protocol-version": version}
        if version < "2025-06-18":
            del h["mcp-protocol-version"]
        r = self.client.post("/mcp", headers=h, content=b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        if r.status_code != 202:
            self.report.fail(f"notifications/initialized answered {r.status_code} (T-HTTP-08): {r.text[:300]}")

    def _header_value(self) -> bytes:
        g = self.gen
        return g.choice([
            b"", b" ", b"*/*", b"text/html", b"application/json", b"application/json; charset=utf-8", b"APPLICATION/JSON",
            b"text/event-stream", b"application/*", b"text/*, application/json;q=0.1", b"=?base64?", b"=?base64?dG9vbHMvbGlzdA==?=",
            b"=?base64?!!!?=", b"=?base64?dA?=", MODERN.encode(), b"2025-03-26", b"9999-99-99", g.text(20).encode("utf-8", "replace"),
            bytes(g.randrange(0x20, 0x7F) for _ in range(g.randrange(1, 40))), bytes(g.randrange(0x80, 0x100) for _ in range(3)),
            b"a" * g.choice([100, 8000]),
        ])

    def case(self) -> _Case:
        """One generated request to the Streamable HTTP endpoint."""
        g = self.gen
        frame = g.frame(asking=False, oversized_rate=0.01)
        try:
            obj: Any = orjson.loads(frame.data)
        except orjson.JSONDecodeError:
            obj = None
        headers: dict[bytes, bytes] = {b"accept": ACCEPT_BOTH.encode(), b"content-type": b"application/json"}
        modern = isinstance(obj, dict) and isinstance(obj.get("params"), dict) and isinstance(obj["params"].get("_meta"), dict) \
            and PV in obj["params"]["_meta"]
        sid = None
        if modern or (g.random() < 0.2 and not (isinstance(obj, dict) and obj.get("method") == "initialize")):
            headers[b"mcp-protocol-version"] = MODERN.encode()
            method = obj.get("method") if isinstance(obj, dict) else None
            if isinstance(method, str):
                headers[b"mcp-method"] = self._encode_field(method)
            name_field = NAME_FIELDS.get(method) if isinstance(method, str) else None
            params = obj.get("params") if isinstance(obj, dict) else None
            if name_field and isinstance(params, dict) and isinstance(params.get(name_field), str):
                headers[b"mcp-name"] = self._encode_field(params[name_field])
        elif not (isinstance(obj, dict) and obj.get("method") == "initialize") and g.random() < 0.9:
            picked = self._session_for()
            if picked is not None:
                sid, version = picked
                headers[b"mcp-session-id"] = sid.encode()
                if version >= "2025-06-18" or g.random() < 0.3:
                    headers[b"mcp-protocol-version"] = version.encode()
        items = list(headers.items())
        clean = True
        method_name, path = "POST", "/mcp"
        if g.random() < 0.3:
            clean = False
            for _ in range(g.randrange(1, 4)):
                op = g.randrange(8)
                names = [b"accept", b"content-type", b"mcp-protocol-version", b"mcp-session-id", b"mcp-method", b"mcp-name",
                         b"origin", b"host", b"last-event-id"]
                if op == 0 and items:
                    del items[g.randrange(len(items))]
                elif op == 1 and items:
                    items.append(g.choice(items))  # a repeated field
                elif op == 2:
                    items.append((g.choice(names), self._header_value()))
                elif op == 3:
                    items.append((b"origin", g.choice([b"http://localhost:3000", b"http://127.0.0.1", b"https://evil.example",
                                                        b"null", b"http://[::1]:99", b"http://localhost.evil.example", b"file://", b"::::"])))
                elif op == 4:
                    items.append((b"host", g.choice([b"evil.example", b"localhost", b"127.0.0.1:1", b"[::1]", b"[::1", b"", b"a:b:c"])))
                elif op == 5:
                    items.append((b"mcp-session-id", g.choice([g.randbytes(16).hex().encode(), b"", b"\xff", b"a" * 300,
                                                               (sorted(self.deleted)[0].encode() if self.deleted else b"x")])))
                elif op == 6:
                    method_name = g.choice(["GET", "DELETE", "PUT", "OPTIONS", "HEAD", "PATCH"])
                else:
                    path = g.choice(["/mcp/", "/MCP", "/mcp?x=1", "//mcp", "/nope", "/messages/", "/messages/?session_id=" + g.randbytes(16).hex(),
                                     "/readyz", "/healthz"])
        return _Case(method_name, path, items, frame.data, frame.kind, clean, sid)

    def _encode_field(self, value: str) -> bytes:
        """A request-metadata header value: plain, base64 sentinel (T-H26-16), or wrong."""
        g = self.gen
        r = g.random()
        if r < 0.1:
            return g.choice([b"wrong", b"=?base64?" + base64.b64encode(b"wrong") + b"?=", b"=?base64?%%%?=", b"\xe9"])
        plain = value.isascii() and value.isprintable() and value == value.strip(" \t") and not value.startswith("=?base64?")
        if plain and r < 0.8:
            return value.encode()
        return b"=?base64?" + base64.b64encode(value.encode("utf-8", "surrogatepass")) + b"?="

    def send(self, case: _Case) -> None:
        try:
            with self.client.stream(case.method, self.base + case.path, headers=case.headers, content=case.body) as r:
                body = b""
                sse = r.headers.get("content-type", "").startswith("text/event-stream")
                if not (sse and case.method == "GET"):  # a standalone stream stays open: hang up at once
                    for chunk in r.iter_raw():
                        body += chunk
                status, ctype = r.status_code, r.headers.get("content-type", "")
                issued = r.headers.get("mcp-session-id")
        except (httpx.LocalProtocolError, UnicodeEncodeError):
            self.report.unsendable += 1
            return
        except httpx.HTTPError as exc:
            self.report.fail(f"{case.method} {case.path} ({case.kind}) failed: {exc!r}; body {case.body[:200]!r}")
            return
        self.report.inputs += 1
        self.report.statuses[status] += 1
        if issued:
            self.issued.add(issued)
        self.check(case, status, ctype, body, issued)

    def check(self, case: _Case, status: int, ctype: str, body: bytes, issued: str | None) -> None:
        where = f"{case.method} {case.path} [{case.kind}] headers={case.headers!r} body={case.body[:300]!r}"
        fail = self.report.fail
        if status >= 500:
            fail(f"HTTP {status} (no 5xx for client input): {where}; answer {body[:300]!r}")
            return
        if case.method == "HEAD" or not case.path.startswith(("/mcp", "/messages")):
            return  # /healthz, /readyz, 404s of other paths: not JSON-RPC
        reqs, others = _body_ids(case.body) if case.method == "POST" and case.path.startswith("/mcp") else ([], [])
        if status == 202:
            if body:
                fail(f"T-HTTP-08: 202 with a body {body[:100]!r}: {where}")
            if reqs:
                fail(f"T-HTTP-08/T-HTTP-10: 202 for a body with requests {reqs!r}: {where}")
            return
        if ctype.startswith("application/json"):
            try:
                payloads = [orjson.loads(body)]
            except orjson.JSONDecodeError:
                fail(f"HTTP {status} with a JSON content type but no JSON: {body[:300]!r}; {where}")
                return
            raw_sizes = [len(body)]
        elif ctype.startswith("text/event-stream"):
            if case.method == "GET":
                return  # a stream we hung up on
            raws = _sse_messages(body)
            payloads, raw_sizes = [], []
            for raw in raws:
                try:
                    payloads.append(orjson.loads(raw))
                    raw_sizes.append(len(raw))
                except orjson.JSONDecodeError:
                    fail(f"SSE data that is not JSON: {raw[:200]!r}; {where}")
        else:
            return  # empty bodies (204 DELETE, 405 HEAD...), uvicorn's own plain-text 4xx for broken HTTP
        answered: Counter[tuple[str, Any]] = Counter()
        allowed = {id_key(i) for i in reqs} | {id_key(i) for i in others}
        for payload, size in zip(payloads, raw_sizes, strict=True):
            items = payload if isinstance(payload, list) else [payload]
            for item in items:
                problem = outgoing_problem(item) if isinstance(item, dict) and "method" in item and not isinstance(payload, list) else response_problem(item)
                if problem is not None:
                    fail(f"{problem}: answer {orjson.dumps(item)[:300]!r}; {where}")
                    continue
                if "method" in item:
                    continue  # progress / log notifications on the POST's stream
                if "error" in item and item["error"]["code"] == INTERNAL_ERROR:
                    fail(f"-32603 for client input: {orjson.dumps(item)[:300]!r}; {where}")
                if "error" in item and size > MAX_ERROR_BYTES:
                    fail(f"error answer of {size} bytes: {where}")
                rid = item.get("id")
                if rid is not None:
                    if id_key(rid) not in allowed:
                        fail(f"J-06: answer names id {rid!r}, which the request did not carry: {where}")
                    answered[id_key(rid)] += 1
        if status == 200 and case.method == "POST":
            for rid in reqs:
                if answered[id_key(rid)] != 1:
                    fail(f"J-06: request {rid!r} answered {answered[id_key(rid)]} times in a 200: {where}; answer {body[:300]!r}")
        if case.clean and case.sid is not None and case.sid in self.deleted and status != 404:
            fail(f"T-HTTP-42: a request on a DELETEd session got {status}, not 404: {where}")

    # -- raw sockets: what an HTTP client library will not send -------------------------------

    def raw_case(self) -> None:
        g = self.gen
        body = g.frame(asking=False, oversized_rate=0).data
        kind = g.randrange(5)
        head = [b"POST /mcp HTTP/1.1", b"Host: 127.0.0.1:%d" % self.port, b"Accept: " + ACCEPT_BOTH.encode(),
                b"Content-Type: application/json"]
        if kind == 3:
            head.append(b"Mcp-Method: t\xe9st\x80")  # latin-1 / obs-text in a field value
            head.append(b"MCP-Protocol-Version: " + MODERN.encode())
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                if kind == 0:  # truncated: Content-Length promises more than comes, then EOF
                    s.sendall(b"\r\n".join([*head, b"Content-Length: %d" % (len(body) + 50), b"", body[: len(body) // 2]]))
                    s.shutdown(socket.SHUT_WR)
                elif kind == 1:  # slow: the body drips in over more than the body timeout
                    s.sendall(b"\r\n".join([*head, b"Content-Length: %d" % len(body), b"", b""]))
                    for piece in (body[:1], body[1:2]):
                        time.sleep(BODY_TIMEOUT * 0.8)
                        with contextlib.suppress(OSError):
                            s.sendall(piece)
                elif kind == 2:  # chunked body in odd pieces
                    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
                    s.sendall(b"\r\n".join([*head, b"Transfer-Encoding: chunked", b"", chunks + b"0\r\n\r\n"]))
                elif kind == 3:
                    s.sendall(b"\r\n".join([*head, b"Content-Length: %d" % len(body), b"", body]))
                else:  # a broken request line / header block
                    s.sendall(g.choice([b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -1\r\n\r\n",
                                        b"POST /mcp HTTP/9.9\r\n\r\n", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
                                        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello"]))
                    s.shutdown(socket.SHUT_WR)
                answer = b""
                s.settimeout(5)
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in answer:
                        part = s.recv(65536)
                        if not part:
                            break
                        answer += part
        except OSError as exc:
            self.report.fail(f"raw request kind {kind}: {exc!r}")
            return
        self.report.inputs += 1
        for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            if line.lower().startswith(b"mcp-session-id:"):
                self.issued.add(line.split(b":", 1)[1].strip().decode("latin-1"))
        if answer.startswith(b"HTTP/1.1 "):
            status = int(answer[9:12])
            self.report.statuses[status] += 1
            if status >= 500:
                self.report.fail(f"raw request kind {kind}: HTTP {status}: {answer[:300]!r}; body {body[:200]!r}")

    # -- the 2024-11-05 HTTP+SSE transport ----------------------------------------------------

    def sse_round(self, frames: list[Frame]) -> None:
        """One HTTP+SSE connection: initialize, the frames POSTed one per body, a ping; every request answered once."""
        g = self.gen
        events: queue.Queue[bytes | None] = queue.Queue()
        opened = threading.Event()
        endpoint: list[str] = []
        # A raw socket and HTTP/1.0 (no chunked framing): the main thread can cut a blocked read short.
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.sendall(b"GET /sse HTTP/1.0\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n" % self.port)

        def reader() -> None:
            buf = b""
            head = True
            try:
                while part := sock.recv(65536):
                    buf += part
                    if head:
                        if b"\r\n\r\n" not in buf:
                            continue
                        status_line, buf = buf.split(b"\r\n\r\n", 1)
                        head = False
                        if not status_line.startswith(b"HTTP/1.1 200"):
                            return
                    while b"\n\n" in buf:
                        block, buf = buf.split(b"\n\n", 1)
                        lines = block.split(b"\n")
                        name = next((ln[6:].strip() for ln in lines if ln.startswith(b"event:")), b"message")
                        data = b"\n".join(ln[5:].lstrip(b" ") for ln in lines if ln.startswith(b"data:"))
                        if name == b"endpoint":
                            endpoint.append(data.decode())
                            opened.set()
                        elif data:
                            events.put(data)
            except OSError:
                pass
            finally:
                opened.set()
                events.put(None)

        thread = threading.Thread(target=reader, daemon=True, name="fuzz-sse")
        thread.start()
        try:
            if not opened.wait(10) or not endpoint:
                self.report.fail("T-SSE-02: GET /sse gave no endpoint event")
                return
            url = self.base + endpoint[0]
            version = g.choice(LEGACY)
            model = StreamModel()
            exp = Expectation()
            tally = Tally()
            init = encode({"jsonrpc": "2.0", "id": "init", "method": "initialize",
                           "params": {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "fuzz", "version": "1"}}})
            bodies = [init, b'{"jsonrpc":"2.0","method":"notifications/initialized"}', *(f.data for f in frames),
                      b'{"jsonrpc":"2.0","id":"sse-probe","method":"ping"}']
            for n, body in enumerate(bodies):
                chaos = 1 < n < len(bodies) - 1 and g.random() < 0.05  # never on the handshake or the probe
                ctype = g.choice([b"text/plain", b"application/json; charset=utf-8"]) if chaos else b"application/json"
                try:
                    r = self.client.post(url, headers=[(b"content-type", ctype)], content=body)
                except httpx.HTTPError as exc:
                    self.report.fail(f"POST {url} failed: {exc!r}; body {body[:200]!r}")
                    return
                self.report.inputs += 1
                self.report.statuses[r.status_code] += 1
                try:
                    parsed: Any = orjson.loads(body)
                except orjson.JSONDecodeError:
                    parsed = None
                accepted = ctype.startswith(b"application/json") and len(body) <= MAX_BODY and isinstance(parsed, (dict, list))
                want = 202 if accepted else (415 if not ctype.startswith(b"application/json") else 413 if len(body) > MAX_BODY else 400)
                if r.status_code != want:
                    self.report.fail(f"T-SSE-06: POST /messages/ answered {r.status_code}, expected {want}: body {body[:200]!r}; {r.text[:200]}")
                if r.status_code >= 500:
                    self.report.fail(f"HTTP {r.status_code} on /messages/: body {body[:200]!r}")
                if r.status_code == 202:
                    exp.merge(model.frame(body))
            if model.version is None:
                self.report.fail(f"HTTP+SSE initialize {version} did not take")
            deadline = time.monotonic() + 30
            while any(tally.counts.get(k, 0) < n for k, n in exp.required.items()) and time.monotonic() < deadline:
                try:
                    raw = events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if raw is None:
                    self.report.fail("T-SSE-07: the HTTP+SSE stream ended before every request was answered")
                    break
                tally.take(raw)
            while True:
                try:
                    raw = events.get_nowait()
                except queue.Empty:
                    break
                if raw is not None:
                    tally.take(raw)
            problems = tally.problems + compare(exp, tally)
            if problems:
                self.report.fail(f"HTTP+SSE ({version}): " + "\n  ".join(problems[:8]))
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            thread.join(10)

    # -- the run ------------------------------------------------------------------------------

    def alive(self) -> None:
        """Liveness (after every batch): /healthz and a 2026-07-28 tools/list."""
        r = self.client.get("/healthz")
        if r.status_code != 200 or r.json() != {"status": "ok"}:
            self.report.fail(f"/healthz answered {r.status_code}: {r.text[:200]}")
        body = encode({"jsonrpc": "2.0", "id": "live", "method": "tools/list", "params": {"_meta": LIVE_META}})
        h = {"accept": ACCEPT_BOTH, "content-type": "application/json", "mcp-protocol-version": MODERN, "mcp-method": "tools/list"}
        r = self.client.post("/mcp", headers=h, content=body)
        msgs = [orjson.loads(m) for m in _sse_messages(r.content)] if r.headers.get("content-type", "").startswith("text/event-stream") else [r.json()]
        final = msgs[-1] if msgs else None
        if r.status_code != 200 or not isinstance(final, dict) or final.get("id") != "live" or "result" not in final:
            self.report.fail(f"liveness: tools/list answered {r.status_code}: {r.text[:300]}")

    def prune(self, keep: int = 50) -> None:
        """DELETE sessions beyond ``keep`` (T-HTTP-42: 204, then 404)."""
        for sid in sorted(self.sessions)[: max(0, len(self.sessions) - keep)]:
            self.delete(sid)

    def delete(self, sid: str) -> None:
        r = self.client.delete("/mcp", headers={"mcp-session-id": sid})
        self.sessions.pop(sid, None)
        if r.status_code not in (204, 404):
            self.report.fail(f"DELETE of session {sid[:8]} answered {r.status_code}: {r.text[:200]}")
        if r.status_code == 204:
            self.deleted.append(sid)
            self.deleted = self.deleted[-100:]

    def run(self, inputs: int, *, batch_size: int = 50, sse_every: int = 4, raw_rate: float = 0.01, stop_after: int = 10,
            progress: Any = None) -> HttpReport:
        report = self.report
        watched = [logging.getLogger(n) for n in ("uvicorn.error", "anyport", "anyport.http", "anyport.http.sse", "anyport.server")]
        for lg in watched:
            lg.addHandler(self.errors)
        base_sessions = len(self.app.sessions)
        base_sse = len(self.app.legacy.connections) if self.app.legacy is not None else 0
        try:
            while report.inputs < inputs and len(report.kinds) < stop_after:
                report.batches += 1
                for _ in range(batch_size):
                    if self.gen.random() < raw_rate:
                        self.raw_case()
                    else:
                        self.send(self.case())
                if report.batches % sse_every == 0:
                    self.sse_round([self.gen.frame(asking=False, oversized_rate=0.01) for _ in range(batch_size // 2)])
                self.alive()
                self.prune()
                if progress is not None:
                    progress(report)
        finally:
            for sid in sorted(self.issued):
                with contextlib.suppress(httpx.HTTPError):
                    self.delete(sid)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (
                len(self.app.sessions) != base_sessions or (self.app.legacy is not None and len(self.app.legacy.connections) != base_sse)
            ):
                time.sleep(0.05)
            if len(self.app.sessions) != base_sessions:
                report.fail(f"{len(self.app.sessions)} live sessions after DELETE of all {len(self.issued)}, expected {base_sessions}")
            if self.app.legacy is not None and len(self.app.legacy.connections) != base_sse:
                report.fail(f"{len(self.app.legacy.connections)} HTTP+SSE connections left open, expected {base_sse}")
            for lg in watched:
                lg.removeHandler(self.errors)
            if self.errors.records:
                report.fail(f"the server logged {len(self.errors.records)} error(s); first:\n{self.errors.records[0]}")
            self.client.close()
        return report


def fuzz_http(inputs: int, *, seed: int = 0, progress: Any = None, **app_kw: Any) -> HttpReport:
    """Run the HTTP fuzzer against a fresh app on uvicorn (see tests/transports/_http_helpers.running)."""
    from tests.transports._http_helpers import running

    app = make_app(**app_kw)
    with running(app) as base:
        fuzzer = HttpFuzzer(app, base, Gen(seed, limit=MAX_BODY, huge=32 * 1024))
        return fuzzer.run(inputs, progress=progress)
