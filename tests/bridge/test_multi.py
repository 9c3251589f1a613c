"""Several stdio servers behind one ``anyport bridge`` process, one path each, from
``[bridge.servers.NAME]`` tables of the settings file (issue 15, item 3).

Real processes on loopback: ``python -m anyport bridge --config FILE`` bridging the counter server of
tests/bridge/peers/rogue.py several times; config errors through click's runner.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import CliRunner

from anyport.cli._main import cli
from tests.bridge._helpers import ROGUE, call, initialize, modern_call, rogue, text_of, wait_ready, wait_until

if TYPE_CHECKING:
    from anyport.bridge import BridgeASGI

ANYPORT = [sys.executable, "-m", "anyport"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}, **extra}


def _rogue(mode: str = "normal") -> str:
    return json.dumps([sys.executable, str(ROGUE), mode])


@dataclass
class Running:
    base: str
    key: str
    metrics: str
    proc: subprocess.Popen[bytes]

    def client(self, server: str = "", *, key: bool = True) -> httpx.Client:
        headers = {"x-api-key": self.key} if key else {}
        return httpx.Client(base_url=f"{self.base}/{server}" if server else self.base, timeout=20, headers=headers)


@pytest.fixture(scope="module")
def bridged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One bridge process: ``alpha`` (a child per session, the [bridge] defaults), ``beta`` (shared
    children, its own env) and ``solo`` (at most one child), behind API keys, with metrics."""
    from anyport.auth import new_api_key

    here = tmp_path_factory.mktemp("multi")
    key, entry = new_api_key("ci")
    (here / "keys.txt").write_text(entry.line() + "\n")
    port, metrics = _free_port(), _free_port()
    (here / "anyport.toml").write_text(
        f'[bridge]\nport = {port}\nenv = ["MULTI_VAR"]\nspares = 0\nidle-timeout = 120\n'
        f"[bridge.servers.alpha]\ncommand = {_rogue()}\n"
        f"[bridge.servers.beta]\ncommand = {_rogue()}\nshared = true\nenv = []\n"
        f"[bridge.servers.solo]\ncommand = {_rogue()}\nmax = 1\n"
    )
    argv = [*ANYPORT, "bridge", "--config", str(here / "anyport.toml"), "--api-keys", "keys.txt", "--metrics-port", str(metrics)]
    proc = subprocess.Popen(argv, cwd=here, env=_env(MULTI_VAR="hello"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    running = Running(f"http://127.0.0.1:{port}", key, f"http://127.0.0.1:{metrics}/metrics", proc)
    try:
        wait_ready(running.base, proc)
        yield running
    finally:
        proc.terminate()
        proc.wait(20)
    banner = proc.stderr.read().decode() if proc.stderr else ""
    for name in ("alpha", "beta", "solo"):
        assert f"server '{name}': " in banner and f"at http://127.0.0.1:{port}/{name}/mcp and HTTP+SSE at /{name}/sse" in banner


def test_each_server_answers_tools_call_at_its_own_path_in_a_legacy_session(bridged: Running) -> None:
    """T-HTTP-33: each server's endpoint gives sessions of its own; a server's state (the counter of
    its child) is not another's, and [bridge] env holds for alpha, beta's own env = [] for beta."""
    with bridged.client("alpha") as a, bridged.client("beta") as b:
        ha, hb = initialize(a), initialize(b)
        assert [text_of(call(a, ha, i, "inc")) for i in (1, 2, 3)] == ["1", "2", "3"]
        assert text_of(call(b, hb, 1, "inc")) == "1"
        assert text_of(call(a, ha, 4, "getenv", {"name": "MULTI_VAR"})) == "hello"  # inherited from [bridge]
        assert text_of(call(b, hb, 2, "getenv", {"name": "MULTI_VAR"})) == ""  # overridden by [bridge.servers.beta]
        assert a.delete("/mcp", headers=ha).status_code == 204
        assert b.delete("/mcp", headers=hb).status_code == 204


def test_a_session_of_one_server_is_unknown_at_anothers_path(bridged: Running) -> None:
    """T-HTTP-39: a session id is only known at the endpoint that issued it: 404 at another's."""
    with bridged.client("alpha") as a, bridged.client("beta") as b:
        headers = initialize(a)
        r = b.post("/mcp", headers=headers, json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                  "params": {"name": "pid", "arguments": {}}})
        assert r.status_code == 404, r.text
        assert a.delete("/mcp", headers=headers).status_code == 204


def test_2026_07_28_requests_at_each_path_follow_that_servers_model(bridged: Running) -> None:
    """M-05: a 2026-07-28 request at /alpha/mcp gets a child of its own (alpha: a child per caller);
    at /beta/mcp the shared child answers (beta: shared = true in its table)."""
    with bridged.client("alpha") as a, bridged.client("beta") as b:
        alpha = [text_of(modern_call(a, i, "pid")) for i in (1, 2)]
        beta = [text_of(modern_call(b, i, "pid")) for i in (1, 2)]
        assert alpha[0] != alpha[1]
        assert beta[0] == beta[1]
        assert text_of(modern_call(b, 3, "getenv", {"name": "MULTI_VAR"})) == ""


def test_http_sse_at_each_servers_own_sse_path(bridged: Running) -> None:
    """T-SSE-01/T-SSE-02: GET /beta/sse opens beta's stream, whose endpoint event names beta's
    messages path; the answer comes on the stream (T-SSE-04)."""
    with bridged.client() as c, c.stream("GET", "/beta/sse", headers={"accept": "text/event-stream"}) as stream:
        lines = stream.iter_lines()
        endpoint = next(line for line in lines if line.startswith("data:"))[5:].strip()
        assert endpoint.startswith("/beta/messages/?session_id="), endpoint
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        assert c.post(endpoint, json=init).status_code == 202
        assert c.post(endpoint, json={"jsonrpc": "2.0", "method": "notifications/initialized"}).status_code == 202
        assert c.post(endpoint, json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                      "params": {"name": "getenv", "arguments": {"name": "MULTI_VAR"}}}).status_code == 202
        answer = next(json.loads(line[5:]) for line in lines if line.startswith("data:") and '"id":2' in line)
        assert answer["result"]["content"][0]["text"] == ""  # beta's environment, not alpha's
        assert c.post(endpoint.replace("/beta/", "/alpha/"), json=init).status_code == 404  # alpha knows no such connection


def test_health_readiness_and_unknown_paths(bridged: Running) -> None:
    """/healthz; /readyz of every server and /NAME/readyz of one; the pool of a server at its
    --max is 503 + Retry-After for a new session at its path only; any other path is 404."""
    with bridged.client(key=False) as c, bridged.client("solo") as solo, bridged.client("alpha") as alpha:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["servers"] == {name: {"ready": True, "reason": "ready"} for name in ("alpha", "beta", "solo")}
        headers = initialize(solo)
        assert text_of(call(solo, headers, 1, "inc")) == "1"  # its one child is taken by this session
        busy = c.get("/readyz")
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        servers = busy.json()["servers"]
        assert servers["solo"] == {"ready": False, "reason": "all 1 children are busy"}
        assert servers["alpha"]["ready"] and servers["beta"]["ready"]
        own = c.get("/solo/readyz")
        assert own.status_code == 503 and own.headers["retry-after"] == "1" and own.json()["reason"] == "all 1 children are busy"
        assert c.get("/alpha/readyz").status_code == 200
        refused = solo.post("/mcp", headers={"accept": "application/json, text/event-stream"},
                            json={"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}})
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        initialize(alpha)  # alpha is not concerned
        assert solo.delete("/mcp", headers=headers).status_code == 204
        assert wait_until(lambda: c.get("/readyz").status_code == 200, timeout=15)
        for path in ("/nope", "/gamma/mcp", "/gamma/readyz", "/alpha", "/mcp"):
            missing = c.get(path)
            assert missing.status_code == 404 and missing.json()["error"]["message"] == f"Not Found: {path}", path


def test_rfc9728_metadata_and_challenges_name_each_servers_own_url(bridged: Running) -> None:
    """A-07/A-09: each server is a protected resource of its own: its metadata is at the path-inserted
    well-known URL of its endpoint and names that endpoint; its 401 names that document."""
    with bridged.client(key=False) as c:
        for name in ("alpha", "beta"):
            document = c.get(f"/.well-known/oauth-protected-resource/{name}/mcp")
            assert document.status_code == 200
            assert document.json()["resource"] == f"{bridged.base}/{name}/mcp"
            refused = c.post(f"/{name}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                             headers={"accept": "application/json, text/event-stream"})
            assert refused.status_code == 401
            assert f'resource_metadata="{bridged.base}/.well-known/oauth-protected-resource/{name}/mcp"' in refused.headers["www-authenticate"]
        assert c.get("/.well-known/oauth-protected-resource/gamma/mcp").status_code == 404


def test_one_metrics_port_counts_every_servers_sessions(bridged: Running) -> None:
    """One MCPMetrics for all the servers: the live-sessions gauge is the sum over them (each HTTP
    app would otherwise replace the others' count), the calls of each are counted."""
    with bridged.client("alpha") as a, bridged.client("beta") as b:
        ha, hb = initialize(a), initialize(b)
        call(a, ha, 1, "inc")
        call(b, hb, 1, "inc")
        text = httpx.get(bridged.metrics, timeout=10).text
        live = next(float(li.split()[-1]) for li in text.splitlines() if li.startswith("anyport_live_sessions "))
        assert live >= 2, text
        assert 'mcp_method_name="tools/call"' in text
        a.delete("/mcp", headers=ha)
        b.delete("/mcp", headers=hb)


def test_a_server_that_cannot_start_fails_start_up_naming_it(tmp_path: Path) -> None:
    """The whole bridge does not start when one server cannot: exit status 1, one line naming it."""
    (tmp_path / "anyport.toml").write_text(
        f"[bridge]\nport = {_free_port()}\n"
        f"[bridge.servers.fine]\ncommand = {_rogue()}\n"
        f"[bridge.servers.files]\ncommand = {_rogue('exit-at-start')}\n"
    )
    proc = subprocess.run([*ANYPORT, "bridge"], cwd=tmp_path, env=_env(), capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("Error: server 'files': the stdio server did not start") and "missing configuration" in last, last
    assert "'fine'" not in last


async def test_a_failed_start_up_stops_the_servers_that_started() -> None:
    """In process: the router's lifespan starts both servers at once; one cannot, so start-up fails
    naming it, and the one that did start has every child stopped."""
    from anyport.bridge import Bridge, BridgeOptions, MultiBridge, bridge_app
    from anyport.bridge._multi import beside

    def app(bridge: Bridge, name: str) -> BridgeASGI:
        sse, messages = beside(f"/{name}/mcp")
        return bridge_app(bridge, path=f"/{name}/mcp", sse_path=sse, messages_path=messages)

    fine = Bridge(BridgeOptions(command=tuple(rogue()), spares=1))
    broken = Bridge(BridgeOptions(command=tuple(rogue("exit-at-start"))))
    router = MultiBridge({"fine": app(fine, "fine"), "broken": app(broken, "broken")})
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    await asyncio.wait_for(router({"type": "lifespan"}, inbox.get, outbox.put), 60)
    message = outbox.get_nowait()
    assert message["type"] == "lifespan.startup.failed"
    assert message["message"].startswith("server 'broken': the stdio server did not start"), message
    assert router.startup_error == message["message"]
    assert fine.started and fine.pool.closed and not fine.pool.children


def test_the_router_refuses_bad_names_and_paths_that_collide() -> None:
    from anyport.bridge import Bridge, BridgeOptions, MultiBridge, bridge_app

    def app(path: str) -> BridgeASGI:
        return bridge_app(Bridge(BridgeOptions(command=("x",))), path=path, sse_path="/s/sse", messages_path="/s/messages/")

    with pytest.raises(ValueError, match="letters, digits"):
        MultiBridge({"a/b": app("/a/mcp")})
    with pytest.raises(ValueError, match="/s/sse is taken by server 'a'"):
        MultiBridge({"a": app("/a/mcp"), "b": app("/b/mcp")})
    with pytest.raises(ValueError, match="/readyz is taken by the bridge"):
        MultiBridge({"a": app("/readyz")})
    with pytest.raises(ValueError, match="at least one"):
        MultiBridge({})


# -- the settings file ---------------------------------------------------------------------------------


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("ANYPORT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('[bridge.servers.a]\ncommand = "x"\nhots = "0.0.0.0"\n', "anyport.toml: bridge.servers.a.hots: unknown key"),
        ('[bridge.servers.a]\ncommand = "x"\nport = 1\n', "anyport.toml: bridge.servers.a.port: not a server's key: set it in [bridge]"),
        ('[bridge.servers.a]\ncommand = "x"\nshraed = true\n', "anyport.toml: bridge.servers.a.shraed: unknown key (did you mean shared?)"),
        ('[bridge.servers.a]\ncommand = "x"\nmax = 0\n', "anyport.toml: bridge.servers.a.max: 0 is not in the range x>=1."),
        ('[bridge.servers.a]\ncommand = "x"\nchild-era = "new"\n', "anyport.toml: bridge.servers.a.child-era: 'new' is not one of"),
        ('[bridge.servers.a]\ncommand = "x"\ncwd = "missing"\n', "anyport.toml: bridge.servers.a.cwd: Directory "),
        ('[bridge.servers.a]\ncommand = "x"\npath = "a/mcp"\n', "anyport.toml: bridge.servers.a.path: must start with '/'"),
        ('[bridge.servers."a/b"]\ncommand = "x"\n', "anyport.toml: bridge.servers.a/b: a server's name is a path segment"),
        ('[bridge.servers."a b"]\ncommand = "x"\n', "anyport.toml: bridge.servers.a b: a server's name is a path segment"),
        ("[bridge.servers.a]\nshared = true\n", "anyport.toml: bridge.servers.a: no command"),
        ("[bridge]\nservers = 1\n", "anyport.toml: bridge.servers: expected tables"),
        ('[bridge.servers]\na = "x"\n', "anyport.toml: bridge.servers.a: expected a table"),
    ],
)
def test_a_bad_server_table_is_one_line_naming_the_key(here: Path, table: str, expected: str) -> None:
    (here / "anyport.toml").write_text(table)
    assert _error("bridge").startswith(f"Error: {expected}")
    assert _error("config", "show", "serve").startswith(f"Error: {expected}")  # the whole file is checked


def test_a_command_and_servers_is_one_line(here: Path) -> None:
    (here / "anyport.toml").write_text('[bridge.servers.a]\ncommand = "x"\n')
    assert _error("bridge", "--", "node", "server.js") == (
        "Error: a COMMAND and [bridge.servers] tables in the settings file: give one or the other")
    (here / "anyport.toml").write_text('[bridge]\ncommand = "y"\n[bridge.servers.a]\ncommand = "x"\n')
    assert _error("bridge").startswith("Error: anyport.toml: bridge.command: a command and [bridge.servers] tables")
    (here / "anyport.toml").write_text("[bridge]\nshared = true\n")
    assert "Missing argument 'COMMAND...'" in _error("bridge")


def test_servers_whose_paths_collide_are_one_line(here: Path) -> None:
    (here / "anyport.toml").write_text(
        f'[bridge]\nport = {_free_port()}\n[bridge.servers.a]\ncommand = "x"\n[bridge.servers.b]\ncommand = "x"\npath = "/a/mcp"\n')
    assert _error("bridge") == "Error: server 'b': /a/mcp is taken by server 'a'"


def test_config_show_names_each_server_and_what_its_table_sets(here: Path) -> None:
    (here / "work").mkdir()
    (here / "anyport.toml").write_text(
        '[bridge]\nidle-timeout = 300\n[bridge.servers.everything]\ncommand = "npx -y @modelcontextprotocol/server-everything"\n'
        'shared = true\nmax = 4\n[bridge.servers.files]\ncommand = ["uvx", "mcp-server-filesystem", "/srv/data"]\n'
        'env = ["HOME"]\ncwd = "work"\n'
    )
    result = CliRunner().invoke(cli, ["config", "show", "bridge"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(li.startswith("idle-timeout ") and "file anyport.toml:bridge.idle-timeout" in li for li in lines)
    rows = {li.split()[0]: li.split(None, 1)[1].rsplit("  file ", 1) for li in lines if li.startswith("servers.")}
    assert json.loads(rows["servers.everything"][0]) == {
        "command": ["npx", "-y", "@modelcontextprotocol/server-everything"], "shared": True, "max": 4}
    assert rows["servers.everything"][1] == "anyport.toml:bridge.servers.everything"
    files = json.loads(rows["servers.files"][0])
    assert Path(files.pop("cwd")).resolve() == (here / "work").resolve()  # relative to the file's directory
    assert files == {"command": ["uvx", "mcp-server-filesystem", "/srv/data"], "env": ["HOME"]}
