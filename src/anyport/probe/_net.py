"""The network phases of a probe of a URL: resolve, connect, TLS, and the auth challenge.

They run before the MCP round trip on a connection of their own, so each one gets its own
duration (like blackbox_exporter's ``resolve``/``connect``/``tls`` phases); the MCP client then
opens its own connections, whose set-up counts in the handshake phase.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from anyport.probe._result import ProbeError

if TYPE_CHECKING:
    import httpx

__all__ = ["Endpoint", "check_auth_challenge", "open_tcp", "parse_challenges", "resolve", "ssl_context", "start_tls"]

_INIT_BODY = orjson.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "anyport-probe", "version": "1"}},
})
_POST_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


class Endpoint:
    """Host, port and scheme of a URL target (a clear ``usage`` error for anything else)."""

    def __init__(self, url: str) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ProbeError("usage", f"not a valid URL: {url!r}: {exc}") from None
        self.scheme = parts.scheme.lower()
        if self.scheme not in ("http", "https") or not parts.hostname:
            raise ProbeError("usage", f"not an http:// or https:// URL with a host: {url!r}")
        self.host = parts.hostname
        self.port = port or (443 if self.scheme == "https" else 80)
        self.url = url


def ssl_context(*, insecure: bool = False, cafile: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def resolve(ep: Endpoint) -> list[str]:
    """The addresses of the host (``unreachable`` when it has none)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(ep.host, ep.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeError("unreachable", f"cannot resolve {ep.host}: {exc.strerror or exc}", url=ep.url) from None
    addrs: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in addrs:
            addrs.append(addr)
    return addrs


async def open_tcp(ep: Endpoint, addrs: list[str]) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to the first address that accepts one."""
    last: OSError | None = None
    for addr in addrs[:8]:
        try:
            return await asyncio.open_connection(addr, ep.port)
        except OSError as exc:
            last = exc
    raise ProbeError("unreachable", f"cannot connect to {ep.host}:{ep.port}: {last}", url=ep.url)


async def start_tls(ep: Endpoint, writer: asyncio.StreamWriter, ctx: ssl.SSLContext) -> dict[str, Any]:
    """The TLS handshake on ``writer``; returns the negotiated version and the certificate's expiry."""
    try:
        await writer.start_tls(ctx, server_hostname=ep.host)
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise ProbeError("tls_error", f"TLS handshake with {ep.host}:{ep.port} failed: {exc}", url=ep.url) from None
    except (OSError, EOFError) as exc:
        raise ProbeError("connection_lost", f"the connection dropped during the TLS handshake: {exc!r}", url=ep.url) from None
    obj = writer.get_extra_info("ssl_object")
    out: dict[str, Any] = {}
    if isinstance(obj, ssl.SSLObject):
        out["tls_version"] = obj.version()
        cert = obj.getpeercert()
        not_after = cert.get("notAfter") if cert else None
        if isinstance(not_after, str):
            out["cert_not_after"] = int(ssl.cert_time_to_seconds(not_after))
    return out


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    """Close the phases' own connection; one stuck in a TLS handshake is aborted after 0.2 s."""
    writer.close()
    try:
        async with asyncio.timeout(0.2):
            await writer.wait_closed()
    except Exception:
        writer.transport.abort()


# -- WWW-Authenticate (RFC 9110 §11.6.1) ---------------------------------------------------------------

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|({_TOKEN}))\s*(,|$)")
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$|,)")


def parse_challenges(header: str) -> list[tuple[str, dict[str, str]]]:
    """``[(scheme lower-cased, {param lower-cased: value})]`` of a ``WWW-Authenticate`` value (token68 skipped)."""
    out: list[tuple[str, dict[str, str]]] = []
    pos, n = 0, len(header)
    for _ in range(64):  # bounded: at most 64 challenges
        while pos < n and header[pos] in " ,":
            pos += 1
        if pos >= n:
            break
        m = _SCHEME.match(header, pos)
        if m is None:
            break
        scheme, pos = m.group(1).lower(), m.end()
        params: dict[str, str] = {}
        for _ in range(64):
            p = _PARAM.match(header, pos)
            if p is None:
                break
            value = p.group(2) if p.group(2) is not None else p.group(3)
            params[p.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            pos = p.end()
            if p.group(4) == "":
                break
        out.append((scheme, params))
        if not params:  # a scheme with a token68 or nothing: skip to the next comma
            comma = header.find(",", pos)
            pos = n if comma < 0 else comma + 1
    return out


def _well_known(url: str) -> list[str]:
    """A-08: the path-inserted then the root protected-resource metadata URLs."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    root = urlunsplit((parts.scheme, parts.netloc, "/.well-known/oauth-protected-resource", "", ""))
    return [root + path, root] if path else [root]


async def check_auth_challenge(hx: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """An unauthenticated POST must get 401 with a Bearer challenge (A-06/A-07) whose protected-resource
    metadata is reachable and names an authorization server (A-05, A-08); its ``resource`` must be
    the URL probed (A-09, a path prefix accepted as the TypeScript SDK does)."""
    resp = await hx.post(url, content=_INIT_BODY, headers=_POST_HEADERS)
    status = resp.status_code
    if status < 400:
        raise ProbeError("auth_not_enforced", f"an unauthenticated request was answered HTTP {status}", status=status, url=url)
    if status not in (401, 403):
        raise ProbeError("protocol_error", f"an unauthenticated request was answered HTTP {status}, not 401", status=status, url=url)
    header = resp.headers.get("www-authenticate")
    if not header:
        raise ProbeError("bad_auth_challenge", f"HTTP {status} without a WWW-Authenticate header (A-06/A-07)", status=status, url=url)
    bearer = next((p for s, p in parse_challenges(header) if s == "bearer"), None)
    if bearer is None:
        raise ProbeError("bad_auth_challenge", f"no Bearer challenge in WWW-Authenticate: {header[:200]!r}", status=status, url=url)
    candidates = [bearer["resource_metadata"]] if "resource_metadata" in bearer else _well_known(url)
    found: dict[str, Any] | None = None
    where = ""
    for meta_url in candidates:
        try:
            r = await hx.get(meta_url, headers={"accept": "application/json"})
        except Exception as exc:
            raise ProbeError("bad_auth_challenge", f"the resource metadata at {meta_url} is unreachable: {exc!r}", url=meta_url) from None
        if r.status_code == 200:
            try:
                doc = orjson.loads(r.content)
            except orjson.JSONDecodeError:
                doc = None
            if isinstance(doc, dict):
                found, where = doc, meta_url
                break
    if found is None:
        raise ProbeError("bad_auth_challenge", f"no protected-resource metadata at {', '.join(candidates)}", status=status, url=url)
    servers = found.get("authorization_servers")
    if not isinstance(servers, list) or not servers or not all(isinstance(s, str) for s in servers):
        raise ProbeError("bad_auth_challenge", f"the metadata at {where} lists no authorization_servers (A-05)", url=where)
    resource = found.get("resource")
    norm = url.rstrip("/")
    if not isinstance(resource, str) or not (norm == resource.rstrip("/") or norm.startswith(resource.rstrip("/") + "/")):
        raise ProbeError("bad_auth_challenge", f"the metadata's resource {resource!r} is not {url} (A-09)", url=where)
    out: dict[str, Any] = {"status": status, "resource_metadata": where, "authorization_servers": servers}
    if "scope" in bearer:
        out["scope"] = bearer["scope"]
    return out
