"""httpx for the HTTP client streams (``client``, ``sse_client``), imported only when a stream is made.

So ``import anyport`` (and ``import anyport.transports.http.client``) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from anyport._exceptions import AuthRequiredError

if TYPE_CHECKING:
    import httpx

__all__ = ["auth_required", "client_for", "load_httpx"]


def load_httpx() -> Any:
    """The ``httpx`` module; a clear ``ImportError`` when it is not installed."""
    try:
        import httpx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the HTTP client transport needs httpx: pip install httpx") from exc
    return httpx


def client_for(
    httpx_client: httpx.AsyncClient | None,
    timeout: float,
    sse_read_timeout: float | None,
    auth: httpx.Auth | None = None,
) -> tuple[httpx.AsyncClient, bool]:
    """The given httpx client (not ours to close), or a new one (ours): ``(client, owned)``.

    ``auth`` (e.g. ``anyport.oauth.OAuth``) is the new client's: every request goes through it.
    Redirects are never followed, so a token is never carried to another URL.
    """
    if httpx_client is not None:
        if auth is not None:
            raise ValueError("pass auth= or httpx_client=, not both (an httpx client carries its own auth)")
        return httpx_client, False
    hx = load_httpx()
    return hx.AsyncClient(timeout=hx.Timeout(timeout, read=sse_read_timeout), follow_redirects=False, auth=auth), True


def auth_required(url: str, www_authenticate: str | None) -> AuthRequiredError:
    """The error for a 401 that reached the transport: no ``auth=``, or one that could not help."""
    return AuthRequiredError(
        f"{url} requires authorization (HTTP 401); connect with auth=anyport.oauth.OAuth() "
        "(or a bearer token in headers=)",
        www_authenticate=www_authenticate,
    )
