"""``anyport serve --http`` and ``Server.run("http")``, run as users run them: a real process on a loopback port."""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from anyport.transports.http._serve import default_allowed_hosts, is_loopback
from tests.transports._http_helpers import modern_body, modern_headers, sse_messages

FIXTURE = str(Path(__file__).parents[1] / "interop" / "fixture_server.py")
ANYPORT = [sys.executable, "-m", "anyport"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(cmd: list[str], base: str, *, env: Mapping[str, str] | None = None, verify: ssl.SSLContext | bool = True) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``cmd``, wait (bounded) for ``base``/healthz; always stop the process."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited with {proc.returncode}: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1, verify=verify).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the server did not become healthy in 20 s")
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    """SIGTERM, then the exit status and stderr (bounded)."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=15)
    return proc.returncode, err.decode()


def list_tools(base: str, path: str = "/mcp", verify: ssl.SSLContext | bool = True) -> list[str]:
    r = httpx.post(f"{base}{path}", headers=modern_headers("tools/list"), json=modern_body(1, "tools/list"), timeout=10, verify=verify)
    assert r.status_code == 200, r.text
    body = r.json() if r.headers["content-type"] == "application/json" else sse_messages(r.text)[-1]
    return [t["name"] for t in body["result"]["tools"]]


def test_serve_http_answers_and_stops_cleanly_on_sigterm() -> None:
    """--http: Streamable HTTP on 127.0.0.1 with /healthz; the legacy SSE endpoint too; SIGTERM exits 0."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving([*ANYPORT, "serve", FIXTURE, "--http", "--port", str(port)], base) as proc:
        assert list_tools(base)[:3] == ["echo", "add", "weather"]
        with httpx.Client(timeout=10) as c, c.stream("GET", f"{base}/sse", headers={"accept": "text/event-stream"}) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            assert next(lines) == "event: endpoint"
            # An open SSE stream does not hold the shutdown up: it is ended when the signal comes.
            code, err = stop(proc)
    assert code == 0, err
    assert "serving 'interop-fixture' at http://127.0.0.1:" in err
    assert "warning" not in err


def test_options_from_the_environment() -> None:
    """ANYPORT_* variables: transport, port, path, JSON responses, allowed hosts."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "ANYPORT_TRANSPORT": "http", "ANYPORT_PORT": str(port), "ANYPORT_PATH": "/api",
        "ANYPORT_JSON_RESPONSE": "1", "ANYPORT_ALLOWED_HOSTS": "127.0.0.1 example.test", "ANYPORT_LOG_LEVEL": "warning",
    }
    with serving([*ANYPORT, "serve", FIXTURE], base, env=env) as proc:
        r = httpx.post(f"{base}/api", headers=modern_headers("tools/list"), json=modern_body(1, "tools/list"), timeout=10)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert httpx.post(f"{base}/mcp", headers=modern_headers("tools/list"), json=modern_body(1, "tools/list"), timeout=10).status_code == 404
        # The listed hosts are allowed, and only they ("localhost" is not listed).
        ok = httpx.post(f"{base}/api", headers={**modern_headers("tools/list"), "host": "example.test"}, json=modern_body(1, "tools/list"), timeout=10)
        assert ok.status_code == 200
        denied = httpx.post(f"{base}/api", headers={**modern_headers("tools/list"), "host": f"localhost:{port}"}, json=modern_body(1, "tools/list"), timeout=10)
        assert denied.status_code == 403
        code, err = stop(proc)
    assert code == 0, err


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp / "cert.pem", tmp / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return certfile, keyfile


def test_tls_with_certfile_and_keyfile(tmp_path: Path) -> None:
    """--certfile/--keyfile: HTTPS through uvicorn, verified against the certificate."""
    certfile, keyfile = _self_signed(tmp_path)
    ctx = ssl.create_default_context(cafile=str(certfile))
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    cmd = [*ANYPORT, "serve", FIXTURE, "--http", "--port", str(port), "--certfile", str(certfile), "--keyfile", str(keyfile)]
    with serving(cmd, base, verify=ctx) as proc:
        assert "echo" in list_tools(base, verify=ctx)
        code, err = stop(proc)
    assert code == 0, err
    assert f"at https://127.0.0.1:{port}/mcp" in err


def test_server_run_http() -> None:
    """Server.run("http", host=..., port=...) serves the same app."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    script = (
        "import runpy, sys; ns = runpy.run_path(sys.argv[1]); "
        "ns['app'].run('http', host='127.0.0.1', port=int(sys.argv[2]), log_level='warning')"
    )
    with serving([sys.executable, "-c", script, FIXTURE, str(port)], base) as proc:
        assert "sleep" in list_tools(base)
        code, err = stop(proc)
    assert code == 0, err


def _run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ANYPORT, *args], capture_output=True, text=True, timeout=60, check=False, env={**os.environ, **(env or {})})


def test_usage_errors(tmp_path: Path) -> None:
    """HTTP options without --http, contradicting transports, a key without a certificate: exit 2 before serving."""
    p = _run("serve", FIXTURE, "--port", "1234")
    assert p.returncode == 2 and "--port: only with --http" in p.stderr
    p = _run("serve", FIXTURE, "--http", "--transport", "stdio")
    assert p.returncode == 2 and "contradicts" in p.stderr
    key = tmp_path / "key.pem"
    key.write_text("x")
    p = _run("serve", FIXTURE, "--http", "--keyfile", str(key))
    assert p.returncode == 2 and "--keyfile needs --certfile" in p.stderr
    p = _run("serve", FIXTURE, "--http", "--path", "mcp")
    assert p.returncode == 2


def test_install_hint_without_uvicorn() -> None:
    """uvicorn is imported lazily; without it, the command says what to install."""
    code = "import sys; sys.modules['uvicorn'] = None; from anyport.cli import main; main(sys.argv[1:])"
    p = subprocess.run(
        [sys.executable, "-c", code, "serve", FIXTURE, "--http"], capture_output=True, text=True, timeout=60, check=False
    )
    assert p.returncode == 1
    assert "pip install 'anyport[http]'" in p.stderr


def test_allowed_hosts_for_the_bind_address() -> None:
    """Loopback binds keep the local default; another address is allowed automatically, with a warning."""
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("127.0.0.2") and not is_loopback("10.0.0.5") and not is_loopback("0.0.0.0")
    assert default_allowed_hosts("127.0.0.1") == (None, None)
    hosts, warning = default_allowed_hosts("10.0.0.5")
    assert hosts is not None and "10.0.0.5" in hosts and "localhost" in hosts
    assert warning is not None and "10.0.0.5" in warning and "--allowed-host" in warning
    hosts, warning = default_allowed_hosts("fd00::5")
    assert hosts is not None and "[fd00::5]" in hosts and warning is not None
    hosts, warning = default_allowed_hosts("0.0.0.0")
    assert hosts is not None and socket.gethostname().lower() in hosts
    assert warning is not None and "all interfaces" in warning


@pytest.mark.parametrize("flag", ["--stateless", "--no-legacy-sse"])
def test_switches_reach_the_app(flag: str) -> None:
    """--stateless: legacy requests need no initialize; --no-legacy-sse: /sse is gone."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving([*ANYPORT, "serve", FIXTURE, "--http", "--port", str(port), flag], base) as proc:
        if flag == "--stateless":
            r = httpx.post(
                f"{base}/mcp", headers={"accept": "application/json, text/event-stream", "content-type": "application/json"},
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=10,
            )
            assert r.status_code == 200 and "mcp-session-id" not in r.headers
        else:
            assert httpx.get(f"{base}/sse", headers={"accept": "text/event-stream"}, timeout=10).status_code == 404
        code, err = stop(proc)
    assert code == 0, err
