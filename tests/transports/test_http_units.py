"""Pure parts of the Streamable HTTP transport: header rules, SSE framing, the session store."""

from __future__ import annotations

import asyncio
import base64

import pytest

from anyport import ConnectionClosedError, HeaderValueError, InvalidParamsError, Server
from anyport.protocol import (
    ResponseReceived,
    accepts_json_and_sse,
    comment,
    decode_field_value,
    is_json_content_type,
    message_event,
    status_for,
)
from anyport.transports.http import LiveSessions
from anyport.transports.http._headers import HostAllowList, OriginAllowList, split_host


def _b64(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


def test_field_values_plain_and_sentinel() -> None:
    """T-H26-16, T-H26-17, T-H26-18: OWS stripped, sentinel decoded, bad values refused."""
    assert decode_field_value(" tools/call\t") == "tools/call"
    assert decode_field_value(_b64("héllo wörld")) == "héllo wörld"
    assert decode_field_value(_b64(" padded ")) == " padded "
    assert decode_field_value(_b64("")) == ""
    for bad in (
        "=?base64?not base64?=",
        "=?base64?aGk?=",              # missing padding: not canonical
        "=?base64?aGl=?=",             # non-zero trailing bits: not canonical
        "=?base64?" + base64.b64encode(b"\xff\xfe").decode() + "?=",  # not UTF-8
        "=?base64?aGk=",               # unterminated sentinel
        "caf\xe9",                     # raw non-ASCII (latin-1 decoded header bytes)
        "a\x01b",                      # control character
    ):
        with pytest.raises(HeaderValueError):
            decode_field_value(bad)
    assert decode_field_value("=?BASE64?aGk=?=") == "=?BASE64?aGk=?="  # markers are exact and lowercase


def test_hosts() -> None:
    """T-HTTP-02: localhost, 127.0.0.1, [::1] with any port by default; configured lists are exact."""
    default = HostAllowList(None)
    for ok in ("localhost", "LOCALHOST:8000", "127.0.0.1:1", "[::1]", "[::1]:8080"):
        assert default.allows(ok), ok
    for bad in ("evil.example", "127.0.0.2", "localhost.evil.example", "[::2]:80", "", None):
        assert not default.allows(bad), bad
    configured = HostAllowList(["mcp.example.com", "other.example:8443"])
    assert configured.allows("mcp.example.com:9000")
    assert configured.allows("other.example:8443") and not configured.allows("other.example:80")
    assert not configured.allows("localhost")
    assert HostAllowList(["*"]).allows("anything")
    assert split_host("[::1]:80") == ("[::1]", "80") and split_host("h") == ("h", None)


def test_origins() -> None:
    default = OriginAllowList(None)
    assert default.allows("http://localhost:6274") and default.allows("https://127.0.0.1")
    assert default.allows("http://[::1]:3000")
    for bad in ("null", "http://evil.example", "file://localhost", "http://localhost.evil.example"):
        assert not default.allows(bad), bad
    configured = OriginAllowList(["https://app.example.com/"])
    assert configured.allows("https://APP.example.com") and not configured.allows("http://app.example.com")
    assert OriginAllowList(["*"]).allows("null")


def test_accept_and_content_type() -> None:
    """T-HTTP-06: both types (wildcards count)."""
    assert accepts_json_and_sse("application/json, text/event-stream")
    assert accepts_json_and_sse("text/event-stream;q=0.9, application/json;q=1")
    assert accepts_json_and_sse("*/*")
    assert not accepts_json_and_sse("application/json")
    assert not accepts_json_and_sse("text/event-stream")
    assert not accepts_json_and_sse(None)
    assert is_json_content_type("application/json; charset=utf-8") and is_json_content_type("Application/JSON")
    assert not is_json_content_type("text/json") and not is_json_content_type(None)


def test_status_mapping() -> None:
    """DIGEST §15, T-H26-13: modern error classes carry HTTP statuses; legacy errors ride on 200."""
    def err(code: int, id_: int | None = 1) -> dict[str, object]:
        msg: dict[str, object] = {"jsonrpc": "2.0", "error": {"code": code, "message": "x"}}
        if id_ is not None:
            msg["id"] = id_
        return msg

    assert status_for({"jsonrpc": "2.0", "id": 1, "result": {}}, modern=True) == 200
    assert status_for(err(-32601), modern=True) == 404
    for code in (-32020, -32021, -32022, -32602, -32700, -32600):
        assert status_for(err(code), modern=True) == 400
    assert status_for(err(-32603), modern=True) == 200
    assert status_for(err(-32601), modern=False) == 200
    assert status_for(err(-32700, None), modern=False) == 400


def test_sse_framing() -> None:
    """DIGEST §21: one data line per event, blank-line terminated; comments start with a colon."""
    assert message_event({"a": "x\ny"}) == b'event: message\ndata: {"a":"x\\ny"}\n\n'
    assert message_event({}, event_id="s1-1").startswith(b"id: s1-1\n")
    with pytest.raises(ValueError):
        message_event({}, event_id="a\nb")
    assert comment() == b": keepalive\n\n"


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_session_store_expiry_capacity_and_delete() -> None:
    """T-HTTP-39: expired or deleted sessions are gone; a session with a client connection open on its
    streams never expires, one whose client left its handlers behind does (issue 10)."""
    server = Server("s")
    clock = _Clock()
    store = LiveSessions(idle_timeout=10, max_sessions=2, clock=clock)
    a = await store.create(server.open_connection())
    b = await store.create(server.open_connection())
    assert a is not None and b is not None and a.id != b.id
    assert await store.create(server.open_connection()) is None  # full
    clock.now = 5
    assert await store.get(a.id) is a  # touched at 5
    fut = b.expect(1)  # b waits for the client, on the stream its client reads: not idle
    b.attach()
    clock.now = 12
    assert await store.get(a.id) is a and await store.get(b.id) is b
    b.deliver(ResponseReceived(1, "roots/list", {"roots": []}, None))
    assert fut.result() == {"roots": []}
    b.detach()  # the response ended at 12: idle from now on
    clock.now = 30
    assert await store.get(b.id) is None and b.closed  # idle for 18 s > 10 s
    c = await store.create(server.open_connection())
    assert c is not None and len(store) == 2  # a (expired, not yet swept) and c: full
    extra = await store.create(server.open_connection())  # a full store sweeps the expired a first
    assert extra is not None and len(store) == 2 and a.closed
    assert await store.delete(extra.id) is extra
    waiting = c.expect(2)
    task = asyncio.get_running_loop().create_task(asyncio.sleep(30))
    c.track("r1", task)
    assert await store.delete(c.id) is c and await store.get(c.id) is None
    with pytest.raises(ConnectionClosedError):
        waiting.result()
    await asyncio.sleep(0)
    assert task.cancelled()
    with pytest.raises(ConnectionClosedError):
        c.expect(3)
    assert await store.delete("unknown") is None
    left = await store.create(server.open_connection())
    assert left is not None
    behind = asyncio.get_running_loop().create_task(asyncio.sleep(30))
    left.track("r2", behind)  # busy, but no client connection open: nobody is there any more
    clock.now = 45
    assert await store.sweep() == 1 and left.closed
    await asyncio.sleep(0)
    assert behind.cancelled()
    d = await store.create(server.open_connection())
    assert d is not None
    err = d.expect(4)
    d.deliver(ResponseReceived(4, "sampling/createMessage", None, {"code": -32602, "message": "no"}))
    with pytest.raises(InvalidParamsError):
        err.result()
    await store.aclose()
    assert d.closed and len(store) == 0


def test_request_headers_are_read_lazily_and_repeated_fields_joined() -> None:
    """RFC 9110 §5.3: a repeated field is one comma-joined value; names match case-insensitively."""
    from anyport.transports.http._gate import HTTPRequest as _Request

    req = _Request({"method": "POST", "path": "/mcp", "headers": [(b"Accept", b"application/json"), (b"accept", b"text/event-stream"), (b"host", b"h")]})
    assert req.get(b"accept") == "application/json, text/event-stream"
    assert req.get(b"host") == "h"
    assert req.get(b"origin") is None
    gen = _Request({"method": "GET", "path": "/", "headers": iter([(b"mcp-session-id", b"abc"), (b"x-latin", "é".encode("latin-1"))])})
    assert gen.get(b"mcp-session-id") == "abc"
    assert gen.get(b"x-latin") == "é"
