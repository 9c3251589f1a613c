"""A small authorization server for the auth tests: JWKS, RFC 7662 introspection and RFC 8414
metadata served over real HTTP on a free loopback port (a thread), and tokens signed with joserfc.

Keys rotate with ``rotate()``; tokens are revoked with ``revoke()``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwk, jwt


class Issuer:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.issuer = self.url
        self.keys: list[Any] = []
        self.rotate()
        self.active: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, int] = {}
        self.introspection_client = ("mcp-server", "s3cret")
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def rotate(self, keep_old: bool = False) -> Any:
        key = jwk.ECKey.generate_key("P-256", parameters={"kid": secrets.token_hex(4), "use": "sig", "alg": "ES256"})
        self.keys = [key, *self.keys] if keep_old else [key]
        return key

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    def token(self, *, key: Any = None, alg: str = "ES256", header: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.issuer, "sub": "alice", "client_id": "app-1", "iat": now, "exp": now + 300,
                                "scope": "tools.read"}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        key = key or self.keys[0]
        head = {"alg": alg, "kid": key.kid, **(header or {})}
        return jwt.encode(head, body, key, algorithms=[alg])

    def opaque(self, **claims: Any) -> str:
        token = secrets.token_urlsafe(24)
        now = int(time.time())
        self.active[token] = {"active": True, "iss": self.issuer, "sub": "bob", "client_id": "app-2", "exp": now + 300,
                              "scope": "tools.read", **claims}
        return token

    def revoke(self, token: str) -> None:
        self.active.pop(token, None)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                issuer.requests[self.path] = issuer.requests.get(self.path, 0) + 1
                if self.path == "/jwks":
                    self._json(200, {"keys": [k.as_dict(private=False) for k in issuer.keys]})
                elif self.path == "/.well-known/oauth-authorization-server":
                    self._json(200, {"issuer": issuer.issuer, "authorization_endpoint": issuer.url + "/authorize",
                                     "token_endpoint": issuer.url + "/token", "jwks_uri": issuer.jwks_url,
                                     "introspection_endpoint": issuer.url + "/introspect"})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                issuer.requests[self.path] = issuer.requests.get(self.path, 0) + 1
                length = int(self.headers.get("content-length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                if self.path != "/introspect":
                    self._json(404, {"error": "not found"})
                    return
                expected = "Basic " + base64.b64encode(":".join(issuer.introspection_client).encode()).decode()
                if self.headers.get("authorization") != expected:
                    self._json(401, {"error": "invalid_client"})
                    return
                token = (form.get("token") or [""])[0]
                self._json(200, issuer.active.get(token, {"active": False}))

        return Handler


def thumbprint_and_proof(key: Any, *, method: str, url: str, token: str, iat: float | None = None, jti: str | None = None) -> str:
    """A DPoP proof signed by ``key`` for one request."""
    ath = base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()
    claims = {"jti": jti or secrets.token_hex(8), "htm": method, "htu": url, "iat": int(iat or time.time()), "ath": ath}
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, claims, key, algorithms=["ES256"])
