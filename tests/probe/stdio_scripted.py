"""A stdio "server" that misbehaves: python stdio_scripted.py garbage|hang|exit|old_version.

garbage: answers every line with a line that is not JSON. hang: reads and never answers.
exit: exits at once with status 3. old_version: answers initialize with protocol version
1999-01-01 (and server/discover with -32601). Every mode ends on stdin EOF or after 30 s.
"""

from __future__ import annotations

import json
import select
import sys
import time


def main() -> int:
    mode = sys.argv[1]
    if mode == "exit":
        print("failing on purpose", file=sys.stderr)
        return 3
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sys.stdin], [], [], 0.2)
        if not ready:
            continue
        line = sys.stdin.readline()
        if not line:
            return 0
        if mode == "hang":
            continue
        if mode == "garbage":
            sys.stdout.write("this is not JSON-RPC\n")
        else:
            msg = json.loads(line)
            if "id" not in msg:
                continue
            if msg["method"] == "initialize":
                reply = {"result": {"protocolVersion": "1999-01-01", "capabilities": {}, "serverInfo": {"name": "old", "version": "0"}}}
            else:
                reply = {"error": {"code": -32601, "message": "Method not found"}}
            sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": msg["id"], **reply}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
