"""Client certificates as identities: one the TLS handshake verified (``anyport serve --client-ca``),
or one a trusted proxy or mesh vouches for in a header (Envoy/Istio ``X-Forwarded-Client-Cert``,
nginx ``$ssl_client_escaped_cert``), believed only from ``trusted_proxies`` peers.

The identity is the first of: a SAN URI (a SPIFFE id), a SAN DNS name, a SAN e-mail, the subject CN
(``identity`` picks one kind). Scopes come from ``scopes``: identity pattern (``fnmatch``) -> scopes,
every matching pattern adding its scopes, plus ``default_scopes``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID

from anyport.auth._principal import AuthError, AuthRequest, Principal

__all__ = ["ClientCertificates", "PeerList", "identity_of"]

_KINDS = ("uri", "dns", "email", "cn")


class PeerList:
    """Peer addresses (and networks, ``10.0.0.0/8``) allowed to speak for clients; ``*``: any."""

    def __init__(self, peers: Iterable[str] | None) -> None:
        self.any = False
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for peer in peers or ():
            if peer.strip() == "*":
                self.any = True
            else:
                self.networks.append(ipaddress.ip_network(peer.strip().strip("[]"), strict=False))

    def __contains__(self, peer: object) -> bool:
        if self.any:
            return True
        if not isinstance(peer, str):
            return False
        try:
            address = ipaddress.ip_address(peer.strip("[]"))
        except ValueError:
            return False
        return any(address in net for net in self.networks)


def identity_of(cert: x509.Certificate, kinds: Iterable[str] = _KINDS) -> tuple[str, str] | None:
    """(kind, value) of the first identity of ``kinds`` the certificate has."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    for kind in kinds:
        values: list[Any] = []
        if kind == "uri" and san is not None:
            values = san.get_values_for_type(x509.UniformResourceIdentifier)
        elif kind == "dns" and san is not None:
            values = san.get_values_for_type(x509.DNSName)
        elif kind == "email" and san is not None:
            values = san.get_values_for_type(x509.RFC822Name)
        elif kind == "cn":
            values = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if values:
            return kind, str(values[0])
    return None


class ClientCertificates:
    """Authenticates by client certificate: the one verified at the TLS handshake (``native``), and,
    with ``header``, the one a proxy in ``trusted_proxies`` forwards (``xfcc`` for Envoy/Istio's
    ``X-Forwarded-Client-Cert``, else a URL-encoded PEM as nginx sends it)."""

    def __init__(
        self, *, native: bool = True, header: str | None = None, trusted_proxies: Iterable[str] | None = None,
        identity: str | None = None, scopes: Mapping[str, Iterable[str]] | None = None,
        default_scopes: Iterable[str] = (), verify_header: str | None = None,
    ) -> None:
        if identity is not None and identity not in _KINDS:
            raise ValueError(f"identity is one of {', '.join(_KINDS)}")
        if header is not None and not trusted_proxies:
            raise ValueError("a client-certificate header needs trusted_proxies: it is believed only from them")
        self.native = native
        self.header = header.lower().encode() if header else None
        self.xfcc = header is not None and header.lower() == "x-forwarded-client-cert"
        self.proxies = PeerList(trusted_proxies)
        self.kinds = (identity,) if identity else _KINDS
        self.scopes = {pattern: frozenset(s) for pattern, s in (scopes or {}).items()}
        self.default_scopes = frozenset(default_scopes)
        #: nginx: a header whose value must be ``SUCCESS`` (``$ssl_client_verify``) for the cert to count.
        self.verify_header = verify_header.lower().encode() if verify_header else None

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        if self.header is not None:
            raw = request.headers.get(self.header)
            if raw is not None:
                if request.peer not in self.proxies:
                    raise AuthError("a client-certificate header from an untrusted peer is not believed")
                if self.verify_header is not None and (request.header(self.verify_header) or "").strip() != "SUCCESS":
                    raise AuthError("the proxy did not verify the client certificate")
                return self._from_header(raw.decode("latin-1"))
        if self.native and request.client_cert is not None:
            return self._principal(_load_der(request.client_cert), "mtls", None)
        return None

    def _from_header(self, value: str) -> Principal:
        if self.xfcc:
            fields = _xfcc_last(value)
            pem = fields.get("cert")
            if pem:
                return self._principal(_load_pem(unquote(pem)), "mtls_proxy", fields.get("by"))
            for kind, key in (("uri", "uri"), ("dns", "dns"), ("cn", "subject")):
                if kind in self.kinds and fields.get(key):
                    ident = fields[key]
                    if key == "subject":
                        ident = next((p[3:] for p in ident.split(",") if p.strip().upper().startswith("CN=")), ident)
                    return self._mapped(ident.strip(), "mtls_proxy", None, fields.get("by"))
            raise AuthError("the forwarded client certificate names no identity")
        return self._principal(_load_pem(unquote(value)), "mtls_proxy", None)

    def _principal(self, cert: x509.Certificate, method: str, issuer: str | None) -> Principal:
        now = dt.datetime.now(dt.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise AuthError("the client certificate is not valid now")
        found = identity_of(cert, self.kinds)
        if found is None:
            raise AuthError("the client certificate names no usable identity")
        return self._mapped(found[1], method, cert.not_valid_after_utc.timestamp(), issuer or cert.issuer.rfc4514_string())

    def _mapped(self, ident: str, method: str, expires: float | None, issuer: str | None) -> Principal:
        scopes = set(self.default_scopes)
        for pattern, granted in self.scopes.items():
            if fnmatch.fnmatchcase(ident, pattern):
                scopes |= granted
        return Principal(subject=ident, method=method, scopes=frozenset(scopes), expires_at=expires, issuer=issuer or "mtls")


def _load_der(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise AuthError("the client certificate cannot be read") from None


def _load_pem(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise AuthError("the forwarded client certificate cannot be read") from None


def _xfcc_last(value: str) -> dict[str, str]:
    """The last element of an ``X-Forwarded-Client-Cert`` value (the one the nearest proxy added),
    as lower-case keys -> values (quotes removed)."""
    elements = _split(value, ",")
    fields: dict[str, str] = {}
    for pair in _split(elements[-1] if elements else "", ";"):
        key, sep, val = pair.partition("=")
        if sep:
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] == '"':
                val = val[1:-1].replace('\\"', '"')
            fields.setdefault(key.strip().lower(), val)
    return fields


def _split(value: str, sep: str) -> list[str]:
    """``value`` split at ``sep`` outside double quotes."""
    out, current, quoted, escaped = [], [], False, False
    for ch in value:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            current.append(ch)
        elif ch == sep and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return [p for p in (s.strip() for s in out) if p]
