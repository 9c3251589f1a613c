"""``anyport probe --serve``: the exporter scraped over HTTP (uvicorn on a free loopback port), its
allow-list, its concurrency bound, its configuration, and the example Prometheus files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from anyport.probe._config import ConfigError, TargetPattern, load_config, parse_config
from anyport.probe.exporter import ProbeExporter, parse_listen
from anyport.transports.http import create_app
from tests.interop.fixture_server import app as fixture_app
from tests.probe._servers import AuthWall, ScriptedHTTP
from tests.transports._http_helpers import running

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "prometheus"
FIXTURE = ROOT / "tests" / "interop" / "fixture_server.py"


def parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text format 0.0.4, as far as the exporter writes it: every sample by family name;
    every family announced by HELP and TYPE before its samples."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, rest = head.partition("{")
        labels: dict[str, str] = {}
        if rest:
            for pair in rest.rstrip("}").split('",'):
                if pair:
                    k, _, v = pair.partition("=")
                    labels[k] = v.strip('"')
        assert name in typed, f"{name} has no TYPE line"
        out.setdefault(name, []).append((labels, float(value)))
    return out


def one(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    found = [v for lab, v in metrics.get(name, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, (name, labels, metrics.get(name))
    return found[0]


def config(**exporter: Any) -> Any:
    return parse_config({
        "exporter": {"allowed_targets": ["http://127.0.0.1:*/mcp"], **exporter},
        "modules": {
            "default": {"timeout": 5},
            "echo": {"timeout": 5, "call": "echo", "args": {"text": "hi"}},
            "stdio": {"command": [sys.executable, "-m", "anyport", "serve", str(FIXTURE)], "timeout": 10},
            "quick": {"timeout": 0.5},
            "slow": {"timeout": 3},
            "drift": {"expect_tools_hash": "0" * 64},
            "wall": {"auth_challenge": True},
        },
    })


@pytest.fixture(scope="module")
def mcp_base() -> Any:
    with running(create_app(fixture_app)) as base:
        yield base


def test_probe_scraped_over_http(mcp_base: str) -> None:
    with running(ProbeExporter(config())) as exporter, httpx.Client(base_url=exporter, timeout=20) as c:
        r = c.get("/probe", params={"module": "echo", "target": f"{mcp_base}/mcp"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        m = parse_metrics(r.text)
        assert one(m, "probe_success") == 1
        assert one(m, "probe_mcp_exit_code") == 0
        assert 0 < one(m, "probe_duration_seconds") < 20
        phases = {lab["phase"] for lab, _ in m["probe_mcp_phase_duration_seconds"]}
        assert phases == {"resolve", "connect", "handshake", "tools_list", "tools_call"}
        assert one(m, "probe_mcp_tools_count") == 10
        [(hash_labels, _)] = m["probe_mcp_tools_hash_info"]
        assert len(hash_labels["sha256"]) == 64
        assert one(m, "probe_mcp_info", era="modern", transport="streamable-http", protocol_version="2026-07-28") == 1
        assert "probe_mcp_error_info" not in m

        own = parse_metrics(c.get("/metrics").text)
        assert one(own, "anyport_probe_exporter_probes_total", module="echo", result="success") == 1
        assert one(own, "anyport_probe_exporter_running") == 0
        assert c.get("/-/healthy").text == "OK\n"


def test_failures_are_metrics_not_errors(mcp_base: str) -> None:
    """A target that fails is a 200 with probe_success 0 and the reason (blackbox_exporter's way)."""
    with running(ProbeExporter(config())) as exporter, httpx.Client(base_url=exporter, timeout=20) as c:
        r = c.get("/probe", params={"module": "quick", "target": "http://127.0.0.1:1/mcp"})
        m = parse_metrics(r.text)
        assert (r.status_code, one(m, "probe_success"), one(m, "probe_mcp_exit_code")) == (200, 0, 4)
        assert one(m, "probe_mcp_error_info", code="unreachable", phase="connect") == 1
        r = c.get("/probe", params={"target": f"{mcp_base}/mcp", "debug": "true"})
        assert r.json()["ok"] is True and r.json()["tools"]["count"] == 10
        own = parse_metrics(c.get("/metrics").text)
        assert one(own, "anyport_probe_exporter_probes_total", module="quick", result="failure") == 1


def test_drift_and_auth_challenge_modules(mcp_base: str) -> None:
    wall = AuthWall(create_app(fixture_app))
    with running(wall) as walled, running(ProbeExporter(config())) as exporter, httpx.Client(base_url=exporter, timeout=20) as c:
        wall.base = walled
        m = parse_metrics(c.get("/probe", params={"module": "drift", "target": f"{mcp_base}/mcp"}).text)
        assert (one(m, "probe_success"), one(m, "probe_mcp_tools_drift"), one(m, "probe_mcp_exit_code")) == (0, 1, 7)
        assert one(m, "probe_mcp_error_info", code="tools_drift", phase="tools_list") == 1
        m = parse_metrics(c.get("/probe", params={"module": "wall", "target": f"{walled}/mcp"}).text)
        assert one(m, "probe_success") == 1 and one(m, "probe_mcp_phase_success", phase="auth") == 1
        m = parse_metrics(c.get("/probe", params={"target": f"{walled}/mcp"}).text)
        assert one(m, "probe_mcp_error_info", code="auth_required", phase="handshake") == 1


def test_allow_list_and_bad_requests(mcp_base: str) -> None:
    """An exporter is no open proxy: targets outside allowed_targets get 403, commands never come
    from a request, a module with its own target takes none."""
    port = mcp_base.rsplit(":", 1)[1]
    with running(ProbeExporter(config())) as exporter, httpx.Client(base_url=exporter, timeout=20) as c:
        for target, status in [
            (f"http://localhost:{port}/mcp", 403),  # another host name
            (f"http://127.0.0.1:{port}/admin", 403),  # another path
            (f"https://127.0.0.1:{port}/mcp", 403),  # another scheme
            (f"http://127.0.0.1@evil.invalid:{port}/mcp", 403),  # user info
            ("python server.py", 400),
            ("", 400),
        ]:
            assert c.get("/probe", params={"target": target}).status_code == status, target
        assert c.get("/probe", params={"module": "nope", "target": f"{mcp_base}/mcp"}).status_code == 400
        assert c.get("/probe", params={"module": "stdio", "target": f"{mcp_base}/mcp"}).status_code == 400
        assert c.post("/probe").status_code == 405
        assert c.get("/nothing").status_code == 404
        own = parse_metrics(c.get("/metrics").text)
        assert one(own, "anyport_probe_exporter_refused_total", reason="not_allowed") == 4
        assert one(own, "anyport_probe_exporter_refused_total", reason="bad_request") == 4
        assert "anyport_probe_exporter_probes_total" not in own  # nothing was probed


def test_stdio_module() -> None:
    with running(ProbeExporter(config())) as exporter, httpx.Client(base_url=exporter, timeout=30) as c:
        m = parse_metrics(c.get("/probe", params={"module": "stdio"}).text)
    assert one(m, "probe_success") == 1
    assert one(m, "probe_mcp_info", transport="stdio", era="modern") == 1


def test_scrape_timeout_bounds_the_probe() -> None:
    """The probe ends within Prometheus' scrape timeout (less timeout_offset), whatever the phase timeouts."""
    app = ScriptedHTTP("hang_tools_list")
    with running(app) as base, running(ProbeExporter(config())) as exporter, httpx.Client(base_url=exporter, timeout=20) as c:
        start = time.monotonic()
        r = c.get("/probe", params={"target": f"{base}/mcp"}, headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
        elapsed = time.monotonic() - start
        app.stop()
    m = parse_metrics(r.text)
    assert one(m, "probe_success") == 0
    assert one(m, "probe_mcp_error_info", code="timeout", phase="tools_list") == 1
    assert 0.9 < elapsed < 4


def test_bounded_concurrency() -> None:
    """max_concurrency probes run; max_pending wait; the next one gets 503 at once."""
    app = ScriptedHTTP("hang_handshake")
    exp = ProbeExporter(config(max_concurrency=1, max_pending=0))
    with running(app) as base, running(exp) as exporter, httpx.Client(base_url=exporter, timeout=20) as c:
        first: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: first.append(httpx.get(f"{exporter}/probe", params={"module": "slow", "target": f"{base}/mcp"}, timeout=20))
        )
        thread.start()
        deadline = time.monotonic() + 5
        while one(parse_metrics(c.get("/metrics").text), "anyport_probe_exporter_running") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        r = c.get("/probe", params={"module": "slow", "target": f"{base}/mcp"})
        assert r.status_code == 503
        app.stop()  # the hang ends, the first probe finishes
        thread.join(timeout=10)
        assert first[0].status_code == 200
        own = parse_metrics(c.get("/metrics").text)
        assert one(own, "anyport_probe_exporter_refused_total", reason="busy") == 1


# -- configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "url", "allowed"),
    [
        ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp", True),
        ("https://mcp.example.com/mcp", "https://MCP.example.com:443/mcp", True),
        ("https://mcp.example.com/mcp", "https://mcp.example.com.evil.invalid/mcp", False),
        ("https://mcp.example.com/mcp", "https://mcp.example.com/mcp?x=1", False),
        ("https://mcp.example.com/mcp", "https://mcp.example.com:8443/mcp", False),
        ("https://mcp.example.com/mcp", "http://mcp.example.com/mcp", False),
        ("https://*.example.com/mcp", "https://eu.example.com/mcp", True),
        ("https://*.example.com/mcp", "https://a.b.example.com/mcp", True),
        ("https://*.example.com/mcp", "https://example.com/mcp", False),
        ("https://*.example.com/mcp", "https://evil.invalid/x.example.com/mcp", False),
        ("https://*.example.com/mcp", "https://user@eu.example.com/mcp", False),
        ("http://127.0.0.1:*/mcp", "http://127.0.0.1:8123/mcp", True),
        ("http://127.0.0.1:*/mcp", "http://127.0.0.2:8123/mcp", False),
        ("https://mcp.example.com/tenants/*", "https://mcp.example.com/tenants/a/mcp", True),
        ("https://mcp.example.com/tenants/*", "https://mcp.example.com/admin", False),
        ("http://[::1]:8000/mcp", "http://[::1]:8000/mcp", True),
    ],
)
def test_target_patterns(pattern: str, url: str, allowed: bool) -> None:
    assert TargetPattern.parse(pattern).matches(url) is allowed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"modules": {}}, "at least one module"),
        ({"modules": {"m": {"tiemout": 3}}}, "modules.m: unknown key 'tiemout'"),
        ({"modules": {"m": {"timeout": "3"}}}, "modules.m.timeout: expected seconds"),
        ({"modules": {"m": {"era": "future"}}}, "modules.m: era is one of"),
        ({"modules": {"m": {"target": "http://a/mcp", "command": ["x"]}}}, "target or command"),
        ({"modules": {"m": {}}, "exporter": {"allowed_targets": ["*"]}}, "allowed_targets"),
        ({"modules": {"m": {}}, "exporter": {"allowed_targets": ["https://a*b.com/"]}}, "leading '*.'"),
        ({"modules": {"m": {}}, "exporter": {"max_concurrency": 0}}, "max_concurrency"),
        ({"modules": {"m": {}}, "exporter": {"allow_any_target": "yes"}}, "true or false"),
        ({"modules": {"m": {}}, "extra": 1}, "unknown key 'extra'"),
    ],
)
def test_config_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_config(data)
    assert message in str(info.value)


def test_default_is_no_target_allowed() -> None:
    conf = parse_config({"modules": {"default": {}}})
    assert not conf.allowed("http://127.0.0.1:8000/mcp")
    assert parse_config({"modules": {"default": {}}, "exporter": {"allow_any_target": True}}).allowed("http://x/mcp")


def test_bearer_token_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    module = parse_config({"modules": {"m": {"bearer_token_env": "PROBE_TEST_TOKEN"}}}).modules["m"]
    with pytest.raises(ConfigError, match="PROBE_TEST_TOKEN is not set"):
        module.options_for("http://127.0.0.1/mcp")
    monkeypatch.setenv("PROBE_TEST_TOKEN", "t0k")
    assert module.options_for("http://127.0.0.1/mcp").headers == {"Authorization": "Bearer t0k"}


def test_yaml_config(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_text("exporter:\n  allowed_targets: ['http://127.0.0.1:*/mcp']\nmodules:\n  default:\n    timeout: 2\n")
    conf = load_config(path)
    assert conf.modules["default"].settings["timeout"] == 2.0
    assert conf.allowed("http://127.0.0.1:1/mcp")


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9474") == ("127.0.0.1", 9474)
    assert parse_listen("[::1]:9") == ("::1", 9)
    for bad in ("9474", ":9474", "host:", "host:99999"):
        with pytest.raises(ValueError):
            parse_listen(bad)


# -- the examples ---------------------------------------------------------------------------------------


def test_example_exporter_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = load_config(EXAMPLES / "exporter.toml")
    assert set(conf.modules) == {"default", "search", "auth_wall", "legacy_sse", "notes_stdio"}
    assert not conf.allow_any_target and conf.allowed("https://eu.mcp.example.com/mcp")
    assert not conf.allowed("http://169.254.169.254/latest/meta-data")
    monkeypatch.setenv("MCP_PROBE_TOKEN", "x")
    assert conf.modules["search"].options_for("https://mcp.example.com/mcp").call == "search"


def test_example_prometheus_files() -> None:
    """The files parse and hold what docs/operations.md says; when promtool is installed (Debian's
    prometheus package) it checks the scrape configuration and the rules and runs the rules' unit
    tests (MCPServerDown after 3 consecutive failures, not after 2)."""
    import yaml

    prom = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["rules.yml"]
    assert prom["global"]["scrape_interval"] == prom["global"]["evaluation_interval"] == "60s"
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["mcp"]["metrics_path"] == "/probe" and jobs["mcp"]["params"] == {"module": ["default"]}
    relabel = jobs["mcp"]["relabel_configs"]
    assert {"source_labels": ["__address__"], "target_label": "__param_target"} in relabel
    assert {"target_label": "__address__", "replacement": "127.0.0.1:9474"} in relabel
    modules = set(load_config(EXAMPLES / "exporter.toml").modules)
    assert {m for j in jobs.values() for m in j.get("params", {}).get("module", [])} <= modules
    rules = {r["alert"]: r for g in yaml.safe_load((EXAMPLES / "rules.yml").read_text())["groups"] for r in g["rules"]}
    down = rules["MCPServerDown"]
    assert down["expr"].strip() == 'probe_success{job=~"mcp.*"} == 0' and down["for"] == "2m"
    for rule in rules.values():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] in ("page", "warning", "info")
    tests = yaml.safe_load((EXAMPLES / "rules_test.yml").read_text())
    assert tests["rule_files"] == ["rules.yml"]
    promtool = shutil.which("promtool")
    if promtool is None:
        return
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "rules.yml"], ["test", "rules", "rules_test.yml"]):
        proc = subprocess.run([promtool, *args], cwd=EXAMPLES, capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_serve_from_the_command_line(tmp_path: Path) -> None:
    """``anyport probe --serve --config FILE --listen``: a real process, scraped, then stopped."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "exporter.toml"
    path.write_text(f'[modules.local]\ncommand = {[sys.executable, "-m", "anyport", "serve", str(FIXTURE)]!r}\n'.replace("'", '"'))
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyport.cli._probe", "--serve", "--config", str(path), "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/probe", params={"module": "local"}, timeout=20)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.05)
        assert one(parse_metrics(r.text), "probe_success") == 1
        assert httpx.get(f"http://127.0.0.1:{port}/probe", params={"target": "http://127.0.0.1:1/mcp"}).status_code == 400
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"probe exporter on http://127.0.0.1:" in err
