"""mTLS against uvicorn terminating TLS with a client CA (a trustme CA): the verified certificate
becomes the principal; an untrusted or expired certificate is refused at the handshake and the
server keeps serving; behind a proxy, the client-certificate header counts only from trusted peers."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trustme

from anyport.auth import AuthChain, ClientCertificates
from anyport.transports.http import create_app
from tests.auth._serving import make_server, served
from tests.transports._http_helpers import POST_HEADERS

WHOAMI = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
HEADERS = {**POST_HEADERS, "mcp-protocol-version": "2025-11-25"}


def _files(tmp: Path, name: str, cert: trustme.LeafCert) -> tuple[str, str]:
    certfile, keyfile = tmp / f"{name}.pem", tmp / f"{name}.key"
    certfile.write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
    keyfile.write_bytes(cert.private_key_pem.bytes())
    return str(certfile), str(keyfile)


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    server_ca, client_ca, rogue_ca = trustme.CA(), trustme.CA(), trustme.CA()
    out: dict[str, Any] = {"tmp": tmp_path}
    out["server"] = _files(tmp_path, "server", server_ca.issue_cert("127.0.0.1"))
    client_ca.cert_pem.write_to_path(str(tmp_path / "client-ca.pem"))
    out["client_ca"] = str(tmp_path / "client-ca.pem")
    out["good"] = _files(tmp_path, "good", client_ca.issue_cert("agent.prod.example.org"))
    out["rogue"] = _files(tmp_path, "rogue", rogue_ca.issue_cert("agent.prod.example.org"))
    out["expired"] = _files(tmp_path, "expired", client_ca.issue_cert(
        "old.prod.example.org", not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=10),
        not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
    ))
    trust = ssl.create_default_context()
    server_ca.configure_trust(trust)
    out["trust"] = trust
    out["server_ca"] = server_ca
    out["client_ca_obj"] = client_ca
    return out


def _context(pki: dict[str, Any], client: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    pki["server_ca"].configure_trust(ctx)
    if client is not None:
        ctx.load_cert_chain(*pki[client])
    return ctx


def _chain(certs: ClientCertificates) -> Any:
    def make(base: str) -> Any:
        return create_app(make_server(), auth=AuthChain([certs], resource=base + "/mcp"), json_response=True, stateless=True)

    return make


def test_native_mtls_maps_the_verified_certificate_and_refuses_bad_ones_at_the_handshake(pki: dict[str, Any]) -> None:
    certs = ClientCertificates(scopes={"*.prod.example.org": ["tools.read"]})
    certfile, keyfile = pki["server"]
    with served(_chain(certs), certfile=certfile, keyfile=keyfile, client_ca=pki["client_ca"]) as base:
        with httpx.Client(base_url=base, verify=_context(pki, "good")) as c:
            r = c.post("/mcp", headers=HEADERS, json=WHOAMI)
            assert r.status_code == 200, r.text
            assert r.json()["result"]["structuredContent"] == {
                "subject": "agent.prod.example.org", "method": "mtls", "client": None, "scopes": ["tools.read"],
            }
        for who in ("rogue", "expired", None):
            with httpx.Client(base_url=base, verify=_context(pki, who)) as c, pytest.raises(httpx.TransportError):
                c.post("/mcp", headers=HEADERS, json=WHOAMI)
        with httpx.Client(base_url=base, verify=_context(pki, "good")) as c:  # still serving
            assert c.post("/mcp", headers=HEADERS, json=WHOAMI).status_code == 200


def test_optional_client_certificates_fall_back_to_a_401(pki: dict[str, Any]) -> None:
    certfile, keyfile = pki["server"]
    with served(_chain(ClientCertificates()), certfile=certfile, keyfile=keyfile, client_ca=pki["client_ca"], client_cert="optional") as base:
        with httpx.Client(base_url=base, verify=_context(pki, None)) as c:
            assert c.post("/mcp", headers=HEADERS, json=WHOAMI).status_code == 401
        with httpx.Client(base_url=base, verify=_context(pki, "good")) as c:
            assert c.post("/mcp", headers=HEADERS, json=WHOAMI).status_code == 200


def test_a_client_cert_header_counts_only_from_a_trusted_proxy(pki: dict[str, Any]) -> None:
    """Envoy/Istio X-Forwarded-Client-Cert and nginx's escaped PEM, from --trusted-proxy peers only."""
    pem = pki["client_ca_obj"].issue_cert("agent.prod.example.org").cert_chain_pems[0].bytes().decode()
    xfcc = f'By=spiffe://cluster/ns/mcp/sa/server;Hash=00;Cert="{quote(pem)}";DNS=agent.prod.example.org'
    for proxies, status in ((["10.9.9.9"], 401), (["127.0.0.1"], 200)):
        certs = ClientCertificates(native=False, header="x-forwarded-client-cert", trusted_proxies=proxies)
        with served(_chain(certs)) as base, httpx.Client(base_url=base) as c:
            r = c.post("/mcp", headers={**HEADERS, "x-forwarded-client-cert": xfcc}, json=WHOAMI)
            assert r.status_code == status, r.text
            if status == 401:
                assert "untrusted peer" in r.headers["www-authenticate"]
            else:
                assert r.json()["result"]["structuredContent"]["method"] == "mtls_proxy"
    nginx = ClientCertificates(native=False, header="x-ssl-client-cert", trusted_proxies=["127.0.0.1"], verify_header="x-ssl-client-verify")
    with served(_chain(nginx)) as base, httpx.Client(base_url=base) as c:
        h = {**HEADERS, "x-ssl-client-cert": quote(pem)}
        assert c.post("/mcp", headers=h, json=WHOAMI).status_code == 401  # the proxy did not say SUCCESS
        r = c.post("/mcp", headers={**h, "x-ssl-client-verify": "SUCCESS"}, json=WHOAMI)
        assert r.status_code == 200 and r.json()["result"]["structuredContent"]["subject"] == "agent.prod.example.org"
