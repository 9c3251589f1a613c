"""deploy/serverless: the app survives its lifespan being run around every request (100 cycles on
one app object, driven through ASGI directly), the Lambda handler answers API Gateway v2 (HTTP API)
and Function URL events in-process through Mangum, and the Cloudflare Worker entry answers requests
passed to it the way Cloudflare's ASGI adapter passes them (an in-process stand-in of that adapter:
tests/deploy/workers_standin.py; the real one needs Pyodide)."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import pytest

from anyport.protocol import KeyRing
from anyport.transports.http import create_app
from tests.deploy import workers_standin
from tests.deploy.asgi import LEGACY, MODERN, Lifespan, modern_call, request
from tests.deploy.recipes import DEPLOY
from tests.redis_servers import redis_server

SERVERLESS = DEPLOY / "serverless"
RECIPE_MODULES = ("server", "mcp_app", "lambda_handler", "workers_entry", "workers", "workers.asgi")
CYCLES = 100
HOST = "abc123.execute-api.eu-west-1.amazonaws.com"
URL_HOST = "xyz789.lambda-url.eu-west-1.on.aws"
WORKER_HOST = "anyport-mcp.example.workers.dev"
JSON = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


@pytest.fixture
def recipe(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The recipe's folder on sys.path and its settings in the environment, as on the platform; the
    recipe's modules are imported fresh by each test and forgotten afterwards."""
    env = {"ANYPORT_ALLOWED_HOSTS": f"{HOST} {URL_HOST}", "ANYPORT_STATE_KEYS": KeyRing.generate_key()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ANYPORT_JSON_RESPONSE", raising=False)
    monkeypatch.syspath_prepend(str(SERVERLESS))
    saved = {name: sys.modules.pop(name) for name in RECIPE_MODULES if name in sys.modules}
    try:
        yield env
    finally:
        for name in RECIPE_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def _import(name: str) -> ModuleType:
    return importlib.import_module(name)


def _legacy_call(id_: int) -> tuple[dict[str, str], bytes]:
    body = {"jsonrpc": "2.0", "id": id_, "method": "tools/call", "params": {"name": "search", "arguments": {"query": "anyport"}}}
    return {**JSON, "mcp-protocol-version": LEGACY}, json.dumps(body).encode()


# -- the lifespan around every request ------------------------------------------------------------------


async def test_the_serverless_app_survives_a_lifespan_around_each_of_100_requests(recipe: dict[str, str]) -> None:
    """One app object (the recipe's), 100 x (startup, a 2026-07-28 call and a stateless legacy call,
    shutdown): every answer right, no task left behind by any cycle."""
    app = _import("mcp_app").app
    baseline: int | None = None
    for i in range(CYCLES):
        cycle = Lifespan(app)
        await cycle.startup()
        headers, body = modern_call(i, "tools/call", {"name": "search", "arguments": {"query": "mcp"}}, name="search")
        r = await request(app, "POST", "/mcp", headers=headers, body=body, host=HOST)
        assert r.status == 200 and r.headers["content-type"].startswith("application/json"), (i, r)
        assert r.json()["result"]["structuredContent"] == {"result": ["MCP servers expose tools, resources and prompts."]}, r.json()
        headers, body = _legacy_call(1000 + i)
        r = await request(app, "POST", "/mcp", headers=headers, body=body, host=HOST)
        assert r.status == 200 and r.json()["result"]["structuredContent"] == {"result": ["anyport serves every revision."]}, (i, r)
        await cycle.shutdown()
        tasks = len(asyncio.all_tasks())
        baseline = tasks if baseline is None else baseline
        assert tasks <= baseline, (i, asyncio.all_tasks())


async def test_a_stateful_app_survives_100_cycles_and_keeps_legacy_sessions_only_with_redis() -> None:
    """The default (stateful) app, 100 cycles each opening a legacy session and using the previous
    cycle's: with Redis every earlier session goes on; in memory a cycle's shutdown ends its sessions."""
    sys.path.insert(0, str(SERVERLESS))
    try:
        server = importlib.import_module("server").app
    finally:
        sys.path.remove(str(SERVERLESS))
        sys.modules.pop("server", None)

    async def cycles(app: Any, n: int) -> list[int]:
        statuses: list[int] = []
        previous: dict[str, str] | None = None
        for i in range(n):
            cycle = Lifespan(app)
            await cycle.startup()
            init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                    "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
            r = await request(app, "POST", "/mcp", headers={**JSON, "mcp-protocol-version": LEGACY}, body=json.dumps(init).encode())
            assert r.status == 200, (i, r)
            h = {**JSON, "mcp-protocol-version": LEGACY, "mcp-session-id": r.headers["mcp-session-id"]}
            note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
            assert (await request(app, "POST", "/mcp", headers=h, body=note)).status == 202
            if previous is not None:
                _, body = _legacy_call(i)
                statuses.append((await request(app, "POST", "/mcp", headers=previous, body=body)).status)
            previous = h
            await cycle.shutdown()
        return statuses

    with redis_server() as redis:
        shared = create_app(server, redis=redis.url, redis_prefix="lifespan")
        assert await cycles(shared, CYCLES) == [200] * (CYCLES - 1)
    assert await cycles(create_app(server), 3) == [404, 404]  # nothing outlives a cycle in memory


# -- AWS Lambda through Mangum ---------------------------------------------------------------------------


def _http_api_event(host: str, method: str, path: str, headers: dict[str, str], body: bytes, *, function_url: bool) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) or Lambda Function URL event, as AWS documents them."""
    encoded = bool(body) and function_url  # Function URLs base64-encode bodies they take for binary
    context: dict[str, Any] = {
        "accountId": "anonymous" if function_url else "123456789012", "apiId": host.split(".")[0],
        "domainName": host, "domainPrefix": host.split(".")[0], "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        "routeKey": "$default", "stage": "$default", "time": "02/Dec/2026:12:00:00 +0000", "timeEpoch": 1796212800000,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "test"},
    }
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": host, "x-forwarded-proto": "https", "x-forwarded-port": "443", **headers},
        "requestContext": context,
        "body": base64.b64encode(body).decode() if encoded else body.decode(),
        "isBase64Encoded": encoded,
    }


class _Context:
    function_name = "anyport-mcp"
    aws_request_id = "c6af9ac6"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


class LambdaRuntime:
    """A Lambda execution environment's thread, with an event loop of its own: Mangum runs the app
    on its thread's loop, and the test's own thread and loop stay as they were."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="lambda", initializer=self._start)

    def _start(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)

    def load(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        """Import lambda_handler there (as the Lambda runtime does) and call its handler there."""
        handler = self.pool.submit(lambda: _import("lambda_handler").handler).result(60)

        def invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
            result: dict[str, Any] = self.pool.submit(handler, event, context).result(60)
            return result

        return invoke

    def close(self) -> None:
        def stop() -> None:
            if self.loop is not None:
                self.loop.close()
            asyncio.set_event_loop(None)

        self.pool.submit(stop).result(60)
        self.pool.shutdown()


@pytest.fixture
def runtime() -> Iterator[LambdaRuntime]:
    env = LambdaRuntime()
    try:
        yield env
    finally:
        env.close()


def _answer(result: dict[str, Any]) -> Any:
    body = base64.b64decode(result["body"]) if result.get("isBase64Encoded") else result["body"].encode()
    return json.loads(body)


@pytest.mark.parametrize("function_url", [False, True], ids=["http-api", "function-url"])
def test_the_lambda_handler_answers_http_api_and_function_url_events(
    recipe: dict[str, str], runtime: LambdaRuntime, function_url: bool,
) -> None:
    handler = runtime.load()
    host = URL_HOST if function_url else HOST
    for i in range(20):  # warm invocations: the lifespan runs around each one
        headers, body = modern_call(i, "tools/call", {"name": "search", "arguments": {"query": "revision"}}, name="search")
        result = handler(_http_api_event(host, "POST", "/mcp", headers, body, function_url=function_url), _Context())
        assert result["statusCode"] == 200, result
        assert result["headers"]["content-type"].startswith("application/json"), result["headers"]
        assert _answer(result)["result"]["structuredContent"] == {"result": ["anyport serves every revision."]}
    headers, body = _legacy_call(7)
    result = handler(_http_api_event(host, "POST", "/mcp", headers, body, function_url=function_url), _Context())
    assert result["statusCode"] == 200 and _answer(result)["id"] == 7, result
    # 2026-07-28 discovery, a health check, and a Host the function does not answer to.
    headers, body = modern_call(8, "server/discover")
    result = handler(_http_api_event(host, "POST", "/mcp", headers, body, function_url=function_url), _Context())
    assert result["statusCode"] == 200 and MODERN in json.dumps(_answer(result)), result
    result = handler(_http_api_event(host, "GET", "/healthz", {}, b"", function_url=function_url), _Context())
    assert result["statusCode"] == 200 and _answer(result) == {"status": "ok"}
    headers, body = modern_call(9, "tools/list")
    event = _http_api_event(host, "POST", "/mcp", headers, body, function_url=function_url)
    event["headers"]["host"] = "evil.example"
    assert handler(event, _Context())["statusCode"] == 403


def test_progress_is_dropped_from_json_answers_on_lambda(recipe: dict[str, str], runtime: LambdaRuntime) -> None:
    """A buffered platform carries one JSON answer: a tool's progress never reaches the client there
    (the Lambda Web Adapter recipe streams it)."""
    handler = runtime.load()
    headers, body = modern_call(1, "tools/call", {"name": "count", "arguments": {"n": 3}, "_meta": {"progressToken": "p"}}, name="count")
    result = handler(_http_api_event(HOST, "POST", "/mcp", headers, body, function_url=False), _Context())
    answer = _answer(result)
    assert result["statusCode"] == 200 and isinstance(answer, dict) and answer["result"]["structuredContent"] == {"result": 3}


def _fresh_handler(runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch, keys: str) -> Any:
    """The handler of a new Lambda instance (a fresh import: no object shared with the others)."""
    monkeypatch.setenv("ANYPORT_STATE_KEYS", keys)
    for name in ("server", "mcp_app", "lambda_handler"):
        sys.modules.pop(name, None)
    return runtime.load()


def test_an_elicitation_round_is_finished_by_another_lambda_instance(
    recipe: dict[str, str], runtime: LambdaRuntime, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """2026-07-28 MRTR: instance A asks (input_required, its state sealed with ANYPORT_STATE_KEYS),
    instance B (same keys) finishes the call; an instance with other keys refuses the state."""
    caps = {"elicitation": {}}
    first = _fresh_handler(runtime, monkeypatch, recipe["ANYPORT_STATE_KEYS"])
    headers, body = modern_call(1, "tools/call", {"name": "greet", "arguments": {}}, name="greet", caps=caps)
    asked = _answer(first(_http_api_event(HOST, "POST", "/mcp", headers, body, function_url=False), _Context()))["result"]
    assert asked["resultType"] == "input_required" and isinstance(asked["requestState"], str), asked
    (key,) = asked["inputRequests"]
    retry = {"name": "greet", "arguments": {}, "requestState": asked["requestState"],
             "inputResponses": {key: {"action": "accept", "content": {"name": "Ada"}}}}
    headers, body = modern_call(2, "tools/call", retry, name="greet", caps=caps)

    second = _fresh_handler(runtime, monkeypatch, recipe["ANYPORT_STATE_KEYS"])
    assert second is not first
    done = _answer(second(_http_api_event(HOST, "POST", "/mcp", headers, body, function_url=False), _Context()))
    assert done["result"]["content"] == [{"type": "text", "text": "Hello, Ada!"}], done

    stranger = _fresh_handler(runtime, monkeypatch, KeyRing.generate_key())
    refused = _answer(stranger(_http_api_event(HOST, "POST", "/mcp", headers, body, function_url=False), _Context()))
    assert refused["error"]["code"] == -32602 and "requestState" in refused["error"]["message"], refused


# -- Cloudflare Workers -----------------------------------------------------------------------------------


class _Env:
    """A Worker's bindings: attributes, as the Python Workers runtime exposes them."""

    def __init__(self, **values: str) -> None:
        self.__dict__.update(values)


async def test_the_worker_entry_serves_the_2026_path_through_the_adapter_convention(
    recipe: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, module in workers_standin.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.delenv("ANYPORT_ALLOWED_HOSTS")  # a Worker's settings are bindings, not environment
    keys = recipe["ANYPORT_STATE_KEYS"]
    monkeypatch.delenv("ANYPORT_STATE_KEYS")
    entry = _import("workers_entry")
    env = _Env(ANYPORT_ALLOWED_HOSTS=WORKER_HOST, ANYPORT_STATE_KEYS=keys)
    worker = entry.Default(env, None)
    url = f"https://{WORKER_HOST}/mcp"
    for i in range(CYCLES):
        headers, body = modern_call(i, "tools/call", {"name": "search", "arguments": {"query": "tools"}}, name="search")
        r = await worker.fetch(workers_standin.Request("POST", url, [*headers.items(), ("host", WORKER_HOST)], body))
        assert r.status == 200 and not r.streamed, (i, r)
        assert json.loads(r.body)["result"]["structuredContent"] == {"result": ["MCP servers expose tools, resources and prompts."]}
    assert entry._app.server.key_ring is not None
    headers, body = modern_call(1, "tools/list")
    r = await worker.fetch(workers_standin.Request("POST", url, [*headers.items(), ("host", WORKER_HOST)], body))
    assert {t["name"] for t in json.loads(r.body)["result"]["tools"]} == {"search", "count", "greet", "whoami"}
    r = await worker.fetch(workers_standin.Request("GET", f"https://{WORKER_HOST}/healthz", [("host", WORKER_HOST)]))
    assert r.status == 200 and json.loads(r.body) == {"status": "ok"}
    # A legacy GET stream has no place on a Worker (stateless): refused, not hanging.
    r = await worker.fetch(workers_standin.Request("GET", url, [("host", WORKER_HOST), ("accept", "text/event-stream")]))
    assert r.status == 405
    r = await worker.fetch(workers_standin.Request("POST", url, [*headers.items(), ("host", "evil.example")], body))
    assert r.status == 403
    await workers_standin.drain()


async def test_the_worker_streams_an_sse_answer_when_json_answers_are_off(
    recipe: dict[str, str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ANYPORT_JSON_RESPONSE=0 a tool's progress streams as SSE through the adapter's
    streaming path, and the lifespan shutdown waits for the end of the stream."""
    for name, module in workers_standin.modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    entry = _import("workers_entry")
    worker = entry.Default(_Env(ANYPORT_ALLOWED_HOSTS=WORKER_HOST, ANYPORT_JSON_RESPONSE="0"), None)
    headers, body = modern_call(3, "tools/call", {"name": "count", "arguments": {"n": 3}, "_meta": {"progressToken": "p"}}, name="count")
    r = await worker.fetch(workers_standin.Request("POST", f"https://{WORKER_HOST}/mcp", [*headers.items(), ("host", WORKER_HOST)], body))
    async with asyncio.timeout(5):
        await r.finished.wait()
    await workers_standin.drain()
    assert r.status == 200 and dict(r.headers)["content-type"].startswith("text/event-stream")
    text = r.body.decode()
    progress = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and "progress" in line]
    assert [m["params"]["progress"] for m in progress if m.get("method") == "notifications/progress"] == [1, 2, 3], text
    assert '"structuredContent":{"result":3}' in text.replace(" ", ""), text


def test_the_recipe_files_name_each_other() -> None:
    """wrangler.toml's main is the entry module; the Lambda handler is lambda_handler.handler."""
    import tomllib

    wrangler = tomllib.loads((SERVERLESS / "wrangler.toml").read_text())
    assert (SERVERLESS / wrangler["main"]).is_file()
    assert "python_workers" in wrangler["compatibility_flags"]
    assert "ANYPORT_STATE_KEYS" not in wrangler.get("vars", {}), "a secret, not a plain variable"
    assert set(wrangler["vars"]) <= set(_entry_settings())
    text = (SERVERLESS / "lambda_handler.py").read_text()
    assert "handler = Mangum(app" in text


def _entry_settings() -> tuple[str, ...]:
    path = SERVERLESS / "workers_entry.py"
    namespace: dict[str, Any] = {}
    source = path.read_text()
    start = source.index("SETTINGS = ")
    exec(source[start : source.index("\n", start)], namespace)
    settings: tuple[str, ...] = namespace["SETTINGS"]
    return settings

