"""The docs site (mkdocs.yml + docs/): it builds with ``mkdocs build --strict``, and the code samples
of every page of its nav run.

- every ```python block runs as a program of its own (offline, loopback only, free ports, stopping by
  itself); ``<!-- file: NAME -->`` on the line before a block also saves it as NAME in the shared
  working directory, for the blocks that import it or serve it (``notes.py`` of the quickstart);
- every ```bash block whose first word is ``anyport`` (or ``python`` / ``.venv/bin/python``: the
  project's scripts) runs under bash with the venv's ``bin`` first on PATH, unless the line before
  it says ``<!-- not run: WHY -->``: servers that run until stopped, commands that write into a
  host's real configuration, benchmark runs of several minutes. Other ```bash blocks
  (``pip install``, ``make``, ``docker``, ``kubectl``) are not run;
- no ``anyport`` or ``python`` command hides in a fence without a language.
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


# The pages of mkdocs.yml's nav, in order: its "- Title: page.md" lines (read without a YAML parser, so
# that the test runs without the docs extra installed).
_NAV = re.compile(r"^\s*-\s*(?:[^:\n]+:\s*)?(?P<page>[\w./-]+\.md)\s*$", re.M)
_CONFIG = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
PAGES = [m["page"] for m in _NAV.finditer(_CONFIG[_CONFIG.index("\nnav:"):])]

# The first words of the bash blocks that run (unless marked "not run"): anyport and the project's scripts.
COMMANDS = {"anyport", "python", ".venv/bin/python"}

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
    def command(self) -> bool:
        """A bash block that runs anyport or a script of the project."""
        words = self.body.split()
        return bool(words) and words[0] in COMMANDS

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
    return [b for page in PAGES for b in blocks(page) if b.lang == "python"]


def runnable_bash() -> list[Block]:
    return [
        b for page in PAGES for b in blocks(page)
        if b.lang == "bash" and b.command and b.not_run is None
    ]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every sample, holding the files the pages name (notes.py, ...)."""
    directory = tmp_path_factory.mktemp("docs-samples")
    for page in PAGES:
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
def test_bash_command_runs(block: Block, workdir: Path) -> None:
    run = subprocess.run(
        ["bash", "-e", "-c", block.body], cwd=workdir, env=_env(), capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )
    _check(run, block)


def test_every_block_runs_or_says_why() -> None:
    for page in PAGES:
        for block in blocks(page):
            assert block.lang or not block.command, f"{block.id}: a command in a fence without a language (```bash)"
            if block.lang == "bash" and block.command:
                assert block.not_run is None or block.not_run, f"{block.id}: 'not run:' without a reason"
            elif block.lang == "python":
                assert block.not_run is None, f"{block.id}: every python block runs"
            elif block.not_run is not None:
                pytest.fail(f"{block.id}: 'not run' on a block that would not run anyway")
    assert runnable_python() and runnable_bash()


def test_every_page_is_in_the_nav() -> None:
    assert sorted(PAGES) == sorted(p.name for p in DOCS.glob("*.md")), "a page of docs/ is not in mkdocs.yml's nav"


def test_shared_files_are_named_once() -> None:
    names = [b.file for page in PAGES for b in blocks(page) if b.file]
    assert len(names) == len(set(names)), f"two blocks save the same file: {sorted(names)}"


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
