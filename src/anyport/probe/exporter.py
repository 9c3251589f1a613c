"""``anyport probe --serve``: the probe as a Prometheus exporter, in the manner of blackbox_exporter.

Prometheus schedules the probes and keeps their history; Alertmanager alerts on them. Endpoints:

- ``GET /probe?module=NAME&target=URL``: one probe, answered with its metrics (``&debug=true``:
  the probe's JSON instead). ``module`` defaults to ``default``. The target must match the
  configuration's ``allowed_targets`` (403 otherwise) unless ``allow_any_target`` is set; a module
  with its own ``target`` or ``command`` takes no target from the request. Commands never come
  from a request.
- ``GET /metrics``: the exporter's own counters.
- ``GET /-/healthy``: 200 ``OK``.

At most ``max_concurrency`` probes run at once; up to ``max_pending`` more wait for a slot within
their budget, more than that get 503 at once. A probe's budget is the scrape timeout Prometheus
sends (``X-Prometheus-Scrape-Timeout-Seconds``) less ``timeout_offset``, or the module's
``total_timeout``, the smaller of the two (60 s when neither is known).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import orjson

from anyport._lifespan import acknowledge_lifespan
from anyport.probe._config import ConfigError, ExporterConfig, Module
from anyport.probe._engine import ProbeOptions, probe
from anyport.probe._result import ProbeResult

__all__ = ["ProbeExporter", "parse_listen", "render_probe", "serve_exporter"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_DEFAULT_BUDGET = 60.0


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Text:
    """Prometheus text exposition (format 0.0.4): HELP and TYPE once per family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(**labels)} {_num(value)}")

    def body(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


def render_probe(result: ProbeResult) -> bytes:
    """The metrics of one probe (the answer to ``/probe``)."""
    t = _Text()
    t.family("probe_success", "gauge", "1 when every phase of the MCP probe succeeded.", [({}, 1 if result.ok else 0)])
    t.family("probe_duration_seconds", "gauge", "Seconds the whole probe took.", [({}, result.duration_ms / 1000)])
    t.family(
        "probe_mcp_phase_duration_seconds", "gauge", "Seconds each phase of the probe took (phases that ran).",
        [({"phase": p.name}, p.ms / 1000) for p in result.phases],
    )
    t.family(
        "probe_mcp_phase_success", "gauge", "1 when the phase succeeded, 0 when it failed (phases that ran).",
        [({"phase": p.name}, 1 if p.ok else 0) for p in result.phases],
    )
    t.family("probe_mcp_exit_code", "gauge", "The exit code anyport probe would have returned (0 ok).", [({}, result.exit_code)])
    if result.era is not None:
        info = {
            "transport": result.transport or "", "era": result.era, "protocol_version": result.protocol_version or "",
            "server_name": str(result.server.get("name", "")), "server_version": str(result.server.get("version", "")),
        }
        t.family("probe_mcp_info", "gauge", "What the server speaks: transport, era, protocol version, server.", [(info, 1)])
    if result.tools is not None:
        t.family("probe_mcp_tools_count", "gauge", "Tools the server lists.", [({}, result.tools.count)])
        t.family(
            "probe_mcp_tools_hash_info", "gauge", "The canonical SHA-256 of the tool list (changes when the tools change).",
            [({"sha256": result.tools.sha256}, 1)],
        )
        if result.tools.expected is not None:
            t.family(
                "probe_mcp_tools_drift", "gauge", "1 when the tools hash differs from the module's expect_tools_hash.",
                [({}, 1 if result.tools.drift else 0)],
            )
    tls = result.phase("tls")
    if tls is not None and isinstance(tls.detail.get("cert_not_after"), int):
        t.family(
            "probe_mcp_tls_cert_not_after_seconds", "gauge", "Expiry of the server's TLS certificate (Unix time).",
            [({}, tls.detail["cert_not_after"])],
        )
    if result.error is not None:
        t.family(
            "probe_mcp_error_info", "gauge", "Why the probe failed: the error code and the phase.",
            [({"code": result.error.code, "phase": result.error.phase or ""}, 1)],
        )
    return t.body()


class ProbeExporter:
    """The exporter as a raw ASGI application (served by uvicorn in ``serve_exporter``)."""

    def __init__(self, config: ExporterConfig) -> None:
        self.config = config
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._waiting = 0
        self._running = 0
        self._probes: dict[tuple[str, str], int] = {}
        self._refused: dict[str, int] = {}
        self._seconds: dict[str, float] = {}
        self.started = time.time()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if scope.get("method") not in ("GET", "HEAD"):
            await _respond(send, 405, b"only GET\n", extra=[(b"allow", b"GET, HEAD")])
        elif path == "/probe":
            await self._probe(scope, send)
        elif path == "/metrics":
            await _respond(send, 200, self._own_metrics(), CONTENT_TYPE)
        elif path == "/-/healthy":
            await _respond(send, 200, b"OK\n")
        elif path == "/":
            await _respond(send, 200, _INDEX, b"text/html; charset=utf-8")
        else:
            await _respond(send, 404, b"not found: try /probe?module=NAME&target=URL or /metrics\n")

    def _refuse(self, reason: str) -> None:
        self._refused[reason] = self._refused.get(reason, 0) + 1

    def _pick(self, query: dict[str, list[str]]) -> tuple[Module, str | None] | str:
        """The module and target of a request, or why it is refused (a message for a 400/403)."""
        name = query.get("module", ["default"])[-1]
        module = self.config.modules.get(name)
        if module is None:
            return f"400 unknown module {name!r} (configured: {', '.join(sorted(self.config.modules))})"
        target = query.get("target", [None])[-1]
        if module.fixed:
            if target is not None and target != module.target:
                return f"400 module {name!r} probes its own target; do not give one"
            return module, None
        if not target:
            return "400 give target=URL"
        if not target.lower().startswith(("http://", "https://")):
            return "400 target is an http:// or https:// URL (commands are configured in modules, never requested)"
        if not self.config.allowed(target):
            return f"403 target {target!r} is not in allowed_targets"
        return module, target

    def _budget(self, scope: Scope, module: Module) -> float:
        limits = [module.total_timeout] if module.total_timeout is not None else []
        for key, value in scope.get("headers", []):
            if key.lower() == b"x-prometheus-scrape-timeout-seconds":
                try:
                    scrape = float(value.decode("latin-1"))
                except ValueError:
                    continue
                if math.isfinite(scrape) and scrape > 0:
                    limits.append(max(scrape - self.config.timeout_offset, 0.1))
        return min(limits) if limits else _DEFAULT_BUDGET

    async def _probe(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        picked = self._pick(query)
        if isinstance(picked, str):
            status = int(picked[:3])
            self._refuse("not_allowed" if status == 403 else "bad_request")
            await _respond(send, status, picked[4:].encode() + b"\n")
            return
        module, target = picked
        budget = self._budget(scope, module)
        try:
            options = module.options_for(target)
            options = ProbeOptions(**{**_fields(options), "total_timeout": budget})
        except (ConfigError, ValueError) as exc:
            self._refuse("bad_request")
            await _respond(send, 400, f"{exc}\n".encode())
            return
        if self._waiting >= self.config.max_pending and self._slots.locked():
            self._refuse("busy")
            await _respond(send, 503, b"too many probes waiting\n", extra=[(b"retry-after", b"5")])
            return
        start = time.monotonic()
        self._waiting += 1
        try:
            async with asyncio.timeout(budget):
                await self._slots.acquire()
        except TimeoutError:
            self._refuse("busy")
            await _respond(send, 503, b"no free probe slot within the scrape timeout\n")
            return
        finally:
            self._waiting -= 1
        self._running += 1
        try:
            left = max(budget - (time.monotonic() - start), 0.1)
            result = await probe(ProbeOptions(**{**_fields(options), "total_timeout": left}))
        finally:
            self._running -= 1
            self._slots.release()
        key = (module.name, "success" if result.ok else "failure")
        self._probes[key] = self._probes.get(key, 0) + 1
        self._seconds[module.name] = self._seconds.get(module.name, 0.0) + result.duration_ms / 1000
        if query.get("debug", ["false"])[-1].lower() in ("1", "true", "yes"):
            await _respond(send, 200, orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2), b"application/json")
            return
        await _respond(send, 200, render_probe(result), CONTENT_TYPE)

    def _own_metrics(self) -> bytes:
        t = _Text()
        t.family(
            "anyport_probe_exporter_probes_total", "counter", "Probes run, by module and result.",
            [({"module": m, "result": r}, n) for (m, r), n in sorted(self._probes.items())],
        )
        t.family(
            "anyport_probe_exporter_probe_seconds_total", "counter", "Seconds spent probing, by module.",
            [({"module": m}, s) for m, s in sorted(self._seconds.items())],
        )
        t.family(
            "anyport_probe_exporter_refused_total", "counter", "Probe requests refused: bad_request, not_allowed, busy.",
            [({"reason": r}, n) for r, n in sorted(self._refused.items())],
        )
        t.family("anyport_probe_exporter_running", "gauge", "Probes running now.", [({}, self._running)])
        t.family("anyport_probe_exporter_waiting", "gauge", "Probes waiting for a slot.", [({}, self._waiting)])
        t.family(
            "anyport_probe_exporter_max_concurrency", "gauge", "Probes allowed to run at once.",
            [({}, self.config.max_concurrency)],
        )
        t.family("anyport_probe_exporter_start_time_seconds", "gauge", "When the exporter started (Unix time).", [({}, self.started)])
        return t.body()


def _fields(options: ProbeOptions) -> dict[str, Any]:
    return {name: getattr(options, name) for name in ProbeOptions.__dataclass_fields__}


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes = b"text/plain; charset=utf-8",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_INDEX = b"""<!doctype html><title>anyport probe exporter</title>
<h1>anyport probe exporter</h1>
<p><a href="/metrics">/metrics</a> (the exporter's own) &middot; /probe?module=NAME&amp;target=URL (one probe;
&amp;debug=true for its JSON)</p>
"""


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port); a clear ``ValueError`` otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address {text!r}: give HOST:PORT, e.g. 127.0.0.1:9474")
    host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
    if not host:
        raise ValueError(f"listen address {text!r}: give the host, e.g. 127.0.0.1:9474")
    return host, int(port)


def serve_exporter(config: ExporterConfig, listen: str | None = None, *, log_level: str = "info") -> None:
    """Serve the exporter with uvicorn until interrupted."""
    import uvicorn

    host, port = parse_listen(listen or config.listen)
    uvicorn.run(ProbeExporter(config), host=host, port=port, log_level=log_level, lifespan="on", access_log=False)
