"""The docs site (mkdocs.yml + docs/): it builds with ``mkdocs build --strict``, and the code samples
of the pages written for it run.

Samples of the pages in ``NEW_PAGES``:

- every ```python block runs as a program of its own (offline, loopback only, free ports);
  ``<!-- file: NAME -->`` on the line before a block also saves it as NAME in the shared working
  directory, for the blocks that import it or serve it (``notes.py`` of the quickstart);
- every ```bash block whose first word is ``anyport`` runs under bash with the venv's ``bin``
  first on PATH, unless the line before it says ``<!-- not run: WHY -->`` (servers that run until
  stopped); other ```bash blocks (``pip install``) are not run.

The pages that existed before the site are listed in ``EXISTING_PAGES`` with their python and bash
blocks and why they are not executed yet, and a test keeps those counts equal to the pages; the few of
their python blocks that do run (with a line defining the ``server`` they use) are in ``EXISTING_RUN``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent

NEW_PAGES = ["index.md", "quickstart.md", "transports.md", "testing.md", "reference.md"]

# page: (python blocks, bash blocks, why the blocks not in EXISTING_RUN are not executed yet)
EXISTING_PAGES: dict[str, tuple[int, int, str]] = {
    "architecture.md": (0, 0, "no python or bash blocks"),
    "scaling.md": (0, 0, "no python or bash blocks (its commands are in untagged blocks and need Redis)"),
    "authentication.md": (2, 0, "python 2: an AuthChain reading /etc/anyport/keys.txt and a JWKS URL, then serving until stopped"),
    "oauth-client.md": (6, 0, "fragments (top-level await, undefined callbacks and names) that need a real authorization "
                              "server and a browser"),
    "operations.md": (1, 3, "the bash blocks probe https://mcp.example.com, run a probe exporter on a fixed port and a "
                            "server serving until stopped"),
    "bridge.md": (0, 0, "no python or bash blocks"),
    "deploy.md": (0, 4, "docker, docker compose, kubectl, and `anyport install` writing into a host's real configuration"),
    "config.md": (0, 0, "no python or bash blocks"),
    "limits.md": (1, 1, "the bash block serves until stopped"),
}

# Python blocks of the existing pages that do run, as (page, nth python block of the page): the code put before
# the block. Those blocks are fragments that use a `server` defined elsewhere on their page.
PRELUDE = 'from anyport import Server\nserver = Server("demo")\n'
EXISTING_RUN: dict[tuple[str, int], str] = {
    ("authentication.md", 1): "",
    ("operations.md", 1): PRELUDE,
    ("limits.md", 1): PRELUDE,  # ends with server.run("stdio"), which returns at once: stdin is /dev/null
}

FENCE = re.compile(
    r"^(?:<!--\s*(?P<note>.*?)\s*-->\n)?(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    body: str
    note: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def file(self) -> str | None:
        return self.note[len("file:"):].strip() if self.note.startswith("file:") else None

    @property
    def not_run(self) -> str | None:
        return self.note[len("not run:"):].strip() if self.note.startswith("not run:") else None


def blocks(page: str) -> list[Block]:
    text = (DOCS / page).read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start("indent")) + 1
        found.append(Block(page, line, match["lang"], match["body"], match["note"] or ""))
    return found


def runnable_python() -> list[Block]:
    new = [b for page in NEW_PAGES for b in blocks(page) if b.lang == "python"]
    existing = []
    for page, nth in EXISTING_RUN:
        block = [b for b in blocks(page) if b.lang == "python"][nth - 1]
        existing.append(Block(block.page, block.line, block.lang, EXISTING_RUN[page, nth] + block.body, block.note))
    return new + existing


def runnable_bash() -> list[Block]:
    return [
        b for page in NEW_PAGES for b in blocks(page)
        if b.lang == "bash" and b.body.split()[:1] == ["anyport"] and b.not_run is None
    ]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every sample, holding the files the pages name (notes.py, ...)."""
    directory = tmp_path_factory.mktemp("docs-samples")
    for page in NEW_PAGES:
        for block in blocks(page):
            if block.file:
                (directory / block.file).write_text(block.body, encoding="utf-8")
    return directory


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    for name in [n for n in env if n.startswith("ANYPORT_")]:
        del env[name]
    return env


def _check(run: subprocess.CompletedProcess[str], block: Block) -> None:
    assert run.returncode == 0, f"{block.id} exited {run.returncode}\n--- stdout\n{run.stdout}\n--- stderr\n{run.stderr}"


@pytest.mark.parametrize("block", runnable_python(), ids=lambda b: b.id)
def test_python_sample_runs(block: Block, workdir: Path) -> None:
    script = workdir / f"sample_{block.page.removesuffix('.md')}_{block.line}.py"
    script.write_text(block.body, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, script.name], cwd=workdir, env=_env(), capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    _check(run, block)


@pytest.mark.parametrize("block", runnable_bash(), ids=lambda b: b.id)
def test_anyport_command_runs(block: Block, workdir: Path) -> None:
    run = subprocess.run(
        ["bash", "-e", "-c", block.body], cwd=workdir, env=_env(), capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    _check(run, block)


def test_every_new_block_runs_or_says_why() -> None:
    for page in NEW_PAGES:
        for block in blocks(page):
            if block.lang == "bash" and block.body.split()[:1] == ["anyport"]:
                assert block.not_run is None or block.not_run, f"{block.id}: 'not run:' without a reason"
            elif block.lang == "python":
                assert block.not_run is None, f"{block.id}: every python block of a new page runs"
            elif block.not_run is not None:
                pytest.fail(f"{block.id}: 'not run' on a block that would not run anyway")
    assert runnable_python() and runnable_bash()


def test_existing_pages_are_listed_as_they_are() -> None:
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted([*NEW_PAGES, *EXISTING_PAGES]) == pages, "a page is neither new nor listed in EXISTING_PAGES"
    for page, (python, bash, why) in EXISTING_PAGES.items():
        found = blocks(page)
        counts = (sum(b.lang == "python" for b in found), sum(b.lang == "bash" for b in found))
        assert counts == (python, bash), f"{page}: {counts} python/bash blocks, EXISTING_PAGES says {(python, bash)}"
        assert why


def test_site_builds_strictly(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    pytest.importorskip("material", reason="mkdocs-material is not installed (the docs extra)")
    pytest.importorskip("mkdocstrings_handlers.python", reason="mkdocstrings[python] is not installed (the docs extra)")
    env = _env() | {"NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    # not --quiet: it hides the warnings from the count that --strict aborts on (mkdocs 1.6)
    assert run.returncode == 0, f"mkdocs build --strict failed\n{run.stdout}\n{run.stderr}"
    assert "WARNING" not in run.stderr, run.stderr
    reference = (tmp_path / "site" / "reference" / "index.html").read_text(encoding="utf-8")
    for name in ("anyport.Server", "anyport.Context", "anyport.Client", "create_app", "anyport.observe", "anyport.auth",
                 "anyport.oauth"):
        assert name in reference, f"the API reference lacks {name}"
