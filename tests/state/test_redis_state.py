"""The Redis backends pass the same contract checks as the in-memory ones, against a real
redis-server and a real 3-master Redis Cluster started here (DESIGN.md §6, issue 12)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from anyport.state import RedisState, SessionRecord
from anyport.testing.state_contract import check_bus, check_event_log, check_session_store
from tests.redis_servers import RedisServer, free_port, redis_keys


@pytest.fixture
async def state(server: RedisServer, request: pytest.FixtureRequest) -> AsyncIterator[RedisState]:
    st = RedisState.from_url(server.url, prefix=f"t{abs(hash(request.node.name)) % 10**8}")
    try:
        yield st
    finally:
        await st.aclose()


@pytest.fixture
async def cluster_state(cluster: list[RedisServer], request: pytest.FixtureRequest) -> AsyncIterator[RedisState]:
    st = RedisState.from_url(f"{cluster[0].url}?cluster=1", prefix=f"c{abs(hash(request.node.name)) % 10**8}")
    try:
        yield st
    finally:
        await st.aclose()




async def test_session_store_contract(state: RedisState) -> None:
    await check_session_store(state.sessions)


async def test_event_log_contract(state: RedisState) -> None:
    await check_event_log(state.events)


async def test_bus_contract(state: RedisState) -> None:
    await check_bus(state.bus)


async def test_cluster_passes_the_same_contracts(cluster_state: RedisState) -> None:
    """Every key of a session shares its hash tag: the multi-key scripts run on a real cluster."""
    await check_session_store(cluster_state.sessions)
    await check_event_log(cluster_state.events)
    await check_bus(cluster_state.bus)
    slots = {cluster_state.client.keyslot(k) for k in (cluster_state.key("A", "rec"), cluster_state.key("A", "streams"), cluster_state.key("A", "e", "x"))}
    assert len(slots) == 1


async def test_two_replicas_share_sessions_events_and_the_bus(server: RedisServer) -> None:
    """What one process writes, another process's RedisState (another connection pool) reads."""
    a, b = RedisState.from_url(server.url, prefix="shared"), RedisState.from_url(server.url, prefix="shared")
    try:
        rec = SessionRecord(id="s1", version="2025-11-25", initialized=True)
        assert await a.sessions.create(rec)
        assert await b.sessions.get("s1") == rec
        stream = await a.events.new_stream("s1", prefix="p")
        first = await a.events.append("s1", stream, None)
        second = await a.events.append("s1", stream, {"jsonrpc": "2.0", "method": "x"})
        replay = await b.events.replay("s1", first)
        assert replay is not None and [e.id for e in replay.events] == [second]
        sub = await b.bus.subscribe("session:s1")
        assert await a.bus.publish("session:s1", {"n": 1}) == 1
        assert await asyncio.wait_for(sub.get(), 2) == ("session:s1", {"n": 1})
        await sub.aclose()
    finally:
        await a.aclose()
        await b.aclose()


async def test_records_slide_and_expire(server: RedisServer) -> None:
    """The record's TTL slides on every read and the record is gone after it (T-HTTP-39)."""
    st = RedisState.from_url(server.url, prefix="ttl", session_ttl=1)
    try:
        await st.sessions.create(SessionRecord(id="s", version="2025-06-18"))
        for _ in range(3):
            await asyncio.sleep(0.5)
            assert await st.sessions.get("s") is not None  # each read gives it another second
        await asyncio.sleep(1.6)
        assert await st.sessions.get("s") is None
        assert await redis_keys(st) == []
    finally:
        await st.aclose()


async def test_a_dropped_session_leaves_no_key(state: RedisState) -> None:
    """DELETE: every key of the session goes (issue 12: a keyspace scan finds nothing of it)."""
    await state.sessions.create(SessionRecord(id="gone", version="2025-11-25"))
    for prefix in ("p", "g"):
        stream = await state.events.new_stream("gone", prefix=prefix)
        await state.events.append("gone", stream, None)
        await state.events.append("gone", stream, {"jsonrpc": "2.0", "method": "m"})
        await state.events.end_stream("gone", stream)
    assert len(await redis_keys(state)) >= 5
    await state.sessions.delete("gone")
    await state.events.drop_session("gone")
    assert await redis_keys(state) == []
    await state.events.end_stream("gone", "pnothing")  # ending a stream that is gone creates nothing
    assert await redis_keys(state) == []


async def test_streams_and_events_are_bounded(server: RedisServer) -> None:
    st = RedisState.from_url(server.url, prefix="bounded", max_events=5, max_streams=3)
    try:
        streams = [await st.events.new_stream("s", prefix="p") for _ in range(5)]
        ids = [await st.events.append("s", streams[-1], {"i": i}) for i in range(20)]
        replay = await st.events.replay("s", ids[10])
        assert replay is not None and [e.message for e in replay.events] == [{"i": i} for i in range(15, 20)]
        for old in streams[:2]:  # the two oldest streams were dropped to keep three
            with pytest.raises(KeyError):
                await st.events.append("s", old, None)
        assert await st.client.zcard(st.key("s", "streams")) == 3
    finally:
        await st.aclose()


def test_bad_urls_and_prefixes_are_refused() -> None:
    with pytest.raises(ValueError, match="not a Redis URL"):
        RedisState.from_url("http://127.0.0.1:6379")
    with pytest.raises(ValueError, match="prefix"):
        RedisState.from_url("redis://127.0.0.1:1/0", prefix="a{b}")


async def test_an_unreachable_redis_is_a_clear_error() -> None:
    from redis.exceptions import ConnectionError as RedisConnectionError

    from tests.redis_servers import free_port

    st = RedisState.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(RedisConnectionError):
            await st.ping()
    finally:
        await st.aclose()


async def test_a_whole_stream_logged_at_once_replays_like_one_logged_event_by_event(state: RedisState) -> None:
    """log_stream (one round trip for an answer written in one piece) leaves what new_stream +
    append + end_stream leave: the same ids, replays and end flag (T-HTTP-27..31)."""
    messages = [{"jsonrpc": "2.0", "method": "n", "params": {"i": i}} for i in range(3)]
    stream, priming, ids = await state.events.log_stream("S", messages, prefix="p", priming=True)
    assert stream.startswith("p") and priming == f"{stream}:0" and ids == [f"{stream}:{i}" for i in (1, 2, 3)]
    replay = await state.events.replay("S", priming)
    assert replay is not None and replay.ended and [e.id for e in replay.events] == ids
    assert [e.message for e in replay.events] == messages
    plain, none, plain_ids = await state.events.log_stream("S", messages[:1], prefix="p")
    assert none is None and plain_ids == [f"{plain}:0"]
    replay = await state.events.replay("S", f"{stream}:1")
    assert replay is not None and [e.id for e in replay.events] == ids[1:]


async def test_a_password_in_the_url_is_used_and_a_wrong_one_is_a_clear_error(tmp_path: Path) -> None:
    """Auth in the URL (issue 12): redis://:password@host works; a wrong password fails at ping
    with Redis' own authentication error, and the app's one-line reason hides the password."""
    from redis.exceptions import AuthenticationError

    from anyport.transports.http._shared import redacted, redis_failure

    server = RedisServer(tmp_path, free_port(), "--requirepass", "s3cret")
    try:
        good = RedisState.from_url(f"redis://:s3cret@127.0.0.1:{server.port}/0", prefix="auth")
        bad = RedisState.from_url(f"redis://:wrong@127.0.0.1:{server.port}/0", prefix="auth")
        try:
            await good.ping()
            assert await good.sessions.create(SessionRecord(id="a", version="2025-11-25"))
            with pytest.raises(AuthenticationError):
                await bad.ping()
            reason = await redis_failure(bad)
            assert reason is not None and "wrong" not in reason and ":***@" in reason and "\n" not in reason
            assert redacted("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
        finally:
            await good.aclose()
            await bad.aclose()
    finally:
        server.stop()


def _tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, made here (PEM files: ca, cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "anyport test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


async def test_rediss_urls_speak_tls(tmp_path: Path) -> None:
    """TLS (issue 12): a rediss:// URL with the CA of a TLS-only listener works end to end."""
    ca, cert, key = _tls_files(tmp_path)
    tls_port = free_port()
    server = RedisServer(
        tmp_path, free_port(), "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
    )
    try:
        state = RedisState.from_url(f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}", prefix="tls")
        try:
            await state.ping()
            await check_session_store(state.sessions)
            assert state.client.connection_pool.connection_class.__name__.startswith("SSL")
        finally:
            await state.aclose()
    finally:
        server.stop()


async def test_a_stream_whose_writer_stops_renewing_is_orphaned_once(state: RedisState) -> None:
    """Stream leases: while the writer renews, nothing is orphaned; after its lease the unanswered
    request ids come back once (the caller took the stream over); an ended stream never is."""
    stream = await state.events.new_stream("L", prefix="p")
    assert await state.events.orphaned("L", stream) is None  # nobody claimed it
    await state.events.claim_stream("L", stream, 0.3, [1, "two"])
    await state.events.append("L", stream, {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}})
    await state.events.append("L", stream, {"jsonrpc": "2.0", "id": 1, "result": {}})
    assert await state.events.orphaned("L", stream) is None  # the lease holds
    await asyncio.sleep(0.4)
    assert await state.events.orphaned("L", stream) == ["two"]
    assert await state.events.orphaned("L", stream) is None  # taken over: once
    ended = await state.events.new_stream("L", prefix="p")
    await state.events.claim_stream("L", ended, 0.1, [3])
    await state.events.end_stream("L", ended)
    await asyncio.sleep(0.2)
    assert await state.events.orphaned("L", ended) is None
    await state.events.claim_stream("L", "pgone", 1.0, [4])  # a stream that is gone is not recreated
    assert await redis_keys(state) and not [k for k in await redis_keys(state) if b"pgone" in k]
