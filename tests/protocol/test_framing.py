"""``LineFramer``: newline-delimited framing for stdio and byte streams (T-STDIO-02, T-STDIO-17).

Pure unit tests: no event loop.
"""

from __future__ import annotations

from anyport.protocol._framing import LineFramer, Oversized


def lines(items: list[bytes | Oversized]) -> list[bytes]:
    return [i for i in items if isinstance(i, bytes)]


def test_one_message_per_line_T_STDIO_02() -> None:
    """T-STDIO-02: newline-delimited messages come out one per line, without the newline."""
    f = LineFramer(1024)
    assert f.feed(b'{"a":1}\n{"b":2}\n') == [b'{"a":1}', b'{"b":2}']
    assert f.pending() == b""


def test_crlf_is_accepted_T_STDIO_02() -> None:
    """T-STDIO-02: accept \\r\\n line ends defensively."""
    f = LineFramer(1024)
    assert f.feed(b'{"a":1}\r\n{"b":2}\r\n') == [b'{"a":1}', b'{"b":2}']


def test_crlf_split_across_chunks_T_STDIO_02() -> None:
    """T-STDIO-02: a \\r at the end of one chunk and \\n at the start of the next still ends one line."""
    f = LineFramer(1024)
    assert f.feed(b'{"a":1}\r') == []
    assert f.feed(b'\n{"b"') == [b'{"a":1}']
    assert f.feed(b":2}\n") == [b'{"b":2}']


def test_partial_lines_across_chunks_T_STDIO_02() -> None:
    """T-STDIO-02: a message split over many reads is reassembled exactly."""
    f = LineFramer(1024)
    msg = b'{"jsonrpc":"2.0","id":1,"method":"ping"}'
    out: list[bytes | Oversized] = []
    for i in range(len(msg)):
        out += f.feed(msg[i : i + 1])
    assert out == []
    assert f.feed(b"\n") == [msg]


def test_many_messages_in_one_chunk_with_tail_T_STDIO_02() -> None:
    """T-STDIO-02: complete lines come out at once; the unterminated tail waits for its newline."""
    f = LineFramer(1024)
    assert f.feed(b"1\n2\n3\n{\"x\":") == [b"1", b"2", b"3"]
    assert f.feed(b"4}\n") == [b'{"x":4}']


def test_blank_lines_are_skipped_T_STDIO_02() -> None:
    """T-STDIO-02: empty and whitespace-only lines carry no message."""
    f = LineFramer(1024)
    assert f.feed(b"\n\r\n   \n{}\n\n") == [b"{}"]


def test_pending_returns_unterminated_last_line_at_eof_T_STDIO_11() -> None:
    """T-STDIO-11: at EOF the final unterminated line is still delivered once."""
    f = LineFramer(1024)
    assert f.feed(b'{"a":1}\n{"b":2}') == [b'{"a":1}']
    assert f.pending() == b'{"b":2}'
    assert f.pending() == b""


def test_oversized_line_in_one_chunk_is_dropped_and_reported_once_T_STDIO_02() -> None:
    """T-STDIO-02: a line above the limit is reported once as Oversized; the next line is delivered."""
    f = LineFramer(10)
    out = f.feed(b"x" * 50 + b"\n{\"ok\":1}\n")
    assert out == [Oversized(50), b'{"ok":1}']


def test_oversized_line_streamed_over_chunks_reported_once_T_STDIO_02() -> None:
    """T-STDIO-02: an oversized line arriving in pieces is dropped as it streams past and reported once."""
    f = LineFramer(100)
    out: list[bytes | Oversized] = []
    for _ in range(20):
        out += f.feed(b"y" * 64)
    assert out == []  # nothing yet: no newline seen
    out += f.feed(b"yyyy\n{\"next\":true}\n")
    reports = [i for i in out if isinstance(i, Oversized)]
    assert len(reports) == 1
    assert reports[0].size == 20 * 64 + 4
    assert lines(out) == [b'{"next":true}']
    # the framer holds no more than the limit while discarding
    assert f.pending() == b""


def test_oversized_buffer_is_not_kept_in_memory_T_STDIO_02() -> None:
    """T-STDIO-02: while discarding, the buffered bytes are released (the big line is never held whole)."""
    f = LineFramer(16)
    f.feed(b"z" * 1000)
    assert len(f._buf) == 0
    f.feed(b"z" * 1000)
    assert len(f._buf) == 0
    assert f.feed(b"\n") == [Oversized(2000)]


def test_oversized_tail_at_eof_yields_nothing_T_STDIO_02() -> None:
    """T-STDIO-02: an unterminated oversized tail is not delivered at EOF."""
    f = LineFramer(8)
    f.feed(b"{\"a\":" + b"1" * 100)
    assert f.pending() == b""


def test_line_exactly_at_limit_is_kept_T_STDIO_02() -> None:
    """T-STDIO-02: the limit is inclusive: a line of exactly `limit` bytes passes, one more does not."""
    f = LineFramer(5)
    assert f.feed(b"12345\n123456\n") == [b"12345", Oversized(6)]


def test_partial_line_crossing_limit_with_newline_in_next_chunk_T_STDIO_02() -> None:
    """T-STDIO-02: buffered part + newline-terminated part exceeding the limit is one Oversized report."""
    f = LineFramer(10)
    assert f.feed(b"123456") == []
    assert f.feed(b"789012\nok\n") == [Oversized(12), b"ok"]


def test_framing_recovers_after_several_oversized_lines_T_STDIO_02() -> None:
    """T-STDIO-02: each oversized line is reported separately and framing stays in sync."""
    f = LineFramer(4)
    out = f.feed(b"aaaaaa\nb\ncccccccc")
    out += f.feed(b"cc\nd\n")
    assert out == [Oversized(6), b"b", Oversized(10), b"d"]
