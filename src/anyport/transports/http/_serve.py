"""Serve a ``Server`` over HTTP with uvicorn: what ``anyport serve --http`` and ``Server.run("http")`` do.

uvicorn is imported only here and only when called (``pip install 'anyport[http]'``); with
``uvicorn[standard]`` it picks uvloop and httptools by itself. On SIGTERM/SIGINT the open HTTP+SSE
streams are ended first (they would otherwise hold the graceful shutdown until its timeout), and
the process exits with status 0 once the shutdown completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import signal
import socket
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from anyport.transports.http._headers import DEFAULT_LOCAL_HOSTS
from anyport.transports.http._options import HTTPOptions

if TYPE_CHECKING:
    from anyport.runtime import Application
    from anyport.transports.http._app import StreamableHTTPApp

__all__ = [
    "INSTALL_HINT", "ListenError", "check_listen", "client_cert_options", "default_allowed_hosts", "is_loopback",
    "run_http_server",
]

INSTALL_HINT = "serving over HTTP needs uvicorn: pip install 'anyport[http]'"
_WILDCARDS = ("0.0.0.0", "::", "")


def _strip_brackets(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_loopback(host: str) -> bool:
    """``localhost`` or an address of the loopback network (127.0.0.0/8, ::1)."""
    name = _strip_brackets(host.strip()).lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_entry(host: str) -> str:
    """A Host allow-list entry for a bind address (IPv6 literals are bracketed, as in Host headers)."""
    name = _strip_brackets(host.strip())
    try:
        if ipaddress.ip_address(name).version == 6:
            return f"[{name}]"
    except ValueError:
        pass
    return name


def default_allowed_hosts(host: str) -> tuple[list[str] | None, str | None]:
    """The Host allow-list when none was configured, and the warning to print (None when loopback).

    A server bound to a loopback address answers only the local names (the app's default). One bound
    to another address also answers that address; a wildcard bind answers this machine's names.
    """
    if is_loopback(host):
        return None, None
    name = _strip_brackets(host.strip())
    if name in _WILDCARDS:
        extra = sorted({socket.gethostname().lower(), socket.getfqdn().lower()} - {""})
        hosts = [*DEFAULT_LOCAL_HOSTS, *extra]
        shown = ", ".join(extra) or "no other name"
        return hosts, (
            f"anyport: warning: listening on all interfaces ({host or '*'}); requests are accepted for the local "
            f"names and {shown} only. Name the others with --allowed-host (ANYPORT_ALLOWED_HOSTS) and put "
            "authentication in front of this server."
        )
    entry = _host_entry(host)
    return [*DEFAULT_LOCAL_HOSTS, entry], (
        f"anyport: warning: listening on {host}, not a loopback address; Host {entry} is allowed automatically. "
        "Name other host names with --allowed-host (ANYPORT_ALLOWED_HOSTS) and put authentication in front of this server."
    )


class ListenError(OSError):
    """The server cannot listen where it was asked to (port in use, no such address, no permission);
    its message is one line fit for a user."""


def check_listen(host: str, port: int) -> None:
    """Raise ``ListenError`` when ``host:port`` cannot be bound, as uvicorn would bind it (every
    address the name resolves to, ``SO_REUSEADDR`` on). Port 0 always can."""
    if port == 0:
        return
    name = _strip_brackets(host.strip()) or None
    shown = f"[{name}]:{port}" if name and ":" in name else f"{name or '*'}:{port}"
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(exc.errno, f"cannot listen on {shown}: {exc.strerror or exc}") from None
    for family, kind, proto, _, address in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
        except OSError as exc:
            reason = "address already in use (another server is running there?)" if exc.errno == errno.EADDRINUSE else (
                exc.strerror or str(exc)
            ).lower()
            raise ListenError(exc.errno, f"cannot listen on {shown}: {reason}") from None


def run_http_server(
    server: Application,
    options: HTTPOptions | None = None,
    /,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    certfile: str | None = None,
    keyfile: str | None = None,
    client_ca: str | None = None,
    client_cert: str = "required",
    log_level: str = "info",
    graceful_timeout: int = 10,
    workers: int = 1,
    **changes: Any,
) -> None:
    """Blocking: serve ``create_app(server, options, **changes)`` with uvicorn until SIGTERM/SIGINT.

    ``certfile``/``keyfile`` turn on TLS; ``client_ca`` (a CA bundle) asks clients for a certificate
    it verifies at the handshake (``client_cert``: ``"required"`` or ``"optional"``), and the verified
    certificate reaches the app (``anyport.auth.ClientCertificates``). Without ``allowed_hosts``, a non-loopback ``host`` is
    allowed automatically (with a warning on stderr); see ``default_allowed_hosts``.
    ``workers`` > 1 forks that many processes sharing the listening socket; they need shared state
    (``redis``): with in-memory state each would have sessions of its own, so it is refused.
    """
    if workers < 1:
        raise ValueError("workers must be >= 1")
    try:
        import uvicorn
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    from anyport.transports.http import create_app

    if keyfile is not None and certfile is None:
        raise ValueError("keyfile needs certfile")
    tls_extra = client_cert_options(client_ca, client_cert, certfile)
    options = HTTPOptions.of(options, **changes)
    if options.allowed_hosts is None:
        hosts, warning = default_allowed_hosts(host)
        if warning is not None:
            sys.stderr.write(warning + "\n")
            sys.stderr.flush()
        options = HTTPOptions.of(options, allowed_hosts=hosts)
    if workers > 1 and options.redis is None and options.session_store is None and not options.stateless:
        raise ValueError(
            f"{workers} workers need shared state: give a Redis URL (--redis / ANYPORT_REDIS_URL), or serve --stateless; "
            "with in-memory state each worker would keep sessions of its own"
        )

    def build() -> Any:
        app = create_app(server, options)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            log_level=log_level,
            # uvicorn's access log cost ~40 % of a stateless JSON server's throughput at INFO (issue
            # 14); ``anyport serve --access-log`` writes a cheaper line of its own (anyport.observe).
            access_log=False,
            lifespan="on",
            ws="none",  # MCP has no websocket transport; upgrades are refused
            # The app decides itself which peers may speak for clients (trusted_proxies); uvicorn must
            # not rewrite the peer address from X-Forwarded-For behind its back.
            proxy_headers=False,
            timeout_graceful_shutdown=graceful_timeout,
            **tls_extra,
        )
        return _uvicorn_server(config, app)

    check_listen(host, port)  # a port in use is one line, before uvicorn logs its start-up around the error
    if workers == 1:
        build().run()
        return
    _run_workers(build, host, port, workers)


def client_cert_options(client_ca: str | None, client_cert: str = "required", certfile: str | None = None) -> dict[str, Any]:
    """uvicorn.Config keywords for client certificates: the CA bundle, whether a certificate is
    required, and an HTTP protocol that hands the verified certificate to the app as the ASGI TLS
    extension (``scope["extensions"]["tls"]["client_cert_chain"]``). An untrusted or expired
    certificate never gets that far: the handshake fails."""
    if client_ca is None:
        return {}
    if certfile is None:
        raise ValueError("client_ca needs TLS (certfile and keyfile)")
    if client_cert not in ("required", "optional"):
        raise ValueError("client_cert is 'required' or 'optional'")
    if not os.path.isfile(client_ca):
        raise ValueError(f"client_ca: no such file {client_ca}")
    import ssl

    return {
        "ssl_ca_certs": client_ca,
        "ssl_cert_reqs": ssl.CERT_REQUIRED if client_cert == "required" else ssl.CERT_OPTIONAL,
        "http": _with_client_cert(),
    }


def _with_client_cert() -> type:
    """uvicorn's HTTP/1.1 protocol (httptools, else h11), adding the peer's certificate to each scope."""
    import ssl

    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as base
    except ImportError:  # pragma: no cover - httptools is optional
        from uvicorn.protocols.http.h11_impl import H11Protocol as base  # type: ignore[assignment]

    class ClientCertProtocol(base):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            ssl_object = transport.get_extra_info("ssl_object")
            der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            if not der:
                return
            tls = {"client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)], "tls_used": True}
            app = self.app

            async def with_cert(scope: Any, receive: Any, send: Any) -> None:
                scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
                await app(scope, receive, send)

            self.app = with_cert

    return ClientCertProtocol


def _run_workers(build: Any, host: str, port: int, workers: int) -> None:
    """Fork ``workers`` processes serving one listening socket; stop them all on SIGTERM/SIGINT.

    Each worker builds its own app after the fork (its own event loop and Redis connections). A
    worker that dies is started again (at most once a second), so one crash costs its connections only.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ListenError(exc.errno, f"cannot listen on {host}:{port}: {(exc.strerror or str(exc)).lower()}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    children: dict[int, int] = {}  # pid -> worker number
    stopping = False

    def spawn(number: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                build().run(sockets=[sock])
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        children[pid] = number

    def stop(sig: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for number in range(workers):
        spawn(number)
    sys.stderr.write(f"anyport: {workers} workers serving on {host}:{sock.getsockname()[1]}\n")
    sys.stderr.flush()
    last_restart = 0.0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid not in children:
            continue
        number = children.pop(pid)
        if stopping:
            continue
        sys.stderr.write(f"anyport: worker {number} (pid {pid}) exited with status {status}; starting it again\n")
        sys.stderr.flush()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - last_restart)))
        last_restart = time.monotonic()
        spawn(number)
    sock.close()


def _uvicorn_server(config: Any, app: StreamableHTTPApp) -> Any:
    """uvicorn's server, plus: end the SSE streams when shutdown starts; exit 0 after a signal."""
    import uvicorn

    class AnyportUvicornServer(uvicorn.Server):
        _loop: asyncio.AbstractEventLoop | None = None

        async def serve(self, sockets: list[socket.socket] | None = None) -> None:
            self._loop = asyncio.get_running_loop()
            await super().serve(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # uvicorn re-raises a captured signal after its shutdown (the process then dies of it);
            # a server asked to stop that stopped cleanly exits 0 instead, so it is not recorded here.
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(app.begin_shutdown)

    return AnyportUvicornServer(config)
