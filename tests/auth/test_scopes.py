"""Scopes per tool, resource and prompt in the server itself (A-27): checked at call time for any
transport that sets a principal; nothing is checked without one (stdio stays unauthenticated by
design, T-STDIO-08, A-01)."""

from __future__ import annotations

import pytest

from anyport import InvalidRequestError
from anyport.auth import Principal
from anyport.runtime import PRINCIPAL
from anyport.testing import connect
from tests.auth._serving import make_server


def test_scopes_are_validated_at_registration() -> None:
    app = make_server()
    with pytest.raises(TypeError):
        app.tool(scopes="tools.read")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid scope"):
        app.tool(scopes=["has space"])
    assert app.required_scopes("tools/call", {"name": "write"}) == ("tools.write",)
    assert app.required_scopes("resources/read", {"uri": "secret://plans"}) == ("secrets.read",)
    assert app.required_scopes("prompts/get", {"name": "greet"}) == ("prompts.use",)
    assert app.required_scopes("tools/call", {"name": "whoami"}) == ()
    assert app.required_scopes("tools/list", {}) == ()


async def test_without_a_principal_nothing_is_checked() -> None:
    """The in-memory transport (like stdio) authenticates nobody: ctx.principal is None."""
    app = make_server()
    async with connect(app) as c:
        assert (await c.call_tool("write", {"text": "x"})).content[0]["text"] == "wrote x"


async def test_a_principal_without_the_scope_is_refused_by_the_server_itself() -> None:
    app = make_server(hide_unauthorized=True)
    token = PRINCIPAL.set(Principal("carol", "api_key", scopes=frozenset({"tools.read"})))
    try:
        async with connect(app) as c:
            with pytest.raises(InvalidRequestError) as info:
                await c.call_tool("write", {"text": "x"})
            assert info.value.data == {"requiredScopes": ["tools.write"]}
            assert [t.name for t in await c.list_tools()] == ["whoami"]
            with pytest.raises(InvalidRequestError):
                await c.read_resource("secret://plans")
    finally:
        PRINCIPAL.reset(token)
