"""``probe(options)``: one real round trip with an MCP server, phase by phase, each one timed and bounded.

Phases, in order (a phase that fails ends the probe, except the drift check):

``resolve``, ``connect``, ``tls``  (URL targets; ``tls`` for https only) on a connection of their own;
``auth``        (``auth_challenge``) an unauthenticated POST must get 401 + ``WWW-Authenticate: Bearer``
                with reachable protected-resource metadata (A-05..A-09); without credentials the probe
                stops there (an auth-walled server that is healthy);
``handshake``   ``anyport.Client`` connects: the era the server speaks (``server/discover``, M-09, or
                ``initialize`` + ``notifications/initialized``, L-02/L-08), the transport with its
                fallback from Streamable HTTP to HTTP+SSE (T-BC-02..05); for stdio, the spawn too;
``tools_list``  every page of ``tools/list``, hashed (``_hash``) and compared with ``expect_tools_hash``;
``tools_call``  (``call``) one call of a tool the server does not annotate as writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from anyport.probe._classify import classify, malformed_counter
from anyport.probe._hash import tools_hash
from anyport.probe._net import Endpoint, check_auth_challenge, close_quietly, open_tcp, resolve, ssl_context, start_tls
from anyport.probe._result import Phase, ProbeError, ProbeResult, ToolsInfo

if TYPE_CHECKING:
    import httpx

    from anyport.client import Client

__all__ = ["ProbeOptions", "probe"]

T = TypeVar("T")

_ERAS = ("auto", "modern", "legacy")
_TRANSPORTS = ("auto", "streamable-http", "sse")


@dataclass(frozen=True, slots=True)
class ProbeOptions:
    """What to probe and how.

    ``target``: an ``http(s)://`` URL, or a command (a sequence of strings) for stdio.
    ``timeout``: seconds per phase. ``headers``: sent with every MCP request (credentials go here).
    ``call`` / ``call_args``: the tool to call. ``auth_challenge``: check the 401 challenge first;
    with no ``headers`` the probe stops after it.
    """

    target: str | Sequence[str]
    era: str = "auto"
    transport: str = "auto"
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    call: str | None = None
    call_args: Mapping[str, Any] = field(default_factory=dict)
    expect_tools_hash: str | None = None
    auth_challenge: bool = False
    insecure: bool = False
    cafile: str | None = None
    env: Mapping[str, str] | None = None
    #: Seconds for the whole probe (None: only the per-phase limits); the exporter sets it from
    #: Prometheus' scrape timeout.
    total_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.era not in _ERAS:
            raise ValueError(f"era is one of {', '.join(_ERAS)}")
        if self.transport not in _TRANSPORTS:
            raise ValueError(f"transport is one of {', '.join(_TRANSPORTS)}")
        if not (0 < self.timeout <= 3600):
            raise ValueError("timeout is seconds per phase, > 0 and <= 3600")
        if self.total_timeout is not None and not (0 < self.total_timeout <= 86400):
            raise ValueError("total_timeout is seconds, > 0")
        if isinstance(self.target, str):
            try:
                Endpoint(self.target)  # a clear error now for a bad URL
            except ProbeError as exc:
                raise ValueError(exc.message) from None
        elif not self.target or not all(isinstance(p, str) and p for p in self.target):
            raise ValueError("a stdio target is a non-empty command (a list of strings)")
        if not self.is_url and (self.auth_challenge or self.transport != "auto" or self.insecure or self.cafile):
            raise ValueError("auth_challenge, transport, insecure and cafile apply to URL targets only")
        if self.expect_tools_hash is not None:
            h = self.expect_tools_hash.lower().removeprefix("sha256:")
            if len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
                raise ValueError("expect_tools_hash is a SHA-256 in hex (64 characters)")

    @property
    def is_url(self) -> bool:
        return isinstance(self.target, str)

    @property
    def shown_target(self) -> str:
        return self.target if isinstance(self.target, str) else " ".join(self.target)


class _Run:
    """The state of one probe: its options, its result, the client once connected."""

    def __init__(self, options: ProbeOptions) -> None:
        self.o = options
        self.result = ProbeResult(target=options.shown_target)
        self.url = options.target if isinstance(options.target, str) else None

    async def phase(self, name: str, work: Callable[[], Awaitable[T]], detail: Callable[[T], dict[str, Any]] | None = None) -> T:
        """Run ``work`` as phase ``name`` within the per-phase timeout; record it; raise a ``ProbeError``."""
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.o.timeout):
                value = await work()
        except asyncio.CancelledError:  # the probe's total budget ran out (or the probe was cancelled)
            self.result.phases.append(Phase(name, False, (time.perf_counter() - start) * 1000, {"error": "timeout"}))
            raise
        except Exception as exc:
            err = classify(exc, name, timeout=self.o.timeout, url=self.url)
            self.result.phases.append(Phase(name, False, (time.perf_counter() - start) * 1000, {"error": err.code}))
            raise err from None
        extra = detail(value) if detail is not None else {}
        self.result.phases.append(Phase(name, True, (time.perf_counter() - start) * 1000, extra))
        return value

    async def network(self, ep: Endpoint) -> None:
        addrs = await self.phase("resolve", lambda: resolve(ep), lambda a: {"addresses": a[:4]})
        reader_writer = await self.phase("connect", lambda: open_tcp(ep, addrs))
        writer = reader_writer[1]
        try:
            if ep.scheme == "https":
                ctx = ssl_context(insecure=self.o.insecure, cafile=self.o.cafile)
                await self.phase("tls", lambda: start_tls(ep, writer, ctx), lambda d: d)
        finally:
            await close_quietly(writer)

    async def round_trip(self, hx: httpx.AsyncClient | None) -> None:
        from anyport.client import Client

        o = self.o
        target: str | list[str] = o.target if isinstance(o.target, str) else list(o.target)
        client = Client(
            target, era=o.era, transport=o.transport, headers=dict(o.headers) if self.url else None,
            timeout=o.timeout, probe_timeout=min(5.0, o.timeout / 2), httpx_client=hx, listen=False,
            env=dict(o.env) if o.env is not None else None, client_info={"name": "anyport-probe", "version": "1"},
        )
        try:
            await self.phase("handshake", lambda: self._connect(client), lambda _: self._learn(client))
            raw = await self.phase("tools_list", lambda: client.list_tools(), lambda t: {"count": len(t)})
            tools = [t.raw for t in raw]
            info = ToolsInfo(len(tools), tools_hash(tools), self._expected())
            self.result.tools = info
            if info.drift:
                self.result.fail(ProbeError(
                    "tools_drift", f"the tools hash is {info.sha256}, expected {info.expected}", phase="tools_list",
                ))
            if o.call is not None:
                await self.phase("tools_call", lambda: self._call(client, raw), lambda d: d)
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3 * o.timeout + 10):
                    await client.aclose()

    async def _connect(self, client: Client) -> None:
        from anyport._exceptions import JSONRPCError

        try:
            await client.connect()
        except JSONRPCError as exc:
            # An era pinned with --era that the server refuses: its handshake method is unknown or
            # its version unsupported (L-05/L-06, M-08) -- a version mismatch, not garbage.
            if self.o.era != "auto" and exc.remote and exc.code in (-32601, -32602, -32022):
                method = "server/discover" if self.o.era == "modern" else "initialize"
                raise ProbeError(
                    "version_mismatch", f"the server refused {method} ({exc.code}: {exc.message}): "
                    f"it does not speak the {self.o.era} era", detail={"jsonrpc_code": exc.code},
                ) from None
            raise

    def _expected(self) -> str | None:
        h = self.o.expect_tools_hash
        return h.lower().removeprefix("sha256:") if h is not None else None

    def _learn(self, client: Client) -> dict[str, Any]:
        r = self.result
        r.transport = client.transport or "stdio"
        r.era = client.era
        r.protocol_version = client.protocol_version
        info = client.server_info
        r.server = {k: info[k] for k in ("name", "version") if isinstance(info.get(k), str)}
        return {"method": "server/discover" if client.era == "modern" else "initialize"}

    async def _call(self, client: Client, tools: list[Any]) -> dict[str, Any]:
        name = self.o.call
        assert name is not None
        tool = next((t for t in tools if t.name == name), None)
        if tool is None:
            raise ProbeError("tool_not_found", f"the server lists no tool {name!r}")
        notes = tool.annotations if isinstance(tool.annotations, dict) else {}
        if notes.get("readOnlyHint") is False or notes.get("destructiveHint") is True:
            raise ProbeError("tool_not_read_only", f"{name!r} is annotated as not read-only: the probe does not call it")
        from anyport._exceptions import JSONRPCError

        try:
            result = await client.call_tool(name, _coerce(self.o.call_args, tool.input_schema))
        except JSONRPCError as exc:
            if exc.remote and exc.code == -32602 and "tool" in exc.message.lower():
                raise ProbeError("tool_not_found", exc.message, detail={"jsonrpc_code": exc.code}) from None
            if exc.remote:
                raise ProbeError("tool_error", exc.message, detail={"jsonrpc_code": exc.code}) from None
            raise
        if result.is_error:
            raise ProbeError("tool_error", f"{name!r} returned isError: {result.text[:200]}")
        return {"tool": name}


def _coerce(args: Mapping[str, Any], schema: Any) -> dict[str, Any]:
    """String values become JSON values unless the tool's schema says the argument is a string
    (as ``anyport call`` does): ``--arg n=3`` is the integer 3, ``--arg text=3`` a string if ``text`` is one."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    out: dict[str, Any] = {}
    for key, value in args.items():
        prop = props.get(key) if isinstance(props, dict) else None
        if isinstance(value, str) and not (isinstance(prop, dict) and prop.get("type") == "string"):
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(value)
        out[key] = value
    return out


def _httpx_client(o: ProbeOptions) -> httpx.AsyncClient:
    import httpx

    verify: Any = ssl_context(insecure=o.insecure, cafile=o.cafile)
    return httpx.AsyncClient(timeout=httpx.Timeout(o.timeout), verify=verify, follow_redirects=False)


async def probe(options: ProbeOptions) -> ProbeResult:
    """Probe ``options.target`` once; never raises for what the server does (see ``ProbeResult.error``)."""
    run = _Run(options)
    result = run.result
    start = time.perf_counter()
    malformed_counter()
    try:
        async with asyncio.timeout(options.total_timeout):
            await _steps(run, options)
    except TimeoutError:
        last = result.phases[-1].name if result.phases else "probe"
        result.fail(ProbeError("timeout", f"the probe's total budget of {options.total_timeout:g} s ran out", phase=last))
    finally:
        result.duration_ms = (time.perf_counter() - start) * 1000
    if result.error is not None and result.error.code == "auth_required" and isinstance(options.target, str):
        await _explain_auth(result, options)
    return result


async def _steps(run: _Run, options: ProbeOptions) -> None:
    """The phases; errors are recorded in ``run.result``."""
    result = run.result
    hx: httpx.AsyncClient | None = None
    try:
        if isinstance(options.target, str):
            await run.network(Endpoint(options.target))
            hx = _httpx_client(options)
            if options.auth_challenge:
                url = options.target
                client = hx
                await run.phase("auth", lambda: check_auth_challenge(client, url), lambda d: d)
                if not options.headers:
                    return
        await run.round_trip(hx)
    except ProbeError as err:
        result.fail(err)
    except Exception as exc:  # a bug of ours or of a library: still one clean result
        result.fail(classify(exc, "probe", timeout=options.timeout, url=run.url))
    finally:
        if hx is not None:
            with contextlib.suppress(Exception):
                await hx.aclose()


async def _explain_auth(result: ProbeResult, options: ProbeOptions) -> None:
    """After a 401/403, say what the server's challenge was (bounded by one phase timeout)."""
    assert result.error is not None and isinstance(options.target, str)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(options.timeout):
            hx = _httpx_client(options)
            try:
                resp = await hx.post(
                    options.target, content=b"{}", headers={**options.headers, "content-type": "application/json",
                                                            "accept": "application/json, text/event-stream"},
                )
            finally:
                await hx.aclose()
            header = resp.headers.get("www-authenticate")
            if header:
                result.error.detail["www_authenticate"] = header[:500]
