"""The ``httpx.Auth`` flow every OAuth client of ``anyport.oauth`` shares.

For each request to the MCP server's origin (POST, the SSE GET streams, DELETE, and the
HTTP+SSE transport's POSTs alike, since they all go through one httpx client):

- attach the access token (``Authorization: Bearer``, or ``DPoP`` with a fresh proof, A-30),
  refreshing it first when it has expired;
- on 401: the server's ``DPoP-Nonce`` challenge is answered once (RFC 9449 §9); otherwise
  discovery runs again (the server may have moved to another authorization server, A-10/A-19),
  then a stored or refreshed token is tried, else a new grant (``_obtain``): at most one new grant
  per request, a second 401 is an ``AuthError``;
- on 403 ``insufficient_scope``: step-up (A-28) with the union of the scopes asked for before and
  the challenged ones, at most ``max_step_ups`` times per request, then ``InsufficientScopeError``.

Each origin has its own state (discovery, tokens, client identity): a token obtained for one
server is never sent to another origin (A-32, A-33). One ``asyncio.Lock`` per server makes
concurrent 401s share one grant.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from anyport._exceptions import AuthError, InsufficientScopeError, OAuthTokenError
from anyport.oauth._discovery import Discovery, discover
from anyport.oauth._dpop import DPoPKey
from anyport.oauth._store import FileTokenStore, TokenStore
from anyport.oauth._tokens import ClientIdentity, Tokens, request_tokens
from anyport.oauth._urls import Challenge, canonical_resource, origin_of, parse_challenges

__all__ = ["OAuthFlow", "ServerState"]

_MAX_ROUNDS = 8  # responses handled per request, whatever happens (every loop is bounded)


@dataclass
class ServerState:
    """What one ``OAuthFlow`` knows about one MCP server (one origin)."""

    server_url: str
    discovery: Discovery | None = None
    tokens: Tokens | None = None
    identity: ClientIdentity | None = None
    loaded: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class OAuthFlow(httpx.Auth):
    """Base of the OAuth clients: discovery, token use and renewal, step-up, DPoP, the store.

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

    requires_request_body = True
    requires_response_body = False

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

    # -- httpx.Auth -------------------------------------------------------------------------------

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        state = self._state_for(str(request.url))
        await self._load(state)
        sent = await self._attach(request, state)
        response = yield request
        step_ups = 0
        renewed = nonce_retried = False
        for _ in range(_MAX_ROUNDS):
            self._note_nonce(response)
            status = response.status_code
            challenge = self._challenge(response)
            if status == 401:
                params = challenge.params if challenge is not None else {}
                error = params.get("error")
                if error == "use_dpop_nonce" and sent is not None and sent.is_dpop and not nonce_retried:
                    nonce_retried = True  # RFC 9449 §9: once, with the nonce just noted
                elif renewed:
                    raise AuthError(
                        f"{request.url} still answers 401 after a new authorization"
                        + (f" ({params.get('error_description') or error})" if error else "")
                    )
                else:
                    await self._renew(state, sent, challenge)
                    renewed = True
            elif status == 403 and challenge is not None and challenge.params.get("error") == "insufficient_scope":
                wanted = challenge.scopes or ()
                if step_ups >= self.max_step_ups:
                    raise InsufficientScopeError(
                        f"{request.url} refuses the request for lack of scope {' '.join(wanted)!r} after "
                        f"{step_ups} re-authorization(s); ask the server's operator for these scopes (A-28)",
                        scopes=tuple(wanted),
                    )
                step_ups += 1
                await self._step_up(state, sent, wanted)
            else:
                return
            sent = await self._attach(request, state)
            response = yield request

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
            state.tokens = tokens

    async def _save(self, state: ServerState) -> None:
        d, tokens = state.discovery, state.tokens
        if d is None:
            return
        key = f"tokens {d.server.issuer} {d.resource}"
        await self.store.set(key, tokens.to_dict() if tokens is not None else None)
        await self.store.set(f"issuer {state.server_url}", {"issuer": d.server.issuer, "resource": d.resource})

    # -- using the token --------------------------------------------------------------------------

    async def _attach(self, request: httpx.Request, state: ServerState) -> Tokens | None:
        tokens = state.tokens
        if tokens is not None and tokens.expired and tokens.refresh_token and state.discovery is not None:
            async with state.lock:
                if state.tokens is tokens:
                    with contextlib.suppress(OAuthTokenError):
                        await self._refresh(state)
            tokens = state.tokens
        request.headers.pop("authorization", None)
        request.headers.pop("dpop", None)
        if tokens is None:
            return None
        key = self._dpop_key if tokens.is_dpop else None
        if key is not None:
            request.headers["authorization"] = f"DPoP {tokens.access_token}"
            request.headers["dpop"] = key.proof(request.method, str(request.url), tokens.access_token)
        else:
            request.headers["authorization"] = f"Bearer {tokens.access_token}"
        return tokens

    def _note_nonce(self, response: httpx.Response) -> None:
        if self._dpop_key is not None:
            self._dpop_key.remember_nonce(str(response.request.url), response.headers.get("dpop-nonce"))

    @staticmethod
    def _challenge(response: httpx.Response) -> Challenge | None:
        challenges = [c for h in response.headers.get_list("www-authenticate") for c in parse_challenges(h)]
        ours = [c for c in challenges if c.scheme.lower() in ("bearer", "dpop")]
        with_error = [c for c in ours if "error" in c.params]
        found = with_error or ours
        return found[0] if found else None

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
                moved = previous is not None and previous.server.issuer != d.server.issuer
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
                state.tokens = None
                state.tokens = await self._obtain(http, state, self._select_scope(d))
                await self._save(state)

    async def _use_stored(self, state: ServerState, d: Discovery) -> bool:
        data = await self.store.get(f"tokens {d.server.issuer} {d.resource}")
        tokens = Tokens.from_dict(data) if data is not None else None
        if tokens is None or tokens.is_dpop:
            return False
        state.tokens = tokens
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

    # -- for people and the CLI -------------------------------------------------------------------

    async def login(self, server_url: str) -> Tokens:
        """Authorize now for ``server_url`` (no MCP request): discovery from a probe's 401 or the
        well-known URLs, then a stored, refreshed or new token, kept in the store."""
        state = self._state_for(server_url)
        await self._load(state)
        if state.tokens is not None and not state.tokens.expired:
            return state.tokens
        challenge = None
        async with self._http() as http:
            with contextlib.suppress(httpx.HTTPError):
                probe = await http.get(server_url, headers={"accept": "text/event-stream"})
                challenge = self._challenge(probe) if probe.status_code == 401 else None
        await self._renew(state, state.tokens, challenge)
        assert state.tokens is not None
        return state.tokens
