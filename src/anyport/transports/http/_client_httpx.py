"""httpx for the HTTP client streams (``client``, ``sse_client``), imported only when a stream is made.

So ``import anyport`` (and ``import anyport.transports.http.client``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["client_for", "load_httpx"]


def load_httpx() -> Any:
    """The ``httpx`` module; a clear ``ImportError`` when it is not installed."""
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the HTTP client transport needs httpx: pip install httpx") from exc
    return httpx


def client_for(
    httpx_client: httpx.AsyncClient | None, timeout: float, sse_read_timeout: float | None
) -> tuple[httpx.AsyncClient, bool]:
    """The given httpx client (not ours to close), or a new one (ours): ``(client, owned)``."""
    if httpx_client is not None:
        return httpx_client, False
    hx = load_httpx()
    return hx.AsyncClient(timeout=hx.Timeout(timeout, read=sse_read_timeout), follow_redirects=False), True
