"""Find the ``Server`` a user points at: ``path/to/file.py[:attr]`` or ``package.module[:attr]``."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from anyport.server import Server

__all__ = ["load_server"]


def load_server(spec: str) -> Server:
    target, _, attr = spec.partition(":")
    if attr and os.sep not in attr and "." not in attr and target.endswith(".py") is False and not Path(target).exists():
        module_name = target
    else:
        module_name = ""
    path = Path(target)
    if target.endswith(".py") or path.exists():
        if not path.is_file():
            raise SystemExit(f"anyport: no such file: {target}")
        sys.path.insert(0, str(path.resolve().parent))
        name = f"_anyport_app_{path.stem}"
        mod_spec = importlib.util.spec_from_file_location(name, path)
        if mod_spec is None or mod_spec.loader is None:
            raise SystemExit(f"anyport: cannot load {target}")
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        mod_spec.loader.exec_module(module)
    else:
        module_name = module_name or target
        sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise SystemExit(f"anyport: cannot import {module_name!r}: {exc}") from exc
    if attr:
        obj = getattr(module, attr, None)
        if not isinstance(obj, Server):
            raise SystemExit(f"anyport: {spec!r} is not an anyport Server")
        return obj
    app = getattr(module, "app", None)
    if isinstance(app, Server):
        return app
    servers = [v for v in vars(module).values() if isinstance(v, Server)]
    if len(servers) != 1:
        raise SystemExit(f"anyport: found {len(servers)} Server objects in {target}; name one as {target}:NAME")
    return servers[0]
