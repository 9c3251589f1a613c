"""``import anyport`` stays light: the OAuth client (httpx, joserfc) loads only when named."""

from __future__ import annotations

import subprocess
import sys


def _loaded(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()
    return set(out)


def test_import_anyport_loads_no_oauth() -> None:
    loaded = _loaded("import anyport\nanyport.Client")
    assert not {m for m in loaded if m.startswith(("anyport.oauth", "joserfc"))}


def test_anyport_oauth_is_reachable_by_attribute() -> None:
    loaded = _loaded("import anyport\nassert anyport.oauth.OAuth is not None")
    assert "anyport.oauth" in loaded and "joserfc" not in loaded  # joserfc: only when a key is made
