"""What bench/stdio.py and bench/http.py share that is about this repo, not about measuring.

The load generators, the CPU / memory readings and the table helpers live in the package
(``anyport.bench``, also used by ``anyport bench``); this module holds the repo's paths, the
command-line helpers, the version report, and the peers environment:

**The peers environment** (``bench/.peers-venv``, git-ignored): the official Python peers
(FastMCP and the official Python SDK) and matplotlib, installed from the pin list
``bench/peers-requirements.txt`` into a venv of their own, so nothing in the repo's ``.venv``
(and so in our test dependencies) changes. It is created on first use (``python -m venv``, then
``pip install --no-deps -r``; a few minutes, bounded) and reused while the pin list is unchanged.
When it cannot be created (offline, no venv module), the FastMCP rows say "unavailable" and the
official SDK falls back to the repo's ``.venv`` (which has ``mcp`` for the interop tests).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from anyport.bench._system import machine

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS_DIR = BENCH / "results"
TS_DIR = ROOT / "tests" / "interop" / "peers" / "ts"
PEERS_VENV = BENCH / ".peers-venv"
PEERS_REQUIREMENTS = BENCH / "peers-requirements.txt"
PLOT_SCRIPT = ROOT / "src" / "anyport" / "bench" / "_plot.py"
#: Bounds of creating the peers environment.
VENV_TIMEOUT = 120.0
PIP_TIMEOUT = 900.0


def log(message: str) -> None:
    """Progress on stderr; stdout carries only the tables."""
    print(message, file=sys.stderr, flush=True)


def default_python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def csv(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated subset of ``allowed``."""

    def parse(text: str) -> list[str]:
        items = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in items if x not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)} (got {text!r})")
        return items

    return parse


def add_peers_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--peers-python", metavar="PATH",
        help="interpreter with fastmcp and mcp for the official Python peers (default: bench/.peers-venv, created on first use)",
    )
    p.add_argument(
        "--no-peers-venv", action="store_true",
        help="do not use (or create) bench/.peers-venv: FastMCP unavailable, the official SDK from --python",
    )


def ts_unavailable() -> str | None:
    """Why the TypeScript SDK rows cannot run here, or None."""
    if shutil.which("node") is None:
        return "node not found on PATH"
    if not (TS_DIR / "node_modules" / "@modelcontextprotocol" / "server").is_dir():
        return f"TypeScript SDK not installed (run npm ci in {TS_DIR.relative_to(ROOT)})"
    return None


# -- the peers environment -----------------------------------------------------------------------


def _tail(text: str, limit: int = 500) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def ensure_peers_venv() -> tuple[str | None, str]:
    """The peers environment's interpreter, creating it when needed; (None, why) when it cannot be had."""
    python = PEERS_VENV / "bin" / "python"
    stamp = PEERS_VENV / ".installed"
    want = hashlib.sha256(PEERS_REQUIREMENTS.read_bytes()).hexdigest()

    def ready() -> bool:
        return python.exists() and stamp.exists() and stamp.read_text().strip() == want

    if ready():
        return str(python), "ready"
    BENCH.mkdir(exist_ok=True)
    with open(BENCH / ".peers-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another benchmark run may be creating it right now
        if ready():
            return str(python), "ready"
        log("creating bench/.peers-venv from bench/peers-requirements.txt (FastMCP, the official SDK, matplotlib) ...")
        shutil.rmtree(PEERS_VENV, ignore_errors=True)
        steps = (
            ([sys.executable, "-m", "venv", str(PEERS_VENV)], VENV_TIMEOUT),
            ([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input", "--timeout", "30",
              "--retries", "2", "--no-deps", "-r", str(PEERS_REQUIREMENTS)], PIP_TIMEOUT),
        )
        for cmd, limit in steps:
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False, cwd=ROOT)
            except (OSError, subprocess.TimeoutExpired) as exc:
                shutil.rmtree(PEERS_VENV, ignore_errors=True)
                return None, f"could not create bench/.peers-venv: {' '.join(cmd[:3])}: {type(exc).__name__}: {exc}"
            if done.returncode != 0:
                shutil.rmtree(PEERS_VENV, ignore_errors=True)
                return None, f"could not create bench/.peers-venv (offline?): {_tail(done.stderr or done.stdout)}"
        stamp.write_text(want + "\n")
        log("bench/.peers-venv ready")
        return str(python), "created"


class Peers:
    """Which interpreter runs the official Python peers, decided once per run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.python: str | None
        if args.peers_python:
            self.python, self.note = args.peers_python, f"--peers-python {args.peers_python}"
        elif args.no_peers_venv:
            self.python, self.note = None, "not used (--no-peers-venv)"
        else:
            self.python, self.note = ensure_peers_venv()
            if self.python is None:
                log(f"peers environment unavailable: {self.note}")
        #: The official SDK runs in the peers environment when there is one, else in --python.
        self.sdk_python: str = self.python or args.python
        self.fastmcp_missing: str | None = None if self.python else f"needs the peers environment: {self.note}"


# -- versions and plot ---------------------------------------------------------------------------


_VERSIONS_SCRIPT = """
import importlib.metadata as m, json, sys
out = {"python": sys.version.split()[0]}
for name in sys.argv[1:]:
    try:
        out[name] = m.version(name)
    except m.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def _run(cmd: Sequence[str], timeout: float = 30.0) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({type(exc).__name__})"
    return done.stdout.strip() or done.stderr.strip()[-200:]


def versions(python: str, names: Iterable[str]) -> dict[str, Any]:
    """Python's version and the installed versions of ``names`` in the environment of ``python``."""
    try:
        out: dict[str, Any] = orjson.loads(_run([python, "-c", _VERSIONS_SCRIPT, *names]))
    except orjson.JSONDecodeError:
        out = {}
    return out


def environment(python: str, peers: Peers | None, names: Iterable[str]) -> dict[str, Any]:
    """The machine, and the versions of everything measured (repo venv, peers venv, Node + SDK)."""
    names = list(names)
    info: dict[str, Any] = {**machine(), "server_python": python, "client_python": sys.version.split()[0]}
    info["versions"] = versions(python, names)
    if peers is not None and peers.python is not None:
        info["peers_python"] = peers.python
        info["peers_versions"] = versions(peers.python, ["fastmcp", "mcp", "pydantic", "starlette", "uvicorn", "uvloop", "httptools"])
    if ts_unavailable() is None:
        ts: dict[str, Any] = {"node": _run(["node", "--version"])}
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            pkg = TS_DIR / "node_modules/@modelcontextprotocol/server/package.json"
            ts["@modelcontextprotocol/server"] = orjson.loads(pkg.read_bytes()).get("version")
        info["versions"].update(ts)
    return info


def plot(data_path: Path, png_path: Path, peers: Peers | None) -> tuple[str | None, str]:
    """The PNG of an HTTP result file: here when matplotlib imports, else with the peers interpreter.

    Returns (path, "") or (None, why not).
    """
    if importlib.util.find_spec("matplotlib") is not None:
        from anyport.bench._plot import PlotUnavailable, plot_http

        data = orjson.loads(data_path.read_bytes())
        try:
            return plot_http(data["points"], str(png_path), str(data.get("title", ""))), ""
        except (PlotUnavailable, ValueError) as exc:
            return None, str(exc)
    if peers is None or peers.python is None:
        return None, "matplotlib is in neither this interpreter nor a peers environment: pip install matplotlib"
    try:
        done = subprocess.run(
            [peers.python, str(PLOT_SCRIPT), str(data_path), str(png_path)], capture_output=True, text=True, timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if done.returncode != 0:
        return None, _tail(done.stderr)
    return str(png_path), ""
