"""How the user (or a test) answers an authorization request: headless or in a browser.

An ``Authorizer`` gives the redirect URI to register and, for an authorization URL, returns the URL
the authorization server sent the browser back to (with ``code``, ``state`` and maybe ``iss``).

- ``HeadlessAuthorizer``: a callback the caller supplies, or by default one GET of the
  authorization URL without following redirects, reading its ``Location`` (authorization servers
  that approve at once, like the conformance suite's, or a test's).
- ``BrowserAuthorizer``: opens the system browser and waits, a bounded time, for the redirect on
  a loopback listener (``127.0.0.1``, a port the OS picks; RFC 8252 §7.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from anyport._exceptions import OAuthResponseError

__all__ = ["Authorizer", "BrowserAuthorizer", "HeadlessAuthorizer", "follow_redirect"]

#: ``(authorization_url) -> the URL the browser was redirected to`` (sync or async).
AuthorizeCallback = Callable[[str], "Awaitable[str] | str"]


@runtime_checkable
class Authorizer(Protocol):
    async def redirect_uri(self) -> str: ...

    async def authorize(self, authorization_url: str) -> str: ...


async def follow_redirect(authorization_url: str, *, timeout: float = 30.0) -> str:
    """GET ``authorization_url`` without following redirects; the ``Location`` it answers with."""
    import httpx

    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as http:
        try:
            resp = await http.get(authorization_url)
        except httpx.HTTPError as exc:
            raise OAuthResponseError(f"the authorization request to {authorization_url} failed: {exc!r}") from exc
    location = resp.headers.get("location")
    if resp.status_code not in (301, 302, 303, 307, 308) or not location:
        raise OAuthResponseError(
            f"the authorization endpoint answered HTTP {resp.status_code} without a redirect: "
            "it needs a person (use BrowserAuthorizer)"
        )
    return str(resp.url.join(location))


class HeadlessAuthorizer:
    """No browser: ``callback(authorization_url)`` returns the redirect URL (default: ``follow_redirect``).

    ``interactive`` is False: the grant runs inside the request that met the 401.

    Args:
        callback: sync or async; gets the authorization URL, returns where the browser was sent back to.
        redirect_uri: the redirect URI registered with the authorization server.
    """

    def __init__(
        self, callback: AuthorizeCallback | None = None, *, redirect_uri: str = "http://localhost:3000/callback"
    ) -> None:
        self._callback = callback
        self._redirect_uri = redirect_uri
        self.interactive = False

    async def redirect_uri(self) -> str:
        return self._redirect_uri

    async def authorize(self, authorization_url: str) -> str:
        if self._callback is None:
            return await follow_redirect(authorization_url)
        result = self._callback(authorization_url)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, str):
            raise OAuthResponseError("the authorization callback must return the redirect URL as a string")
        return result


_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>anyport</title>"
    b"<p>Authorization received. You can close this window and go back to your terminal.</p>"
)


def _open_in_background(url: str) -> None:
    """``webbrowser.open`` in a thread of its own: a browser named by ``BROWSER`` (a terminal browser,
    a script) runs until it is done, and the loopback listener must answer it meanwhile."""
    import threading

    threading.Thread(target=webbrowser.open, args=(url,), name="anyport-browser", daemon=True).start()


class BrowserAuthorizer:
    """Opens the browser; waits at most ``timeout`` seconds for the redirect on 127.0.0.1.

    ``interactive`` is True: ``Client`` authorizes before its handshake, not inside a request.

    Args:
        timeout: seconds to wait for the person to finish in the browser.
        open_browser: how to show the URL, called on the event loop (default: ``webbrowser.open`` in a
            thread of its own); the URL is also printed to stderr.
        path: the redirect URI's path.
    """

    def __init__(
        self, *, timeout: float = 300.0, open_browser: Callable[[str], object] | None = None, path: str = "/callback"
    ) -> None:
        self.timeout = timeout
        self.interactive = True
        self._open = open_browser or _open_in_background
        self._path = path
        self._server: asyncio.Server | None = None
        self._port: int | None = None
        self._waiter: asyncio.Future[str] | None = None

    async def redirect_uri(self) -> str:
        """The listener's URI; a later authorization (a step-up) gets the same port when it is free,
        so a dynamically registered client stays valid."""
        if self._server is None:
            server = None
            if self._port is not None:
                with contextlib.suppress(OSError):
                    server = await asyncio.start_server(self._handle, "127.0.0.1", self._port)
            if server is None:
                server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self._server = server
            self._port = int(server.sockets[0].getsockname()[1])
        return f"http://127.0.0.1:{self._port}{self._path}"

    async def authorize(self, authorization_url: str) -> str:
        import sys

        redirect = await self.redirect_uri()
        self._waiter = asyncio.get_running_loop().create_future()
        print(f"Opening the browser to authorize; if it does not open, visit:\n  {authorization_url}", file=sys.stderr)
        with contextlib.suppress(Exception):
            self._open(authorization_url)
        try:
            return await asyncio.wait_for(self._waiter, self.timeout)
        except TimeoutError:
            raise OAuthResponseError(
                f"no authorization came back to {redirect} within {self.timeout:.0f} s"
            ) from None
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            for _ in range(100):  # the headers: read and ignored, bounded
                header = await asyncio.wait_for(reader.readline(), 10)
                if header in (b"\r\n", b"\n", b""):
                    break
            parts = line.decode("latin-1").split()
            target = parts[1] if len(parts) >= 2 and parts[0] == "GET" else ""
            if urlsplit(target).path != self._path or self._waiter is None or self._waiter.done():
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n")
            writer.write(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_PAGE) + _PAGE)
            self._waiter.set_result(f"http://127.0.0.1:{self._port}{target}")
        except (TimeoutError, OSError, UnicodeDecodeError):
            return
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
                writer.close()
