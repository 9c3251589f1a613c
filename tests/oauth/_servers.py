"""A toy authorization server and a protected MCP server for the OAuth client tests.

Both are plain ASGI apps served by a real uvicorn on a free loopback port (``running``); no mock of
httpx anywhere. They record what they receive so the tests can assert the wire.

``ToyAS``: RFC 8414 metadata (at a path chosen by the test), an authorization endpoint that approves
at once (302 to the redirect URI with ``code``, ``state`` and, as configured, ``iss``), a token
endpoint (authorization_code with PKCE S256 verification, refresh_token with rotation,
client_credentials with client_secret_basic or private_key_jwt, DPoP-bound tokens and nonces) and
dynamic client registration.

``Protected``: an anyport ``Server`` behind a bearer/DPoP check that asks the AS which tokens are
live; it serves PRM and answers 401/403 with ``WWW-Authenticate`` as configured.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from anyport import Server
from anyport.transports.http import create_app

Scope = dict[str, Any]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


async def _read(receive: Any) -> bytes:
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


async def _send(send: Any, status: int, body: Any = b"", headers: list[tuple[str, str]] | None = None) -> None:
    hdrs = list(headers or [])
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        hdrs.append(("content-type", "application/json"))
    await send({"type": "http.response.start", "status": status, "headers": [(k.encode(), v.encode()) for k, v in hdrs]})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _seen(scope: Scope, receive: Any) -> Seen:
    body = await _read(receive)
    headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
    form: dict[str, str] = {}
    ctype = headers.get("content-type", "")
    if body and ctype.startswith("application/x-www-form-urlencoded"):
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    elif body and ctype.startswith("application/json"):
        form = json.loads(body)
    return Seen(scope["method"], scope["path"], query, headers, form)


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class ToyAS:
    """An authorization server that approves everything it can check."""

    base: str = ""  # set once running: the origin, e.g. http://127.0.0.1:1234
    issuer_path: str = ""
    metadata_path: str = "/.well-known/oauth-authorization-server"
    iss_mode: str = "correct"  # correct | wrong | omit
    iss_advertised: bool = True
    metadata_issuer: str | None = None  # a different issuer in the metadata (A-13 tests)
    dpop: bool = False
    dpop_nonce: str | None = None  # require this nonce in token-request proofs
    scopes_supported: list[str] | None = None
    cimd: bool = False
    expires_in: int = 3600
    client_keys: dict[str, Any] = field(default_factory=dict)  # client_id -> joserfc public key (private_key_jwt)
    secrets: dict[str, str] = field(default_factory=dict)  # client_id -> secret
    seen: list[Seen] = field(default_factory=list)
    live: dict[str, dict[str, Any]] = field(default_factory=dict)  # access token -> {scope, jkt, resource}
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)  # refresh token -> grant
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _n: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def issuer(self) -> str:
        return self.base + self.issuer_path

    def paths(self, name: str) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith(name)]

    def metadata(self) -> dict[str, Any]:
        p = self.base + self.issuer_path
        md: dict[str, Any] = {
            "issuer": self.metadata_issuer or self.issuer,
            "authorization_endpoint": f"{p}/authorize",
            "token_endpoint": f"{p}/token",
            "registration_endpoint": f"{p}/register",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "private_key_jwt"],
        }
        if self.iss_advertised:
            md["authorization_response_iss_parameter_supported"] = True
        if self.dpop:
            md["dpop_signing_alg_values_supported"] = ["ES256"]
        if self.scopes_supported is not None:
            md["scopes_supported"] = self.scopes_supported
        if self.cimd:
            md["client_id_metadata_document_supported"] = True
        return md

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        seen = await _seen(scope, receive)
        self.seen.append(seen)
        prefix = self.issuer_path
        if seen.path == self.metadata_path:
            await _send(send, 200, self.metadata())
        elif seen.path == f"{prefix}/authorize":
            await self._authorize(seen, send)
        elif seen.path == f"{prefix}/token":
            await self._token(seen, send)
        elif seen.path == f"{prefix}/register":
            client_id = f"dcr-{next(self._n)}"
            await _send(send, 201, {"client_id": client_id, "redirect_uris": seen.form.get("redirect_uris", []),
                                    "token_endpoint_auth_method": "none"})
        else:
            await _send(send, 404, {"error": "not_found"})

    async def _authorize(self, seen: Seen, send: Any) -> None:
        q = seen.query
        code = f"code-{next(self._n)}"
        self.codes[code] = dict(q)
        params = {"code": code, "state": q.get("state", "")}
        if self.iss_mode == "correct":
            params["iss"] = self.issuer
        elif self.iss_mode == "wrong":
            params["iss"] = "https://evil.example"
        location = q["redirect_uri"] + "?" + urlencode(params)
        await _send(send, 302, b"", [("location", location)])

    def _issue(self, grant: dict[str, Any], jkt: str | None) -> dict[str, Any]:
        n = next(self._n)
        access, refresh = f"at-{n}", f"rt-{n}"
        self.live[access] = {**grant, "jkt": jkt}
        self.refresh[refresh] = grant
        out = {"access_token": access, "token_type": "DPoP" if jkt else "Bearer", "expires_in": self.expires_in,
               "refresh_token": refresh}
        if grant.get("scope"):
            out["scope"] = grant["scope"]
        return out

    async def _token(self, seen: Seen, send: Any) -> None:
        f = seen.form
        jkt = None
        if self.dpop and "dpop" in seen.headers:
            from joserfc import jwt
            from joserfc.jwk import ECKey

            header = json.loads(base64.urlsafe_b64decode(seen.headers["dpop"].split(".")[0] + "=="))
            key = ECKey.import_key(header["jwk"])
            claims = jwt.decode(seen.headers["dpop"], key).claims
            if self.dpop_nonce is not None and claims.get("nonce") != self.dpop_nonce:
                await _send(send, 400, {"error": "use_dpop_nonce"}, [("dpop-nonce", self.dpop_nonce)])
                return
            jkt = key.thumbprint()
        grant_type = f.get("grant_type")
        if grant_type == "authorization_code":
            req = self.codes.pop(f.get("code", ""), None)
            if req is None or s256(f.get("code_verifier", "")) != req.get("code_challenge"):
                await _send(send, 400, {"error": "invalid_grant", "error_description": "bad code or PKCE verifier"})
                return
            await _send(send, 200, self._issue({"scope": req.get("scope"), "resource": f.get("resource")}, jkt))
        elif grant_type == "refresh_token":
            grant = self.refresh.pop(f.get("refresh_token", ""), None)  # rotation: a refresh token works once
            if grant is None:
                await _send(send, 400, {"error": "invalid_grant", "error_description": "unknown refresh token"})
                return
            await _send(send, 200, self._issue({**grant, "resource": f.get("resource")}, jkt))
        elif grant_type == "client_credentials":
            if not self._client_ok(seen):
                await _send(send, 401, {"error": "invalid_client"})
                return
            await _send(send, 200, self._issue({"scope": f.get("scope"), "resource": f.get("resource")}, jkt))
        else:
            await _send(send, 400, {"error": "unsupported_grant_type"})

    def _client_ok(self, seen: Seen) -> bool:
        auth = seen.headers.get("authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return self.secrets.get(cid) == secret
        assertion = seen.form.get("client_assertion")
        key = self.client_keys.get(seen.form.get("client_id", ""))
        if assertion and key is not None:
            from joserfc import jwt

            claims = jwt.decode(assertion, key).claims
            return claims.get("aud") == self.issuer and claims.get("iss") == claims.get("sub") == seen.form["client_id"]
        return False


@dataclass
class Protected:
    """An MCP server (anyport) behind a token check against ``auth``; PRM at the path-inserted URL."""

    auth: ToyAS
    base: str = ""
    prm_resource: str | None = None  # what PRM says (default: the MCP URL)
    prm_in_header: bool = True
    prm_at: str = "path"  # path | root | none
    scope_in_challenge: str | None = None
    scopes_supported: list[str] | None = None
    required_scope: str | None = None  # tools/call needs it (403 insufficient_scope otherwise)
    rs_nonce: str | None = None  # DPoP nonce the resource requires (RFC 9449 §9)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = Server("protected")

        @server.tool()
        def whoami() -> str:
            """Says hello."""
            return "hello"

        self._mcp = create_app(server)

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def prm_path(self) -> str:
        return "/.well-known/oauth-protected-resource" + ("/mcp" if self.prm_at == "path" else "")

    def _challenge(self, scheme: str, **extra: str) -> str:
        params = dict(extra)
        if self.prm_in_header:
            params["resource_metadata"] = self.base + self.prm_path()
        if self.scope_in_challenge and "scope" not in params:
            params["scope"] = self.scope_in_challenge
        return (scheme + " " + ", ".join(f'{k}="{v}"' for k, v in params.items())).strip()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._mcp(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith("/.well-known/oauth-protected-resource"):
            await _read(receive)
            self.seen.append(Seen("GET", path, {}, {}, {}))
            if self.prm_at == "none" or path != self.prm_path():
                await _send(send, 404, {"error": "not_found"})
                return
            prm: dict[str, Any] = {"resource": self.prm_resource or self.url, "authorization_servers": [self.auth.issuer]}
            if self.scopes_supported is not None:
                prm["scopes_supported"] = self.scopes_supported
            await _send(send, 200, prm)
            return
        body = await _read(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.seen.append(Seen(scope["method"], path, {}, headers, {}))
        _, _, token = headers.get("authorization", "").partition(" ")
        grant = self.auth.live.get(token)
        if grant is None or grant.get("resource") != (self.prm_resource or self.url):
            await _send(send, 401, {"error": "invalid_token"}, [("www-authenticate", self._challenge("Bearer"))])
            return
        if grant.get("jkt") and not await self._dpop_ok(scope, headers, token, grant, send):
            return
        msg = json.loads(body) if body else {}
        wanted = self.required_scope
        if wanted and isinstance(msg, dict) and msg.get("method") == "tools/call":
            if wanted not in (grant.get("scope") or "").split():
                challenge = self._challenge("Bearer", error="insufficient_scope", scope=wanted)
                await _send(send, 403, {"error": "insufficient_scope"}, [("www-authenticate", challenge)])
                return
        replay_body = [body]

        async def replay() -> dict[str, Any]:
            if replay_body:
                return {"type": "http.request", "body": replay_body.pop(), "more_body": False}
            return dict(await receive())  # after the body: whatever comes (the disconnect)

        await self._mcp(scope, replay, send)

    async def _dpop_ok(self, scope: Scope, headers: dict[str, str], token: str, grant: dict[str, Any], send: Any) -> bool:
        from joserfc import jwt
        from joserfc.jwk import ECKey

        proof = headers.get("dpop", "")
        header = json.loads(base64.urlsafe_b64decode(proof.split(".")[0] + "=="))
        key = ECKey.import_key(header["jwk"])
        claims = jwt.decode(proof, key).claims
        ok = (
            headers["authorization"].startswith("DPoP ")
            and key.thumbprint() == grant["jkt"]
            and claims.get("ath") == s256(token)
            and claims.get("htm") == scope["method"]
            and claims.get("htu") == f"{self.base}{scope['path']}"
        )
        if not ok:
            await _send(send, 401, {"error": "invalid_token"}, [("www-authenticate", self._challenge("DPoP"))])
            return False
        if self.rs_nonce is not None and claims.get("nonce") != self.rs_nonce:
            challenge = self._challenge("DPoP", error="use_dpop_nonce")
            await _send(send, 401, {"error": "use_dpop_nonce"}, [("www-authenticate", challenge), ("dpop-nonce", self.rs_nonce)])
            return False
        return True


def origin(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


@contextlib.contextmanager
def toy_servers() -> Iterator[tuple[ToyAS, Protected]]:
    """A toy authorization server and a protected anyport MCP server, each a real uvicorn on loopback."""
    from tests.transports._http_helpers import running

    auth = ToyAS()
    with running(auth) as as_base:
        auth.base = as_base
        resource = Protected(auth)
        with running(resource) as rs_base:
            resource.base = rs_base
            yield auth, resource
