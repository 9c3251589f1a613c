"""Every protocol revision and every behaviour that differs between them, as one table.

Code never asks ``if version == ...``: it asks the ``Revision`` of the peer (DESIGN.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "LATEST_LEGACY_VERSION",
    "LATEST_VERSION",
    "LEGACY_VERSIONS",
    "MODERN_VERSIONS",
    "REVISIONS",
    "SUPPORTED_VERSIONS",
    "Revision",
    "negotiate_legacy",
    "revision",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Revision:
    version: str
    #: "legacy" (initialize handshake, sessions) or "modern" (per-request _meta, stateless).
    era: str
    #: JSON-RPC batches accepted on receive (J-11, 2025-03-26 only).
    batching: bool
    #: HTTP clients send ``MCP-Protocol-Version`` (T-HTTP-43, >= 2025-06-18).
    version_header: bool
    #: A POST's SSE stream opens with a priming event (T-HTTP-11, 2025-11-25).
    priming_event: bool
    #: An error whose request id could not be read may omit ``id`` (J-08, >= 2025-11-25).
    error_id_optional: bool
    #: JSON-RPC code for an unknown resource (F-RES-04).
    resource_not_found_code: int
    #: Results carry ``resultType`` (J-16) and caching hints (U-18).
    result_type: bool
    #: ``outputSchema`` / ``structuredContent`` exist (F-TOOL-06, >= 2025-06-18).
    structured_output: bool
    #: ``elicitation/create`` exists (>= 2025-06-18).
    elicitation: bool
    #: progress notifications may carry ``message`` (>= 2025-03-26).
    progress_message: bool
    #: audio content, tool annotations, completions capability (>= 2025-03-26).
    annotations: bool
    #: ``title`` fields (>= 2025-06-18), icons (>= 2025-11-25).
    titles: bool
    icons: bool
    #: Experimental tasks (2025-11-25 core; an extension on 2026-07-28).
    tasks: bool
    #: ``ping`` and ``logging/setLevel`` exist (removed on 2026-07-28).
    ping: bool
    #: Server->client requests allowed (legacy); modern uses MRTR instead (M-10).
    server_requests: bool
    #: HTTP status codes that make a client fall back to the next transport (T-BC-03).
    fallback_statuses: frozenset[int]
    #: Tasks as the ``io.modelcontextprotocol/tasks`` extension (SEP-2663): server-directed
    #: creation, ``tasks/update``, no ``tasks/result`` / ``tasks/list``.
    tasks_extension: bool = False
    #: The ``initialize`` result may carry ``instructions`` (>= 2025-03-26).
    instructions: bool = True

    #: ``era == "modern"`` (a field, not a property: it is read on every request).
    modern: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "modern", self.era == "modern")


_FALLBACK_ANY_4XX = frozenset(range(400, 500)) - {401, 403}
_FALLBACK_25_11 = frozenset({400, 404, 405})

REVISIONS: dict[str, Revision] = {
    r.version: r
    for r in (
        Revision(
            version="2024-11-05", era="legacy", batching=False, version_header=False, priming_event=False,
            error_id_optional=False, resource_not_found_code=-32002, result_type=False, structured_output=False,
            elicitation=False, progress_message=False, annotations=False, titles=False, icons=False, tasks=False,
            ping=True, server_requests=True, fallback_statuses=_FALLBACK_ANY_4XX, instructions=False,
        ),
        Revision(
            version="2025-03-26", era="legacy", batching=True, version_header=False, priming_event=False,
            error_id_optional=False, resource_not_found_code=-32002, result_type=False, structured_output=False,
            elicitation=False, progress_message=True, annotations=True, titles=False, icons=False, tasks=False,
            ping=True, server_requests=True, fallback_statuses=_FALLBACK_ANY_4XX,
        ),
        Revision(
            version="2025-06-18", era="legacy", batching=False, version_header=True, priming_event=False,
            error_id_optional=False, resource_not_found_code=-32002, result_type=False, structured_output=True,
            elicitation=True, progress_message=True, annotations=True, titles=True, icons=False, tasks=False,
            ping=True, server_requests=True, fallback_statuses=_FALLBACK_ANY_4XX,
        ),
        Revision(
            version="2025-11-25", era="legacy", batching=False, version_header=True, priming_event=True,
            error_id_optional=True, resource_not_found_code=-32002, result_type=False, structured_output=True,
            elicitation=True, progress_message=True, annotations=True, titles=True, icons=True, tasks=True,
            ping=True, server_requests=True, fallback_statuses=_FALLBACK_25_11,
        ),
        Revision(
            version="2026-07-28", era="modern", batching=False, version_header=True, priming_event=False,
            error_id_optional=True, resource_not_found_code=-32602, result_type=True, structured_output=True,
            elicitation=True, progress_message=True, annotations=True, titles=True, icons=True, tasks=False,
            ping=False, server_requests=False, fallback_statuses=_FALLBACK_25_11, tasks_extension=True,
        ),
    )
}

LEGACY_VERSIONS: tuple[str, ...] = tuple(v for v, r in REVISIONS.items() if not r.modern)
MODERN_VERSIONS: tuple[str, ...] = tuple(v for v, r in REVISIONS.items() if r.modern)
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(REVISIONS)
LATEST_LEGACY_VERSION = LEGACY_VERSIONS[-1]
LATEST_VERSION = MODERN_VERSIONS[-1]


def revision(version: str) -> Revision | None:
    return REVISIONS.get(version)


def negotiate_legacy(requested: object, supported: tuple[str, ...] = LEGACY_VERSIONS) -> str:
    """Answer to ``initialize``: echo a supported version, otherwise counter-offer our newest (L-05).

    Never echo a version we do not know, and never answer with a modern version: the
    handshake selects legacy semantics (M-12).
    """
    if isinstance(requested, str) and requested in supported:
        return requested
    return supported[-1]
