"""The probe's command and package load nothing heavy at import (like the rest of the CLI)."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_probe_loads_no_http_stack_client_or_server() -> None:
    code = (
        "import sys, anyport.cli._probe, anyport.probe, anyport.probe.exporter;"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'uvicorn', 'mcp')"
        " or m.startswith(('anyport.client', 'anyport.server', 'anyport.transports')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
