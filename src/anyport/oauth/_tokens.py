"""Token-endpoint requests: client authentication, DPoP, the answer or a typed error.

Client authentication (OAuth 2.1 §2.4): ``client_secret_basic`` (form-encoded id and secret in
``Authorization: Basic``), ``client_secret_post`` (both in the body), ``none`` (``client_id`` in the
body) and ``private_key_jwt`` (RFC 7523 §2.2: a signed assertion, ``iss`` = ``sub`` = client id,
``aud`` = the issuer). With a DPoP key every token request carries a fresh proof; a
``use_dpop_nonce`` answer is retried once with the server's nonce (RFC 9449 §8).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from anyport._exceptions import OAuthTokenError

if TYPE_CHECKING:
    import httpx

    from anyport.oauth._discovery import AuthServer
    from anyport.oauth._dpop import DPoPKey

__all__ = ["ClientIdentity", "Tokens", "request_tokens", "signing_key"]

_EXPIRY_MARGIN = 30.0  # seconds before expiry at which a token counts as expired


@dataclass
class ClientIdentity:
    """Who we are at one authorization server (A-19: kept per issuer)."""

    client_id: str
    client_secret: str | None = None
    #: ``client_secret_basic``, ``client_secret_post``, ``none`` or ``private_key_jwt``.
    auth_method: str = "none"
    redirect_uris: list[str] = field(default_factory=list)
    #: How it was obtained: ``pre-registered``, ``cimd`` or ``dcr``.
    source: str = "pre-registered"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientIdentity | None:
        try:
            return cls(**{k: data[k] for k in ("client_id", "client_secret", "auth_method", "redirect_uris", "source")})
        except (KeyError, TypeError):
            return None


@dataclass
class Tokens:
    """What a token endpoint gave, for one issuer and one resource."""

    access_token: str
    token_type: str = "Bearer"
    expires_at: float | None = None
    refresh_token: str | None = None
    scope: str | None = None
    #: The scopes we asked for (what a step-up adds to, A-28).
    requested_scope: str | None = None

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and time.time() > self.expires_at - _EXPIRY_MARGIN

    @property
    def is_dpop(self) -> bool:
        return self.token_type.lower() == "dpop"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokens | None:
        if not isinstance(data.get("access_token"), str):
            return None
        fields = ("access_token", "token_type", "expires_at", "refresh_token", "scope", "requested_scope")
        return cls(**{k: data[k] for k in fields if k in data})


def signing_key(private_key_pem: str, alg: str) -> Any:
    """A joserfc key from a PEM private key, for ``private_key_jwt`` (ES*/RS*/PS*/EdDSA)."""
    from joserfc.jwk import ECKey, OKPKey, RSAKey

    kind = ECKey if alg.startswith("ES") else OKPKey if alg == "EdDSA" else RSAKey
    try:
        return kind.import_key(private_key_pem)
    except Exception as exc:
        raise ValueError(f"the private key is not a PEM {kind.__name__[:-3]} key usable with {alg}: {exc}") from exc


def client_assertion(client_id: str, audience: str, key: Any, alg: str) -> str:
    """RFC 7523 §2.2 / §3: a short-lived JWT that authenticates the client."""
    from joserfc import jwt

    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 300,
              "jti": secrets.token_urlsafe(16)}
    return str(jwt.encode({"alg": alg, "typ": "JWT"}, claims, key, algorithms=[alg]))


def _basic(client_id: str, secret: str) -> str:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"  # RFC 6749 §2.3.1: form-encoded first
    return "Basic " + base64.b64encode(raw.encode()).decode("ascii")


def authenticate(
    form: dict[str, str], headers: dict[str, str], identity: ClientIdentity | None, server: AuthServer,
    assertion_key: tuple[Any, str] | None = None,
) -> None:
    """Add the client authentication of ``identity`` to a token request."""
    if identity is None:
        return
    method = identity.auth_method
    if method == "client_secret_basic" and identity.client_secret is not None:
        headers["authorization"] = _basic(identity.client_id, identity.client_secret)
    elif method == "client_secret_post" and identity.client_secret is not None:
        form["client_id"] = identity.client_id
        form["client_secret"] = identity.client_secret
    elif method == "private_key_jwt" and assertion_key is not None:
        key, alg = assertion_key
        form["client_id"] = identity.client_id
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        form["client_assertion"] = client_assertion(identity.client_id, server.issuer, key, alg)
    else:
        form["client_id"] = identity.client_id


async def request_tokens(
    http: httpx.AsyncClient,
    server: AuthServer,
    form: dict[str, str],
    identity: ClientIdentity | None,
    *,
    dpop: DPoPKey | None = None,
    assertion_key: tuple[Any, str] | None = None,
    endpoint: str | None = None,
) -> Tokens:
    """POST a grant to the token endpoint; the tokens, or ``OAuthTokenError``."""
    import httpx

    url = endpoint or server.endpoint("token_endpoint")
    for attempt in range(2):  # the second only after a use_dpop_nonce challenge (RFC 9449 §8)
        body, headers = dict(form), {"accept": "application/json"}
        authenticate(body, headers, identity, server, assertion_key)
        if dpop is not None:
            headers["dpop"] = dpop.proof("POST", url)
        try:
            resp = await http.post(url, data=body, headers=headers)
        except httpx.HTTPError as exc:
            raise OAuthTokenError(f"the token request to {url} failed: {exc!r}") from exc
        fresh_nonce = dpop.remember_nonce(url, resp.headers.get("dpop-nonce")) if dpop is not None else False
        data = _json(resp)
        if resp.status_code == 200 and isinstance(data.get("access_token"), str):
            return _tokens(data, form)
        error = data.get("error") if isinstance(data.get("error"), str) else None
        if error == "use_dpop_nonce" and fresh_nonce and attempt == 0:
            continue
        detail = data.get("error_description")
        what = form.get("grant_type", "token")
        message = f"the authorization server refused the {what} grant (HTTP {resp.status_code}"
        message += f", {error}" if error else ""
        message += f": {detail})" if isinstance(detail, str) and detail else ")"
        raise OAuthTokenError(message, error=error, status=resp.status_code)
    raise OAuthTokenError("the authorization server kept asking for a new DPoP nonce", error="use_dpop_nonce")


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = json.loads(resp.content[: 1 << 20])
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _tokens(data: dict[str, Any], form: dict[str, str]) -> Tokens:
    expires_in = data.get("expires_in")
    expires_at = time.time() + float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else None
    token_type = data.get("token_type")
    refresh = data.get("refresh_token")
    scope = data.get("scope")
    return Tokens(
        access_token=data["access_token"],
        token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
        expires_at=expires_at,
        refresh_token=refresh if isinstance(refresh, str) else None,
        scope=scope if isinstance(scope, str) else None,
        requested_scope=form.get("scope"),
    )
