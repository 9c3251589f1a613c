"""Headless Chromium driven over the DevTools protocol (a WebSocket, ``websockets``' sync client),
the page's static server and its esbuild bundle, for the browser CORS test. Loopback only; every
wait is bounded; the browser and the servers are stopped by the context managers that start them."""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
INDEX = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>anyport browser CORS test</title></head>
<body><script type="module" src="page.js"></script></body></html>
"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def node() -> str:
    """Node for esbuild's launcher: the conformance kit's (Node 22) when installed."""
    pinned = HERE.parent / "conformance" / "node_modules" / ".bin" / "node"
    return str(pinned) if pinned.exists() else (shutil.which("node") or "node")


def bundle(out: Path) -> Path:
    """``page.mjs`` and the TypeScript SDK client bundled for the browser, with an index page, in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    # npm puts esbuild's native binary here (or a launcher run by the node on PATH).
    env = {**os.environ, "PATH": f"{Path(node()).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run(
        [str(NODE_MODULES / ".bin" / "esbuild"), str(HERE / "page.mjs"), "--bundle", "--format=esm", "--platform=browser",
         "--target=chrome120", f"--outfile={out / 'page.js'}", "--log-level=warning"],
        check=True, timeout=60, cwd=HERE, env=env,
    )
    (out / "index.html").write_bytes(INDEX)
    return out


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_site(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (a free port); yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Chromium:
    """One headless Chromium with its DevTools endpoint on loopback."""

    def __init__(self, executable: str, profile: Path) -> None:
        self.profile = profile
        args = [
            executable, "--headless=new", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root
        self.stderr = tempfile.TemporaryFile()  # a file, not a pipe: Chromium logs a lot and must never block
        # A process group of its own: closing stops its renderers and helpers too, before the profile goes.
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
                                        start_new_session=True)
        self.port = self._devtools_port(timeout=30)

    def _devtools_port(self, timeout: float) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stderr.seek(0)
                err = self.stderr.read().decode(errors="replace")
                raise RuntimeError(f"Chromium exited with {self.process.returncode}: {err[-2000:]}")
            if marker.exists():
                first = marker.read_text().split("\n", 1)[0].strip()
                if first.isdigit():
                    return int(first)
            time.sleep(0.05)
        raise RuntimeError("Chromium did not open its DevTools port")

    def _json(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body.startswith((b"{", b"[")) else body.decode(errors="replace")

    def run_page(self, url: str, *, timeout: float = 45.0) -> tuple[dict[str, Any], list[str]]:
        """Open ``url`` in a new tab; wait for its ``<pre id="result">``; returns (the JSON in it,
        the browser's console and network log messages, e.g. CORS refusals)."""
        target = self._json("/json/new?about:blank", method="PUT")
        ids = itertools.count(1)
        log: list[str] = []
        try:
            with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:

                def call(method: str, **params: Any) -> Any:
                    n = next(ids)
                    ws.send(json.dumps({"id": n, "method": method, "params": params}))
                    while True:
                        message = json.loads(ws.recv(timeout=10))
                        if message.get("id") == n:
                            if "error" in message:
                                raise RuntimeError(f"{method}: {message['error']}")
                            return message.get("result")
                        keep(message)

                def keep(message: dict[str, Any]) -> None:
                    if message.get("method") == "Log.entryAdded":
                        log.append(message["params"]["entry"].get("text", ""))
                    elif message.get("method") == "Runtime.consoleAPICalled":
                        log.append(" ".join(str(a.get("value", a.get("description", ""))) for a in message["params"]["args"]))

                call("Log.enable")
                call("Runtime.enable")
                call("Page.navigate", url=url)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    found = call("Runtime.evaluate", expression="document.getElementById('result')?.textContent ?? ''", returnByValue=True)
                    text = found["result"].get("value") or ""
                    if text:
                        return json.loads(text), log
                    time.sleep(0.1)
                raise TimeoutError(f"the page wrote no result within {timeout:g} s; browser log: {log[-10:]}")
        finally:
            self._json(f"/json/close/{target['id']}")

    def close(self) -> None:
        """Stop Chromium and every process it started (they write into the profile until they end)."""
        group = self.process.pid
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self.process.poll()
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    break  # the whole group is gone
                time.sleep(0.05)
            else:
                continue
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.stderr.close()


@contextmanager
def chromium(executable: str) -> Iterator[Chromium]:
    with tempfile.TemporaryDirectory(prefix="anyport-chromium-") as profile:
        browser = Chromium(executable, Path(profile))
        try:
            yield browser
        finally:
            browser.close()
