"""``_Scopes``: which scopes a tool, resource or prompt needs (``@app.tool(scopes=[...])``), the
check at call time, and the listings filtered to what the caller may use (A-27, F-TOOL-10).

The principal is the one the transport authenticated (``anyport.runtime.current_principal``); with
none (stdio, an HTTP server without auth) nothing is checked or hidden: authentication is the
transport's business, and stdio stays unauthenticated by design (T-STDIO-08). An HTTP transport
with auth refuses a call that lacks a scope with 403 before it runs; the check here covers every
other way a request may reach a handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from anyport._exceptions import InvalidRequestError
from anyport.runtime import current_principal
from anyport.server._entries import _Prompt, _Resource, _Tool

__all__ = ["InsufficientScopeError", "scope_tuple"]


class InsufficientScopeError(InvalidRequestError):
    """A call the principal lacks scopes for (-32600, ``data.requiredScopes`` names them)."""


def scope_tuple(scopes: Iterable[str] | None) -> tuple[str, ...]:
    """``scopes`` as given to a decorator, checked: words without spaces."""
    if scopes is None:
        return ()
    if isinstance(scopes, str):
        raise TypeError("scopes is a list of strings, e.g. scopes=['notes.read']")
    out = tuple(dict.fromkeys(scopes))
    if any(not isinstance(s, str) or not s or any(c.isspace() or c in '"\\' for c in s) for s in out):
        raise ValueError(f"invalid scope in {list(out)!r}: a scope is a non-empty word (RFC 6749 §3.3)")
    return out


def _has(principal: Any, scopes: tuple[str, ...]) -> bool:
    granted = getattr(principal, "scopes", ())
    return all(s in granted for s in scopes)


class _Scopes:
    """The scope rules of ``Server``."""

    _tools: dict[str, _Tool]
    _prompts: dict[str, _Prompt]
    #: Listings show only what the caller's principal has the scopes for (``Server(hide_unauthorized=True)``).
    hide_unauthorized: bool

    #: ``_Resources._find_resource``.
    _find_resource: Callable[[str], tuple[_Resource, dict[str, str]] | None]

    def required_scopes(self, method: str, params: dict[str, Any]) -> tuple[str, ...]:
        """The scopes a ``tools/call``, ``resources/read`` or ``prompts/get`` needs (else none)."""
        if method == "tools/call":
            name = params.get("name")
            tool = self._tools.get(name) if isinstance(name, str) else None
            return tool.scopes if tool is not None else ()
        if method == "prompts/get":
            name = params.get("name")
            prompt = self._prompts.get(name) if isinstance(name, str) else None
            return prompt.scopes if prompt is not None else ()
        if method in ("resources/read", "resources/subscribe"):
            uri = params.get("uri")
            found = self._find_resource(uri) if isinstance(uri, str) else None
            return found[0].scopes if found is not None else ()
        return ()

    @staticmethod
    def _check_scopes(what: str, scopes: tuple[str, ...]) -> None:
        """Raise ``InsufficientScopeError`` when the current principal lacks one of ``scopes``."""
        if not scopes:
            return
        principal = current_principal()
        if principal is not None and not _has(principal, scopes):
            raise InsufficientScopeError(
                f"Forbidden: {what} needs the scopes {' '.join(scopes)}", data={"requiredScopes": list(scopes)},
            )

    def _visible(self, scopes: tuple[str, ...]) -> bool:
        """Whether a listing shows an entry needing ``scopes`` to the current caller."""
        if not scopes or not self.hide_unauthorized:
            return True
        principal = current_principal()
        return principal is None or _has(principal, scopes)
