"""What a ``Client`` answers when the server asks, and where the server's notifications go.

The user's ``on_elicit`` / ``on_sample`` / ``on_list_roots`` (or fixed ``roots``) answer
``elicitation/create``, ``sampling/createMessage`` and ``roots/list``, whether the server sends
them as requests (legacy era) or as MRTR input requests (2026-07-28); each one given declares
the matching client capability. ``on_log`` and ``on_notification`` receive notifications.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from anyport._exceptions import JSONRPCError
from anyport.client._session import RequestHandler

__all__ = ["Callbacks"]


async def _call(fn: Callable[..., Any], *args: Any) -> Any:
    out = fn(*args)
    if inspect.isawaitable(out):
        out = await out
    return out


def _plain(result: Any) -> Any:
    """Accept dataclass-like answers (``action``/``content`` attributes) as well as dicts."""
    if isinstance(result, dict):
        return result
    if hasattr(result, "action"):
        out: dict[str, Any] = {"action": result.action}
        content = getattr(result, "content", None)
        if content is not None:
            out["content"] = content.model_dump() if hasattr(content, "model_dump") else content
        return out
    return result


class Callbacks:
    """The user's handlers of what the server sends a ``Client`` (requests and notifications)."""

    __slots__ = ("_on_elicit", "_on_list_roots", "_on_log", "_on_notification", "_on_sample", "capabilities", "requests")

    def __init__(
        self,
        *,
        on_elicit: Callable[[dict[str, Any]], Any] | None,
        on_sample: Callable[[dict[str, Any]], Any] | None,
        on_list_roots: Callable[[], Any] | None,
        roots: Sequence[str | Mapping[str, Any]] | None,
        on_log: Callable[[dict[str, Any]], Any] | None,
        on_notification: Callable[[str, dict[str, Any]], Any] | None,
    ) -> None:
        self._on_log = on_log
        self._on_notification = on_notification
        self._on_elicit = on_elicit
        self._on_sample = on_sample
        if roots is not None and on_list_roots is None:
            fixed = [{"uri": r} if isinstance(r, str) else dict(r) for r in roots]
            on_list_roots = lambda: fixed  # noqa: E731
        self._on_list_roots = on_list_roots
        caps: dict[str, Any] = {}
        if on_elicit is not None:
            caps["elicitation"] = {"form": {}}
        if on_sample is not None:
            caps["sampling"] = {}
        if on_list_roots is not None:
            caps["roots"] = {"listChanged": False}
        #: The client capabilities the handlers given declare.
        self.capabilities = caps
        #: The server->client requests answered, by method (a session's handlers, and MRTR input requests).
        self.requests: dict[str, RequestHandler] = {
            "elicitation/create": self.elicit,
            "sampling/createMessage": self.sample,
            "roots/list": self.roots,
        }

    async def elicit(self, params: dict[str, Any]) -> Any:
        if self._on_elicit is None:
            raise JSONRPCError("this client does not handle elicitation", code=-32601)
        result = await _call(self._on_elicit, params)
        return _plain(result)

    async def sample(self, params: dict[str, Any]) -> Any:
        if self._on_sample is None:
            raise JSONRPCError("this client does not handle sampling", code=-32601)
        return _plain(await _call(self._on_sample, params))

    async def roots(self, params: dict[str, Any]) -> Any:
        if self._on_list_roots is None:
            raise JSONRPCError("this client has no roots", code=-32601)
        roots = await _call(self._on_list_roots)
        return {"roots": [{"uri": r} if isinstance(r, str) else dict(r) for r in roots]}

    def notified(self, method: str, params: dict[str, Any]) -> Any:
        if method == "notifications/message" and self._on_log is not None:
            return self._on_log(params)
        if self._on_notification is not None:
            return self._on_notification(method, params)
        return None
