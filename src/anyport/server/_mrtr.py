"""``_Mrtr``: multi round-trip requests (MRTR, M-14..M-18) for the handler mixins of ``Server``.

The answers a retried request carries (``inputResponses`` and the sealed ``requestState``), the
``input_required`` result that asks for more, and calling a resource or prompt handler with a
``Context`` that sees those answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from anyport._exceptions import InvalidParamsError
from anyport.protocol import IncomingRequest, KeyRing
from anyport.protocol._codec import dumps_canonical
from anyport.server._context import Context, InputRequired, Outlet
from anyport.server._schema import ArgumentsSpec


class _Mrtr:
    """The base of the request-handling mixins of ``Server``: MRTR state and ``_invoke``."""

    key_ring: KeyRing
    input_ttl: float

    def _binding(self, req: IncomingRequest, target: str) -> bytes:
        args = req.params.get("arguments")
        try:
            digest = hashlib.sha256(dumps_canonical(args)).hexdigest() if args else ""
        except TypeError as exc:  # orjson writes at most 254 levels (it reads 1,024)
            raise InvalidParamsError(f"{target}: arguments nested too deeply to answer with input_required") from exc
        return f"{req.method}\0{target}\0{digest}".encode()

    def _answers(self, req: IncomingRequest, target: str) -> dict[str, Any]:
        if not req.revision.modern:
            return {}
        answers: dict[str, Any] = {}
        state = req.params.get("requestState")
        if state is not None:
            opened = self.key_ring.open(state, binding=self._binding(req, target))
            prior = opened.get("a")
            if isinstance(prior, dict):
                answers.update(prior)
        responses = req.params.get("inputResponses")
        if isinstance(responses, dict):
            answers.update(responses)
        return answers

    def _input_required(self, req: IncomingRequest, target: str, exc: InputRequired) -> dict[str, Any]:
        state = self.key_ring.seal({"a": exc.answers}, binding=self._binding(req, target), ttl=self.input_ttl)
        return {"resultType": "input_required", "inputRequests": exc.requests, "requestState": state}

    async def _invoke(
        self, fn: Callable[..., Any], is_async: bool, kwargs: dict[str, Any], spec: ArgumentsSpec,
        req: IncomingRequest, outlet: Outlet, answers: Mapping[str, Any], ctx: Context | None = None,
    ) -> Any:
        if spec.context_param is not None:
            kwargs[spec.context_param] = ctx if ctx is not None else Context(req, outlet, self, answers)
        if is_async:
            return await fn(**kwargs)
        return fn(**kwargs)
