"""Per-server state of the OAuth clients and how a new token is got: rediscovery, a stored or
refreshed token, a new grant, step-up (A-28), refresh with rotation (A-23, A-35), the store.

A 401 runs discovery again, since the server may have moved to another authorization server
(A-10); then the client identity is dropped, never reused with the new issuer (A-19).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from anyport._exceptions import OAuthTokenError
from anyport.oauth._discovery import Discovery, discover
from anyport.oauth._dpop import DPoPKey
from anyport.oauth._store import FileTokenStore, TokenStore
from anyport.oauth._tokens import ClientIdentity, Tokens, request_tokens
from anyport.oauth._urls import Challenge, canonical_resource, origin_of

__all__ = ["ServerState", "TokenKeeper"]


@dataclass
class ServerState:
    """What one ``OAuthFlow`` knows about one MCP server (one origin)."""

    server_url: str
    discovery: Discovery | None = None
    tokens: Tokens | None = None
    identity: ClientIdentity | None = None
    #: The issuer ``tokens`` came from: its refresh token goes to no other authorization server.
    issuer: str | None = None
    loaded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class TokenKeeper:
    """What every OAuth client keeps per server, and how it gets a new token (``OAuthFlow`` uses it).

    Subclasses implement ``_obtain`` (one grant). Args common to all:
        scopes: the scopes to ask for; default: the 401's ``scope``, else the PRM's
            ``scopes_supported``, else none (A-26).
        store: a ``TokenStore``; default ``FileTokenStore()`` (``~/.local/state/anyport/oauth.json``).
        dpop: ``"auto"`` (DPoP when the authorization server lists ``ES256`` in
            ``dpop_signing_alg_values_supported``), ``True`` or ``False``.
        max_step_ups: re-authorizations after 403 ``insufficient_scope`` per request (A-28).
        issuer: the authorization server to use when the PRM lists several (A-10).
        timeout: seconds for each request to an authorization server.
    """

    def __init__(
        self,
        *,
        scopes: list[str] | tuple[str, ...] | None = None,
        store: TokenStore | None = None,
        dpop: bool | Literal["auto"] = "auto",
        max_step_ups: int = 2,
        issuer: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if dpop not in (True, False, "auto"):
            raise ValueError("dpop is True, False or 'auto'")
        if max_step_ups < 0:
            raise ValueError("max_step_ups must be >= 0")
        self.scopes = tuple(scopes) if scopes is not None else None
        self.store: TokenStore = store if store is not None else FileTokenStore()
        self.dpop: bool | Literal["auto"] = dpop
        self.max_step_ups = max_step_ups
        self.issuer = issuer
        self.timeout = timeout
        self._servers: dict[tuple[str, str, int], ServerState] = {}
        self._dpop_key: DPoPKey | None = None

    # -- what subclasses provide ------------------------------------------------------------------

    async def _obtain(self, http: httpx.AsyncClient, state: ServerState, scope: str | None) -> Tokens:
        raise NotImplementedError

    def _select_scope(self, d: Discovery, extra: tuple[str, ...] = ()) -> str | None:
        """A-26 (plus ``extra``, the step-up union of A-28)."""
        if self.scopes is not None:
            base: tuple[str, ...] = self.scopes
        elif d.challenge_scopes is not None:
            base = d.challenge_scopes
        else:
            base = d.scopes_supported or ()
        wanted = list(dict.fromkeys([*base, *extra]))
        return " ".join(wanted) if wanted else None

    # -- state ------------------------------------------------------------------------------------

    def _state_for(self, url: str) -> ServerState:
        """One state per origin: each origin's token comes from its own discovery, so a token is
        only ever sent to the origin of the resource it was issued for (A-32)."""
        key = origin_of(url)
        state = self._servers.get(key)
        if state is None:
            state = self._servers[key] = ServerState(canonical_resource(url))
        return state

    def _http(self) -> httpx.AsyncClient:
        """The client for authorization-server traffic: no auth, no redirects, bounded."""
        return httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)

    def _dpop_for(self, d: Discovery | None) -> DPoPKey | None:
        """The DPoP key for requests to this authorization server (None: Bearer tokens)."""
        if self.dpop is False:
            return None
        if self.dpop == "auto" and (d is None or not d.server.supports("dpop_signing_alg_values_supported", "ES256")):
            return None
        if self._dpop_key is None:
            self._dpop_key = DPoPKey("ES256")
        return self._dpop_key

    async def _load(self, state: ServerState) -> None:
        """The first time: the tokens a previous run stored for this server, if any."""
        if state.loaded:
            return
        state.loaded = True
        where = await self.store.get(f"issuer {state.server_url}")
        if where is None or not isinstance(where.get("issuer"), str) or not isinstance(where.get("resource"), str):
            return
        data = await self.store.get(f"tokens {where['issuer']} {where['resource']}")
        tokens = Tokens.from_dict(data) if data is not None else None
        if tokens is not None and not tokens.is_dpop:  # a DPoP token is bound to a key this process lacks
            state.tokens, state.issuer = tokens, where["issuer"]

    async def _save(self, state: ServerState) -> None:
        d, tokens = state.discovery, state.tokens
        if d is None:
            return
        key = f"tokens {d.server.issuer} {d.resource}"
        state.issuer = d.server.issuer if tokens is not None else None
        await self.store.set(key, tokens.to_dict() if tokens is not None else None)
        await self.store.set(f"issuer {state.server_url}", {"issuer": d.server.issuer, "resource": d.resource})

    # -- getting a new token ----------------------------------------------------------------------

    async def _renew(self, state: ServerState, sent: Tokens | None, challenge: Challenge | None) -> None:
        """A 401: rediscover, then a stored or refreshed token if one serves, else a new grant."""
        async with state.lock:
            if state.tokens is not None and state.tokens is not sent:
                return  # another request renewed it meanwhile
            async with self._http() as http:
                previous = state.discovery
                d = await discover(http, state.server_url, challenge, issuer=self.issuer)
                state.discovery = d
                moved = (previous is not None and previous.server.issuer != d.server.issuer) or (
                    state.issuer is not None and state.issuer != d.server.issuer
                )
                if moved:
                    state.identity = None  # credentials stay with the AS that issued them
                if sent is None and state.tokens is None and await self._use_stored(state, d):
                    return
                old = state.tokens
                if not moved and old is not None and old.refresh_token:
                    try:
                        await self._refresh(state, http)
                        if state.tokens is not old and state.tokens is not sent:
                            return
                    except OAuthTokenError:
                        pass  # the refresh token is no good any more: a new grant
                async with self._one_login(d):
                    if await self._stored_since(state, d, (sent, old)):
                        return  # another process got one while this one waited
                    state.tokens = None
                    state.tokens = await self._obtain(http, state, self._select_scope(d))
                    await self._save(state)

    def _one_login(self, d: Discovery) -> contextlib.AbstractAsyncContextManager[object]:
        """Interactive flows with a store shared by processes (``FileTokenStore``): one login at a time
        per server, so hosts that start several copies (``anyport connect``) ask the person once."""
        exclusive = getattr(self.store, "exclusive", None)
        if not getattr(self, "interactive", False) or exclusive is None:
            return contextlib.nullcontext()
        return exclusive(f"login {d.server.issuer} {d.resource}")  # type: ignore[no-any-return]

    async def _stored_since(self, state: ServerState, d: Discovery, known: tuple[Tokens | None, ...]) -> bool:
        """A usable token in the store that is none of ``known``: another process's login."""
        data = await self.store.get(f"tokens {d.server.issuer} {d.resource}")
        tokens = Tokens.from_dict(data) if data is not None else None
        if tokens is None or tokens.is_dpop or tokens.expired:
            return False
        if any(k is not None and k.access_token == tokens.access_token for k in known):
            return False
        state.tokens, state.issuer = tokens, d.server.issuer
        return True

    async def _use_stored(self, state: ServerState, d: Discovery) -> bool:
        data = await self.store.get(f"tokens {d.server.issuer} {d.resource}")
        tokens = Tokens.from_dict(data) if data is not None else None
        if tokens is None or tokens.is_dpop:
            return False
        state.tokens, state.issuer = tokens, d.server.issuer
        if not tokens.expired:
            return True
        if tokens.refresh_token:
            with contextlib.suppress(OAuthTokenError):
                await self._refresh(state)
                return True
        state.tokens = None
        return False

    async def _step_up(self, state: ServerState, sent: Tokens | None, wanted: tuple[str, ...]) -> None:
        """A 403 ``insufficient_scope``: a new grant for the union of the scopes (A-28)."""
        async with state.lock:
            if state.tokens is not None and state.tokens is not sent:
                return
            async with self._http() as http:
                if state.discovery is None:
                    state.discovery = await discover(http, state.server_url, None, issuer=self.issuer)
                d = state.discovery
                before = tuple((sent.requested_scope or sent.scope or "").split()) if sent is not None else ()
                scope = self._select_scope(d, (*before, *wanted)) if before or wanted else self._select_scope(d)
                state.tokens = await self._obtain(http, state, scope)
                await self._save(state)

    async def _refresh(self, state: ServerState, http: httpx.AsyncClient | None = None) -> None:
        """``refresh_token`` grant (``resource`` too, A-23); a rotated refresh token replaces the old."""
        tokens, d = state.tokens, state.discovery
        if tokens is None or tokens.refresh_token is None or d is None:
            raise OAuthTokenError("no refresh token")
        form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "resource": d.resource}
        async with contextlib.AsyncExitStack() as stack:
            client = http if http is not None else await stack.enter_async_context(self._http())
            try:
                fresh = await request_tokens(client, d.server, form, await self._refresh_identity(client, state),
                                             dpop=self._dpop_for(d), assertion_key=self._assertion_key())
            except OAuthTokenError:
                state.tokens = None
                await self._save(state)
                raise
        fresh.refresh_token = fresh.refresh_token or tokens.refresh_token  # kept unless rotated
        fresh.requested_scope = fresh.requested_scope or tokens.requested_scope
        state.tokens = fresh
        await self._save(state)

    async def _refresh_identity(self, http: httpx.AsyncClient, state: ServerState) -> ClientIdentity | None:
        return state.identity

    def _assertion_key(self) -> tuple[Any, str] | None:
        return None

