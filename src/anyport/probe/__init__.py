"""``anyport probe``: is this MCP server up, and does it still serve the same tools?

``probe(ProbeOptions(target))`` makes one real round trip (resolve, connect, TLS, the auth challenge,
the handshake in the era the server speaks, ``tools/list`` with a canonical hash, one
``tools/call``), times each phase and returns a ``ProbeResult`` with a stable error code and exit
code. ``anyport.probe.exporter`` serves the same probe to Prometheus (docs/operations.md).
"""

from anyport.probe._engine import ProbeOptions, probe
from anyport.probe._hash import canonical_tools, tools_hash
from anyport.probe._result import ERROR_EXITS, EXIT_CODES, Phase, ProbeError, ProbeResult, ToolsInfo

__all__ = [
    "ERROR_EXITS",
    "EXIT_CODES",
    "Phase",
    "ProbeError",
    "ProbeOptions",
    "ProbeResult",
    "ToolsInfo",
    "canonical_tools",
    "probe",
    "tools_hash",
]
