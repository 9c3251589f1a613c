"""What both load generators say and check, whatever the transport.

The MCP revisions and eras the benchmark speaks, the client's identity, the 2026-07-28 request
envelope, the ``tools/call`` a benchmark repeats (``ToolCall``) and how its answer is checked,
and the failure kinds (``ServerFailure`` and its subclasses) that end a measurement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = [
    "CLIENT_INFO",
    "ECHO",
    "ECHO_TEXT",
    "ERAS",
    "LEGACY_VERSION",
    "LEGACY_VERSIONS",
    "MODERN_META",
    "MODERN_VERSION",
    "EraUnsupported",
    "ServerDied",
    "ServerFailure",
    "ServerHung",
    "ToolCall",
    "WrongAnswer",
    "short",
]

LEGACY_VERSION = "2025-11-25"
MODERN_VERSION = "2026-07-28"
#: The handshake revisions, newest first: what ``initialize`` offers, and what it accepts back.
LEGACY_VERSIONS = (LEGACY_VERSION, "2025-06-18", "2025-03-26", "2024-11-05")
ERAS = ("legacy", "modern")
CLIENT_INFO = {"name": "anyport-bench", "version": "1.0.0"}
#: The per-request envelope of a 2026-07-28 request (there is no initialize on that revision).
MODERN_META: dict[str, Any] = {
    "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
}
#: What every benchmark echo call sends, and expects back.
ECHO_TEXT = "hello, benchmark"


class ServerFailure(Exception):
    """The server under test stopped behaving; ``kind`` is a short label for the results table."""

    kind = "failed"


class ServerDied(ServerFailure):
    kind = "died"


class ServerHung(ServerFailure):
    kind = "hung"


class WrongAnswer(ServerFailure):
    kind = "wrong answer"


class EraUnsupported(ServerFailure):
    kind = "not supported"


def short(value: Any, limit: int = 300) -> str:
    """``value`` as (at most ``limit`` characters of) JSON, for error messages."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    else:
        text = orjson.dumps(value, default=repr).decode(errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The ``tools/call`` a benchmark repeats, and how its answer is checked.

    Every answer must be a result with ``isError`` unset or false; with ``expect_text`` its first
    content block must also be a text block carrying exactly that text.
    """

    name: str = "echo"
    arguments: Mapping[str, Any] = field(default_factory=lambda: {"text": ECHO_TEXT})
    expect_text: str | None = ECHO_TEXT

    def params(self, era: str) -> dict[str, Any]:
        params: dict[str, Any] = {"name": self.name, "arguments": dict(self.arguments)}
        if era == "modern":
            params["_meta"] = MODERN_META
        return params

    def line(self, request_id: int, era: str) -> bytes:
        """One newline-terminated request for ``era`` ("legacy" or "modern")."""
        msg = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": self.params(era)}
        return orjson.dumps(msg, option=orjson.OPT_APPEND_NEWLINE)

    def check(self, msg: Any) -> None:
        """Raise ``WrongAnswer`` unless ``msg`` is a successful result (with the expected text)."""
        result = msg.get("result") if isinstance(msg, dict) else None
        if not isinstance(result, dict):
            if isinstance(msg, dict) and "error" in msg:
                raise WrongAnswer(f"tools/call {self.name} answered with an error: {short(msg['error'])}")
            raise WrongAnswer(f"expected a tools/call result, got {short(msg)}")
        if result.get("isError"):
            raise WrongAnswer(f"tools/call {self.name} returned isError: {short(result)}")
        if self.expect_text is None:
            return
        try:
            text = result["content"][0]["text"]
        except (KeyError, IndexError, TypeError):
            raise WrongAnswer(f"result without a text block: {short(msg)}") from None
        if text != self.expect_text:
            raise WrongAnswer(f"result has the wrong text: {short(msg)}")


ECHO = ToolCall()
