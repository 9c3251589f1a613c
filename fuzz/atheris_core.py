"""Coverage-guided fuzzing of the sans-IO core with atheris (libFuzzer): ``ServerConnection.receive_data``.

The first input byte picks the connection's state (not initialized, after a handshake on each
legacy revision, stateless HTTP); the rest is one frame. Checked as in tests/fuzz: nothing raises,
every reply is valid JSON-RPC that ``codec.dumps`` serialises as built (< 64 KiB for an error),
answers carry the request's id when it was readable, and what is admitted has a valid log level.
The same bytes also go through ``LineFramer`` in two chunks, which must match one chunk.

    .venv/bin/python fuzz/atheris_core.py -max_total_time=600 CORPUS_DIR
    .venv/bin/python fuzz/atheris_core.py --seed-corpus CORPUS_DIR   # write seeds from tests/fuzz/_gen.py

``fuzz/run.py`` runs it when atheris is installed (``make fuzz`` tries to install it).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_seeds(directory: Path, n: int = 300) -> None:
    from tests.fuzz._gen import Gen

    directory.mkdir(parents=True, exist_ok=True)
    gen = Gen(12345, limit=8192, huge=2048)
    for i in range(n):
        (directory / f"seed-{i:04d}").write_bytes(bytes([i % 6]) + gen.frame(oversized_rate=0.01).data[:20000])


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--seed-corpus":
        write_seeds(Path(sys.argv[2]))
        return
    import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

    with atheris.instrument_imports():
        import orjson

        from anyport.protocol import LOG_LEVELS, IncomingRequest, Reply, ServerConnection, dumps
        from anyport.protocol._framing import LineFramer, Oversized
        from anyport.protocol._revisions import REVISIONS

    states = (None, "2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "assumed")
    info = {"name": "atheris", "version": "1"}

    def connection(state: str | None) -> ServerConnection:
        if state == "assumed":
            return ServerConnection(server_info=info, capabilities={"tools": {}}, assume_initialized=REVISIONS["2025-03-26"])
        conn = ServerConnection(server_info=info, capabilities={"tools": {}, "logging": {}})
        if state is not None:
            conn.receive_obj({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": state}})
        return conn

    def valid_id(v: object) -> bool:
        return isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool))

    def test_one_input(data: bytes) -> None:
        if not data:
            return
        conn = connection(states[data[0] % len(states)])
        frame = data[1:]
        received = conn.receive_data(frame)
        try:
            sent = orjson.loads(frame)
        except orjson.JSONDecodeError:
            sent = None
        for ev in received.events:
            if isinstance(ev, Reply):
                msg = ev.message
                assert msg.get("jsonrpc") == "2.0" and ("result" in msg) != ("error" in msg), msg
                out = dumps(msg)
                if "error" in msg:
                    assert isinstance(msg["error"].get("code"), int) and isinstance(msg["error"].get("message"), str)
                    assert orjson.loads(out)["error"]["code"] == msg["error"]["code"], "reply not serialisable as built"
                    assert msg["error"]["code"] != -32603, "internal error for client input"
                    assert len(out) < 64 * 1024, f"error reply of {len(out)} bytes"
            elif isinstance(ev, IncomingRequest):
                assert ev.log_level is None or ev.log_level in LOG_LEVELS
        if isinstance(sent, dict) and "method" in sent and valid_id(sent.get("id")) and not received.batch:
            rid = sent["id"]
            hits = [ev for ev in received.events
                    if (isinstance(ev, Reply) and ev.message.get("id") == rid) or (isinstance(ev, IncomingRequest) and ev.id == rid)]
            assert len(hits) == 1, f"request {rid!r} answered {len(hits)} times"
        # Framing: any split gives what one piece gives.
        cut = data[0] % (len(frame) + 1)
        one, two = LineFramer(64), LineFramer(64)
        whole = [(i.size if isinstance(i, Oversized) else i) for i in one.feed(frame)]
        split = [(i.size if isinstance(i, Oversized) else i) for part in (frame[:cut], frame[cut:]) for i in two.feed(part)]
        assert whole == split, (whole, split)

    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
