"""What a probe found: its phases with their durations, the tools' hash, the error, the exit code.

The exit codes keep the meanings of the MCP Inspector CLI's (0, 1, 3, 4, 5) and add two of
anyport's own (6: the server does not speak a protocol we can use; 7: the tool list drifted).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EXIT_CODES", "ERROR_EXITS", "Phase", "ProbeError", "ProbeResult", "ToolsInfo"]

#: exit code -> what it means (docs/operations.md keeps the same table).
EXIT_CODES: dict[int, str] = {
    0: "ok: every phase succeeded",
    1: "usage error or unexpected failure",
    3: "authentication required or refused (401/403)",
    4: "unreachable: DNS, refused, TLS, timeout, connection dropped, process exited",
    5: "tool error: the tool named by --call is missing, refused or returned isError",
    6: "protocol error: garbage, no common protocol version, a malformed auth challenge",
    7: "drift: the tools hash differs from --expect-tools-hash",
}

#: error code (the ``error.code`` string) -> exit code.
ERROR_EXITS: dict[str, int] = {
    "usage": 1,
    "unexpected": 1,
    "auth_required": 3,
    "unreachable": 4,
    "tls_error": 4,
    "timeout": 4,
    "connection_lost": 4,
    "server_exited": 4,
    "tool_error": 5,
    "tool_not_found": 5,
    "tool_not_read_only": 5,
    "protocol_error": 6,
    "version_mismatch": 6,
    "auth_not_enforced": 6,
    "bad_auth_challenge": 6,
    "tools_drift": 7,
}


@dataclass(slots=True)
class ProbeError(Exception):
    """Why a probe failed: a stable ``code`` (see ``ERROR_EXITS``), a message and what is known."""

    code: str
    message: str
    phase: str | None = None
    status: int | None = None
    url: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in ERROR_EXITS:
            raise ValueError(f"unknown probe error code {self.code!r}")

    @property
    def exit_code(self) -> int:
        return ERROR_EXITS[self.code]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.phase is not None:
            out["phase"] = self.phase
        if self.status is not None:
            out["status"] = self.status
        if self.url is not None:
            out["url"] = self.url
        out.update(self.detail)
        return out


@dataclass(slots=True)
class Phase:
    """One step of the probe and how long it took (``ms``, wall clock)."""

    name: str
    ok: bool
    ms: float
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "ms": round(self.ms, 2), **self.detail}


@dataclass(slots=True)
class ToolsInfo:
    count: int
    sha256: str
    expected: str | None = None

    @property
    def drift(self) -> bool:
        return self.expected is not None and self.expected != self.sha256

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"count": self.count, "sha256": self.sha256}
        if self.expected is not None:
            out["expected"] = self.expected
            out["drift"] = self.drift
        return out


@dataclass(slots=True)
class ProbeResult:
    """Everything one probe learnt. ``ok`` is true when no error was recorded."""

    target: str
    transport: str | None = None
    era: str | None = None
    protocol_version: str | None = None
    server: dict[str, Any] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    tools: ToolsInfo | None = None
    error: ProbeError | None = None
    started: float = field(default_factory=time.time)
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> int:
        return 0 if self.error is None else self.error.exit_code

    def fail(self, error: ProbeError) -> None:
        """Record ``error`` unless an earlier one is already recorded (the first failure decides)."""
        if self.error is None:
            self.error = error

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "transport": self.transport,
            "era": self.era,
            "protocol_version": self.protocol_version,
            "server": self.server or None,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "duration_ms": round(self.duration_ms, 2),
            "phases": [p.to_json() for p in self.phases],
            "tools": self.tools.to_json() if self.tools is not None else None,
            "error": self.error.to_json() if self.error is not None else None,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
        }
