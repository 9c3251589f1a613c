"""The human table of ``anyport probe`` and the one-line JSON error of a failed probe."""

from __future__ import annotations

from typing import Any

import orjson

from anyport.probe._result import ProbeResult

__all__ = ["error_line", "table"]


def _detail(name: str, detail: dict[str, Any]) -> str:
    if "error" in detail:
        return str(detail["error"])
    if name == "resolve":
        return ", ".join(detail.get("addresses", []))
    if name == "tls":
        return str(detail.get("tls_version", ""))
    if name == "auth":
        servers = detail.get("authorization_servers") or []
        return f"HTTP {detail.get('status')}, authorization server {servers[0] if servers else '?'}"
    if name == "handshake":
        return str(detail.get("method", ""))
    if name == "tools_list":
        return f"{detail.get('count')} tools"
    if name == "tools_call":
        return str(detail.get("tool", ""))
    return ""


def table(result: ProbeResult) -> str:
    """A few aligned lines: what was probed, each phase with its milliseconds, the verdict."""
    lines = [f"target     {result.target}"]
    if result.era is not None:
        server = " ".join(str(result.server[k]) for k in ("name", "version") if k in result.server) or "?"
        lines.append(f"speaks     {result.transport}, {result.era} era, {result.protocol_version}; server {server}")
    if result.phases:
        lines.append("")
        lines.append(f"{'phase':<12} {'':<4} {'ms':>9}")
        for p in result.phases:
            lines.append(f"{p.name:<12} {'ok' if p.ok else 'FAIL':<4} {p.ms:>9.1f}  {_detail(p.name, p.detail)}".rstrip())
        lines.append(f"{'total':<12} {'':<4} {result.duration_ms:>9.1f}")
    if result.tools is not None:
        lines.append("")
        drift = ""
        if result.tools.expected is not None:
            drift = "  (DRIFT: expected " + result.tools.expected + ")" if result.tools.drift else "  (as expected)"
        lines.append(f"tools      {result.tools.count}, sha256 {result.tools.sha256}{drift}")
    lines.append("")
    if result.error is None:
        lines.append("result     OK (exit 0)")
    else:
        e = result.error
        where = f" in {e.phase}" if e.phase else ""
        lines.append(f"result     FAILED{where}: {e.code}: {e.message} (exit {e.exit_code})")
    return "\n".join(lines)


def error_line(error: dict[str, Any]) -> str:
    """``{"error": {...}}`` on one line (what a failed probe prints on stderr)."""
    return orjson.dumps({"error": error}).decode()
