"""The ``anyport`` command. Needs the ``cli`` extra (click); without it, says how to install it."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    try:
        from anyport.cli._main import cli
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if "click" not in str(exc):
            raise
        sys.stderr.write("the anyport command needs click: pip install 'anyport[cli]'\n")
        raise SystemExit(2) from exc
    cli.main(args=argv, prog_name="anyport")
