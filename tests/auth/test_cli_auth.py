"""``anyport keys new`` and ``anyport serve --http`` with authentication flags, variables and a
config file, as a real process on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from click.testing import CliRunner

from anyport.auth import APIKey
from anyport.cli._main import cli
from tests.auth._issuer import Issuer
from tests.transports._http_helpers import POST_HEADERS

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "tests" / "interop" / "fixture_server.py"
ECHO = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "hi"}}}


def test_keys_new_prints_the_key_once_and_the_line_to_store() -> None:
    result = CliRunner().invoke(cli, ["keys", "new", "--name", "ci", "--scope", "tools.read", "--expires-in", "30"])
    assert result.exit_code == 0, result.output
    key, line = result.stdout.splitlines()[:2]
    entry = APIKey.parse(line)
    assert key.startswith(f"apk_{entry.id}_") and key not in line
    assert entry.scopes == {"tools.read"} and entry.expires_at is not None and entry.expires_at > time.time() + 29 * 86400
    assert "not shown again" in result.stderr
    bad = CliRunner().invoke(cli, ["keys", "new", "--name", "two words"])
    assert bad.exit_code == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(*args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "anyport", "serve", str(APP), "--http", "--port", str(port), "--log-level", "warning", *args]
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anyport serve did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stderr:
            proc.stderr.close()


def test_serve_with_jwt_and_api_key_flags(issuer: Issuer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["keys", "new", "--name", "ci"])
    key, line = result.stdout.splitlines()[:2]
    keys = tmp_path / "keys.txt"
    keys.write_text(line + "\n")
    with serving("--stateless", "--json-response", "--jwt-issuer", issuer.issuer, "--jwks-url", issuer.jwks_url,
                 "--api-keys", str(keys), "--scope", "tools.read") as base, httpx.Client(base_url=base) as c:
        r = c.post("/mcp", headers=POST_HEADERS, json=ECHO)
        assert r.status_code == 401
        assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in r.headers["www-authenticate"]
        meta = c.get("/.well-known/oauth-protected-resource/mcp").json()
        assert meta["authorization_servers"] == [issuer.issuer] and meta["resource"] == f"{base}/mcp"
        token = issuer.token(aud=f"{base}/mcp")
        assert c.post("/mcp", headers={**POST_HEADERS, "authorization": f"Bearer {token}"}, json=ECHO).status_code == 200
        assert c.post("/mcp", headers={**POST_HEADERS, "x-api-key": key}, json=ECHO).status_code == 200
        assert c.post("/mcp", headers={**POST_HEADERS, "authorization": f"Bearer {key}x"}, json=ECHO).status_code == 401


def test_serve_with_a_config_file_and_variables(issuer: Issuer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["keys", "new", "--name", "from-env", "--scope", "x"])
    key, line = result.stdout.splitlines()[:2]
    config = tmp_path / "auth.toml"
    config.write_text(f'[auth]\nauthorization_servers = ["{issuer.issuer}"]\n[auth.api_keys]\nenv = "MY_KEYS"\n'
                      f'[auth.jwt]\nissuer = "{issuer.issuer}"\njwks_url = "{issuer.jwks_url}"\n')
    env = {"ANYPORT_AUTH_CONFIG": str(config), "MY_KEYS": line, "ANYPORT_STATELESS": "1", "ANYPORT_JSON_RESPONSE": "1"}
    with serving(env=env) as base, httpx.Client(base_url=base) as c:
        assert c.post("/mcp", headers=POST_HEADERS, json=ECHO).status_code == 401
        assert c.post("/mcp", headers={**POST_HEADERS, "authorization": f"Bearer {key}"}, json=ECHO).status_code == 200


def test_bad_auth_configuration_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "auth.toml"
    config.write_text('[auth]\nresource = "https://x/mcp"\n[auth.jwt]\nissuer = "i"\njwks_url = "https://i/jwks"\nsurprise = 1\n')
    result = CliRunner().invoke(cli, ["serve", str(APP), "--http", "--auth-config", str(config)])
    assert result.exit_code == 2 and "unknown key(s) in jwt: surprise" in result.output
    result = CliRunner().invoke(cli, ["serve", str(APP), "--http", "--jwt-issuer", "https://i"])
    assert result.exit_code == 2 and "go together" in result.output
    result = CliRunner().invoke(cli, ["serve", str(APP), "--jwks-url", "https://i/jwks"])
    assert result.exit_code == 2 and "only with --http" in result.output


def test_auth_flags_without_http_are_named_as_typed() -> None:
    result = CliRunner().invoke(cli, ["serve", str(APP), "--scope", "a", "--authorization-server", "https://as"])
    assert result.exit_code == 2
    assert "--scope, --authorization-server: only with --http" in result.output or (
        "--authorization-server" in result.output and "--scope" in result.output
    )


def test_serve_with_client_ca_maps_certificates_to_principals(tmp_path: Path) -> None:
    """anyport serve --certfile/--keyfile --client-ca: uvicorn verifies client certificates at the
    handshake and the verified one is the principal; no certificate, no connection."""
    import ssl

    import trustme

    server_ca, client_ca = trustme.CA(), trustme.CA()
    leaf = server_ca.issue_cert("127.0.0.1")
    certfile, keyfile, ca_file = tmp_path / "s.pem", tmp_path / "s.key", tmp_path / "ca.pem"
    certfile.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    keyfile.write_bytes(leaf.private_key_pem.bytes())
    client_ca.cert_pem.write_to_path(str(ca_file))
    client = client_ca.issue_cert("robot.example.org")
    ccert, ckey = tmp_path / "c.pem", tmp_path / "c.key"
    ccert.write_bytes(client.cert_chain_pems[0].bytes())
    ckey.write_bytes(client.private_key_pem.bytes())
    good = ssl.create_default_context()
    server_ca.configure_trust(good)
    good.load_cert_chain(str(ccert), str(ckey))
    anonymous = ssl.create_default_context()
    server_ca.configure_trust(anonymous)
    port = _free_port()
    cmd = [sys.executable, "-m", "anyport", "serve", str(APP), "--http", "--port", str(port), "--log-level", "warning",
           "--stateless", "--json-response", "--certfile", str(certfile), "--keyfile", str(keyfile), "--client-ca", str(ca_file)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(base + "/healthz", verify=good).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        with httpx.Client(base_url=base, verify=good) as c:
            r = c.post("/mcp", headers={**POST_HEADERS, "mcp-protocol-version": "2025-11-25"}, json=ECHO)
            assert r.status_code == 200, r.text
        try:
            refused = httpx.post(base + "/mcp", headers=POST_HEADERS, json=ECHO, verify=anonymous).status_code
        except httpx.TransportError:
            refused = 0
        assert refused == 0  # refused at the handshake
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stderr:
            proc.stderr.close()
