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

import contextlib
from collections.abc import AsyncGenerator

import httpx

from anyport._exceptions import AuthError, InsufficientScopeError, OAuthTokenError
from anyport.oauth._discovery import protected_resource
from anyport.oauth._grants import ServerState, TokenKeeper
from anyport.oauth._tokens import Tokens
from anyport.oauth._urls import Challenge, parse_challenges

__all__ = ["OAuthFlow", "ServerState"]

_MAX_ROUNDS = 8  # responses handled per request, whatever happens (every loop is bounded)


class OAuthFlow(TokenKeeper, httpx.Auth):
    """Base of the OAuth clients (an ``httpx.Auth``); subclasses implement ``_obtain`` (one grant).

    Args (all keyword): ``scopes``, ``store``, ``dpop``, ``max_step_ups``, ``issuer``, ``timeout``:
    see ``TokenKeeper``.
    """

    requires_request_body = True
    requires_response_body = False

    # -- httpx.Auth -------------------------------------------------------------------------------

    #: True when a grant needs a person (a browser): ``Client`` then authorizes before its handshake.
    interactive = False

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                response = yield outgoing
                outgoing = await flow.asend(response)
        except StopAsyncIteration:
            return
        except (OSError, ValueError, TypeError, KeyError) as exc:  # a store, a key, a malformed answer
            raise AuthError(f"authorization for {request.url} failed: {exc!r}") from exc
        finally:
            await flow.aclose()

    async def _flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
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
                    why = challenge.params.get("error_description")
                    raise InsufficientScopeError(
                        f"{request.url} refuses the request for lack of scope {' '.join(wanted)!r}"
                        + (f" ({why})" if why else "")
                        + f" after {step_ups} re-authorization(s); ask for these scopes or a role that has them (A-28)",
                        scopes=tuple(wanted),
                    )
                step_ups += 1
                await self._step_up(state, sent, wanted)
            else:
                return
            sent = await self._attach(request, state)
            response = yield request

    # -- using the token --------------------------------------------------------------------------

    async def _attach(self, request: httpx.Request, state: ServerState) -> Tokens | None:
        tokens = state.tokens
        if tokens is not None and tokens.expired and tokens.refresh_token and state.discovery is not None:
            async with state.lock:
                if state.tokens is tokens:
                    with contextlib.suppress(OAuthTokenError):
                        await self._refresh(state)
            tokens = state.tokens
        if tokens is None:
            return None  # nothing of ours yet: the request goes as the caller made it
        request.headers.pop("dpop", None)
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

    # -- for people and the CLI -------------------------------------------------------------------

    async def prepare(self, server_url: str) -> None:
        """Called by ``Client`` before its handshake. An interactive flow without a usable token asks
        the server (one side-effect-free ``ping`` POST) whether it wants authorization, and if so
        authorizes now, so the person's time in the browser counts against no request timeout."""
        if not self.interactive:
            return
        state = self._state_for(server_url)
        await self._load(state)
        if state.tokens is not None and not state.tokens.expired:
            return
        needed, challenge = await self._probe(server_url)
        if needed:
            await self._renew(state, state.tokens, challenge)

    async def login(self, server_url: str) -> Tokens:
        """Authorize now for ``server_url`` (no MCP session): discovery from a probe's 401 or the
        well-known URLs, then a stored, refreshed or new token, kept in the store."""
        state = self._state_for(server_url)
        await self._load(state)
        if state.tokens is not None and not state.tokens.expired:
            return state.tokens
        needed, challenge = await self._probe(server_url)
        if not needed:
            async with self._http() as http:
                protected = await protected_resource(http, server_url, None)
            if protected[0] is None:
                raise AuthError(
                    f"{server_url} asks for no authorization (no 401, no protected resource metadata): nothing to log in to"
                )
        await self._renew(state, state.tokens, challenge)
        assert state.tokens is not None
        return state.tokens

    async def _probe(self, server_url: str) -> tuple[bool, Challenge | None]:
        """POST a ``ping`` without credentials: (401?, its challenge). Only the status and headers are read."""
        body = b'{"jsonrpc":"2.0","id":"anyport-auth-probe","method":"ping"}'
        headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
        async with self._http() as http:
            try:
                async with http.stream("POST", server_url, content=body, headers=headers) as probe:
                    return probe.status_code == 401, self._challenge(probe) if probe.status_code == 401 else None
            except httpx.HTTPError:
                return False, None
