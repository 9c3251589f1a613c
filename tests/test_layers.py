"""The layering rules of DESIGN.md §3, checked in fresh interpreters."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import anyport


def _modules_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    return {m.split(".")[0] for m in out.split()} | set(out.split())


def test_import_anyport_loads_no_http_redis_or_cli() -> None:
    loaded = _modules_after("import anyport")
    assert not loaded & {
        "httpx", "starlette", "uvicorn", "redis", "click", "mcp", "anyport.cli", "anyport.transports.stdio", "anyport.bench",
        "anyport.auth", "joserfc",
    }


def test_a_server_without_auth_loads_no_auth() -> None:
    """Issue 13: ``anyport.auth`` (and joserfc) load only for a server that uses authentication,
    also when it is served over HTTP."""
    loaded = _modules_after("import anyport\nfrom anyport.transports.http import create_app\ncreate_app(anyport.Server('s'))")
    assert not {m for m in loaded if m.startswith("anyport.auth")} and "joserfc" not in loaded


def test_auth_imports_no_server_client_or_transport() -> None:
    """``anyport.auth`` is the server side of authentication: it reads requests and tokens, and
    knows nothing of tools, of the client or of the transports (they call it through plain data)."""
    allowed_third_party = {"joserfc", "cryptography", "httpx"}
    for module, names in _imports("auth").items():
        for name in names:
            top = name.split(".")[0]
            if top == "anyport":
                assert name.startswith(("anyport.auth", "anyport.protocol", "anyport._exceptions")), (module, name)
            else:
                assert top in sys.stdlib_module_names or top in allowed_third_party, (module, name)


def test_the_protocol_core_loads_no_server_client_or_pydantic() -> None:
    """``import anyport.protocol`` (issue 11): the sans-IO core alone, not the layers above it."""
    loaded = _modules_after("import anyport.protocol")
    assert not {m for m in loaded if m.startswith(("anyport.server", "anyport.client", "anyport.transports"))}
    assert "pydantic" not in loaded and "asyncio" not in {m for m in loaded if m.startswith("anyport")}


def test_start_up_loads_nothing_the_first_call_does_not_need() -> None:
    """Start-up to the first answered call <= 0.3 s (issue 4): a server that seals no MRTR state
    does not load cryptography (~10 ms), and nothing loads importlib.metadata (~25 ms)."""
    loaded = _modules_after("import anyport\nanyport.Server('s')")
    assert not loaded & {"cryptography", "importlib.metadata"}


def test_the_cli_loads_the_benchmark_only_for_anyport_bench() -> None:
    loaded = _modules_after("import anyport.cli._main")
    assert not {m for m in loaded if m.startswith(("anyport.bench", "anyport.auth"))}
    assert not loaded & {"matplotlib", "uvicorn", "httpx"}


def _imports(package: str) -> dict[str, set[str]]:
    """Every module of an anyport subpackage -> the absolute names it imports (static, via ast)."""
    root = Path(anyport.__file__).parent / package
    out: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        out[str(path.relative_to(root.parent))] = names
    return out


def test_protocol_core_imports_only_stdlib_orjson_and_cryptography() -> None:
    allowed_third_party = {"orjson", "cryptography"}
    for module, names in _imports("protocol").items():
        for name in names:
            top = name.split(".")[0]
            if top == "anyport":
                assert name.startswith(("anyport.protocol", "anyport._exceptions")), (module, name)
            else:
                assert top in sys.stdlib_module_names or top in allowed_third_party, (module, name)
            assert top != "asyncio", (module, name)


def test_bench_speaks_raw_json_rpc_and_needs_nothing_heavy() -> None:
    """anyport.bench measures every server the same way: no anyport client or server (nor any other
    layer), no HTTP library, no click; uvloop and matplotlib only as optional, guarded imports."""
    optional = {"uvloop"}  # matplotlib is imported by name (importlib) in _plot, so mypy needs no stub
    for module, names in _imports("bench").items():
        for name in names:
            top = name.split(".")[0]
            if top == "anyport":
                assert name.startswith("anyport.bench."), (module, name)
            else:
                assert top in sys.stdlib_module_names or top == "orjson" or top in optional, (module, name)


def test_client_and_server_do_not_import_each_other() -> None:
    for module, names in _imports("client").items():
        assert not any(n.startswith("anyport.server") for n in names), module
    for module, names in _imports("server").items():
        assert not any(n.startswith("anyport.client") for n in names), module


def _reaches(package: str, forbidden: tuple[str, ...]) -> list[tuple[str, str]]:
    """(module, import) pairs of ``package`` that name a module under one of ``forbidden``."""
    return [
        (module, name)
        for module, names in _imports(package).items()
        for name in names
        if name.startswith(forbidden)
    ]


def test_transports_know_nothing_of_tools() -> None:
    """Transports talk to the application only through ``anyport.runtime.Application``."""
    assert _reaches("transports", ("anyport.server", "anyport.client", "anyport.cli")) == []


def test_the_server_imports_no_transport() -> None:
    """``Server.run`` goes through the composition root ``anyport._launch`` (no import cycle)."""
    assert _reaches("server", ("anyport.transports", "anyport.cli")) == []


def test_the_runtime_imports_neither_the_application_nor_a_transport() -> None:
    assert _reaches("runtime", ("anyport.server", "anyport.client", "anyport.transports", "anyport.cli", "anyport.state")) == []
    for module, names in _imports("runtime").items():
        for name in names:
            assert name.split(".")[0] in sys.stdlib_module_names or name.startswith(("anyport.runtime", "anyport.protocol", "anyport._exceptions")), (module, name)


def test_public_names_are_exported_and_sorted_within_reason() -> None:
    for name in anyport.__all__:
        assert hasattr(anyport, name), name
    assert issubclass(anyport.ServerExitedError, anyport.BrokenConnectionError)
    assert issubclass(anyport.RequestTimeoutError, TimeoutError)
    assert all(issubclass(getattr(anyport, n), anyport.MCPError) for n in anyport.__all__ if n.endswith("Error"))


#: Modules and classes allowed over the limits of issue 11, each with the reason.
_LARGE: dict[str, str] = {}


def test_no_giant_modules_or_classes() -> None:
    """Issue 11: no module over 600 lines and no class over ~300 (320 with its docstring), so that
    each has one job a reader can name. Exceptions are listed in ``_LARGE`` with their reason."""
    root = Path(anyport.__file__).parent
    too_big: list[str] = []
    for path in sorted(root.rglob("*.py")):
        name = str(path.relative_to(root.parent))
        text = path.read_text()
        if text.count("\n") > 600 and name not in _LARGE:
            too_big.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > 320 and f"{name}:{node.name}" not in _LARGE:
                    too_big.append(f"{name}: class {node.name} {size} lines")
    assert too_big == []
