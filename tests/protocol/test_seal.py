"""``KeyRing``: MRTR requestState sealing (M-16). Pure unit tests: no event loop."""

from __future__ import annotations

import base64

import pytest

from anyport._exceptions import InvalidParamsError
from anyport.protocol import KeyRing

BIND = b"tools/call\0search\0abc"
K1 = bytes(range(32))
K2 = bytes(range(32, 64))


def _b64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _enc(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).decode().rstrip("=")


def test_round_trip_M16() -> None:
    """M-16: what is sealed opens to the same payload with the same binding."""
    ring = KeyRing([K1])
    payload = {"a": {"q1": {"action": "accept", "content": {"name": "Ada"}}}, "n": 3}
    token = ring.seal(payload, binding=BIND, now=1000.0)
    assert isinstance(token, str) and token.startswith("a1.")
    assert ring.open(token, binding=BIND, now=1001.0) == payload


def test_token_is_opaque_M16() -> None:
    """M-16: the client cannot read the state: no payload text in the token, and nonces differ per seal."""
    ring = KeyRing([K1])
    t1 = ring.seal({"secret": "hunter2"}, binding=BIND)
    t2 = ring.seal({"secret": "hunter2"}, binding=BIND)
    assert t1 != t2
    assert b"hunter2" not in _b64(t1[3:])


def test_tampered_ciphertext_is_rejected_M16() -> None:
    """M-16: any altered byte fails verification (InvalidParamsError, -32602)."""
    ring = KeyRing([K1])
    token = ring.seal({"x": 1}, binding=BIND)
    blob = bytearray(_b64(token[3:]))
    for pos in (8, 20, len(blob) - 1):  # nonce, ciphertext, tag
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(InvalidParamsError) as info:
            ring.open("a1." + _enc(bytes(bad)), binding=BIND)
        assert info.value.code == -32602


def test_truncated_token_is_rejected_M16() -> None:
    """M-16: a token cut short is rejected."""
    ring = KeyRing([K1])
    token = ring.seal({"x": 1}, binding=BIND)
    blob = _b64(token[3:])
    for n in (0, 8, 30, len(blob) - 1):
        with pytest.raises(InvalidParamsError):
            ring.open("a1." + _enc(blob[:n]), binding=BIND)


def test_wrong_binding_is_rejected_M16() -> None:
    """M-16: state minted for one request (method/target/args digest) cannot be replayed on another."""
    ring = KeyRing([K1])
    token = ring.seal({"x": 1}, binding=BIND)
    with pytest.raises(InvalidParamsError):
        ring.open(token, binding=b"tools/call\0other\0abc")
    with pytest.raises(InvalidParamsError):
        ring.open(token, binding=b"")


def test_expired_state_is_rejected_M16() -> None:
    """M-16: state has a short expiry; after it, opening fails."""
    ring = KeyRing([K1])
    token = ring.seal({"x": 1}, binding=BIND, ttl=60.0, now=1000.0)
    assert ring.open(token, binding=BIND, now=1059.0) == {"x": 1}
    with pytest.raises(InvalidParamsError) as info:
        ring.open(token, binding=BIND, now=1061.0)
    assert "expired" in info.value.message


def test_expiry_with_real_clock_M16() -> None:
    """M-16: with the wall clock, a negative ttl is already expired and a normal one is valid."""
    ring = KeyRing([K1])
    assert ring.open(ring.seal({"v": 1}, binding=BIND), binding=BIND) == {"v": 1}
    with pytest.raises(InvalidParamsError):
        ring.open(ring.seal({"v": 1}, binding=BIND, ttl=-1.0), binding=BIND)


def test_key_rotation_old_key_still_opens_M16() -> None:
    """M-16: after rotation (new key first), state sealed with the old key still opens; new seals use the new key."""
    old = KeyRing([K1])
    token_old = old.seal({"round": 1}, binding=BIND)
    rotated = KeyRing([K2, K1])
    assert rotated.open(token_old, binding=BIND) == {"round": 1}
    token_new = rotated.seal({"round": 2}, binding=BIND)
    assert _b64(token_new[3:])[:8] != _b64(token_old[3:])[:8]  # different key id
    # a replica that has only the new key opens new tokens but not old ones
    only_new = KeyRing([K2])
    assert only_new.open(token_new, binding=BIND) == {"round": 2}
    with pytest.raises(InvalidParamsError):
        only_new.open(token_old, binding=BIND)


def test_unknown_key_is_rejected_M16() -> None:
    """M-16: a token sealed by a key not in the ring is rejected (foreign or forged)."""
    token = KeyRing().seal({"x": 1}, binding=BIND)  # random key
    with pytest.raises(InvalidParamsError) as info:
        KeyRing([K1]).open(token, binding=BIND)
    assert info.value.code == -32602


def test_replicas_sharing_keys_interoperate_M16() -> None:
    """M-16: two rings built from the same keys (string or bytes) open each other's state."""
    key = KeyRing.generate_key()
    a = KeyRing([key])
    b = KeyRing([_b64(key)])
    assert b.open(a.seal({"x": 2}, binding=BIND), binding=BIND) == {"x": 2}


def test_from_env_M16(monkeypatch: pytest.MonkeyPatch) -> None:
    """M-16: ANYPORT_STATE_KEYS lists keys newest first; the first seals, all open."""
    k_new, k_old = KeyRing.generate_key(), KeyRing.generate_key()
    token_old = KeyRing([k_old]).seal({"x": 1}, binding=BIND)
    monkeypatch.setenv("ANYPORT_STATE_KEYS", f" {k_new} , {k_old} ")
    ring = KeyRing.from_env()
    assert ring.open(token_old, binding=BIND) == {"x": 1}
    assert KeyRing([k_new]).open(ring.seal({"y": 2}, binding=BIND), binding=BIND) == {"y": 2}


@pytest.mark.parametrize("token", [None, 5, {"a": 1}, "", "a1.", "b1.AAAA", "a1.!!!!", "x" * 10, "a1." + "A" * 300_000])
def test_garbage_tokens_are_rejected_M16(token: object) -> None:
    """M-16: requestState is attacker-controlled: any garbage is an InvalidParamsError, never a crash."""
    with pytest.raises(InvalidParamsError):
        KeyRing([K1]).open(token, binding=BIND)


@pytest.mark.parametrize("key", [b"short", b"x" * 31, b"x" * 33, "c2hvcnQ"])
def test_bad_keys_are_refused_M16(key: bytes | str) -> None:
    """M-16: keys are exactly 32 bytes (AES-256-GCM)."""
    with pytest.raises(ValueError):
        KeyRing([key])


def test_empty_key_list_is_refused_M16() -> None:
    """M-16: a ring needs a key to seal with."""
    with pytest.raises(ValueError):
        KeyRing([])
