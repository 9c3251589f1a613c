"""Find the ``Server`` a user points at: ``path/to/file.py[:attr]`` or ``package.module[:attr]``.

Every failure is one line (a ``click.ClickException``); when the user's own code raised while it
was imported, its traceback comes first, starting at the user's first frame (none of anyport's
or importlib's frames).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType, TracebackType

import click

from anyport.server import Server

__all__ = ["load_server"]


def load_server(spec: str) -> Server:
    target, _, attr = spec.partition(":")
    path = Path(target)
    if target.endswith(".py") or path.exists():
        module = _from_file(target, path)
    else:
        module = _from_module(target)
    if attr:
        obj = getattr(module, attr, None)
        if not isinstance(obj, Server):
            why = f"{target} has no {attr!r}" if obj is None else f"it is a {type(obj).__name__}"
            raise click.ClickException(f"{spec!r} is not an anyport Server: {why}")
        return obj
    app = getattr(module, "app", None)
    if isinstance(app, Server):
        return app
    servers = [v for v in vars(module).values() if isinstance(v, Server)]
    if len(servers) != 1:
        if not servers:
            raise click.ClickException(f"no anyport Server in {target}: create one (app = Server('name')) or name it as {target}:NAME")
        raise click.ClickException(f"found {len(servers)} Server objects in {target}; name one as {target}:NAME")
    return servers[0]


def _from_file(target: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise click.ClickException(f"no such file: {target}" if not path.exists() else f"not a file: {target}")
    sys.path.insert(0, str(path.resolve().parent))
    name = f"_anyport_app_{path.stem}"
    mod_spec = importlib.util.spec_from_file_location(name, path)
    if mod_spec is None or mod_spec.loader is None:
        raise click.ClickException(f"cannot load {target}")
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules[name] = module
    try:
        mod_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        _user_traceback(exc)
        raise click.ClickException(f"{target} raised {_summary(exc)} while it was imported (traceback above)") from None
    return module


def _from_module(target: str) -> ModuleType:
    sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):
            raise click.ClickException(f"no such file or module: {target}") from None
        _user_traceback(exc)
        raise click.ClickException(f"{target} raised {_summary(exc)} while it was imported (traceback above)") from None
    except Exception as exc:
        _user_traceback(exc)
        raise click.ClickException(f"{target} raised {_summary(exc)} while it was imported (traceback above)") from None


def _summary(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _user_traceback(exc: BaseException) -> None:
    """The traceback of ``exc`` from the user's first frame on, on stderr."""
    tb: TracebackType | None = exc.__traceback__
    while tb is not None and _ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    sys.stderr.write("".join(traceback.format_exception(type(exc), exc, tb)))
    sys.stderr.flush()


def _ours(filename: str) -> bool:
    """A frame of anyport's loader or of importlib, not of the user's code."""
    return filename == __file__ or filename.startswith(("<frozen importlib", _IMPORTLIB))


_IMPORTLIB = os.path.dirname(importlib.__file__ or "importlib") + os.sep
