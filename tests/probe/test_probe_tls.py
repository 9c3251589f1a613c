"""``anyport probe`` over https: the tls phase against uvicorn with a test CA's certificate (trustme)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme
import uvicorn

from anyport.transports.http import create_app
from tests.interop.fixture_server import app as fixture_app
from tests.probe.conftest import run_probe


@contextmanager
def tls_server(tmp: Path) -> Iterator[tuple[str, str]]:
    """The fixture server over https on 127.0.0.1; yields (base URL, CA file)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    pem, ca_pem = tmp / "server.pem", tmp / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    ca.cert_pem.write_to_path(str(ca_pem))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(fixture_app), log_level="warning", lifespan="on", ws="none", http="h11", loop="asyncio",
        ssl_certfile=str(pem), ssl_keyfile=str(pem), timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"https://127.0.0.1:{port}", str(ca_pem)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_tls_phase(tmp_path: Path) -> None:
    with tls_server(tmp_path) as (base, cafile):
        trusted = run_probe("--cafile", cafile, f"{base}/mcp")
        untrusted = run_probe("--timeout", "2", f"{base}/mcp")
        insecure = run_probe("--insecure", f"{base}/mcp")
    assert trusted.exit_code == 0, trusted.report
    assert trusted.phases == ["resolve", "connect", "tls", "handshake", "tools_list"]
    tls = trusted.phase("tls")
    assert tls["tls_version"] in ("TLSv1.2", "TLSv1.3") and tls["cert_not_after"] > time.time()
    assert untrusted.exit_code == 4
    assert untrusted.error_line is not None and (untrusted.error_line["code"], untrusted.error_line["phase"]) == ("tls_error", "tls")
    assert "certificate verify failed" in untrusted.error_line["message"]
    assert insecure.exit_code == 0, insecure.report
