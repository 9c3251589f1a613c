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


# ANYPORT_STATE_KEYS formats (issue 12): base64url or hex, one-line errors that never echo a key.

K1_B64 = _enc(K1)
K1_HEX = K1.hex()
K2_B64 = _enc(K2)
K2_HEX = K2.hex().upper()  # hex digits in either case


def test_hex_and_base64_keys_are_the_same_key_M16() -> None:
    """M-16: a key given as hex and as base64url (padded or not, or standard base64) is one key."""
    for a, b in [(K1_B64, K1_HEX), (K1_HEX, K1_B64), (K1_B64 + "=", K1_HEX), (K1, K1_HEX)]:
        sealed = KeyRing([a]).seal({"x": 1}, binding=BIND)
        assert KeyRing([b]).open(sealed, binding=BIND) == {"x": 1}
    std = base64.b64encode(K2).decode()  # '+' and '/', with '=' padding: `openssl rand -base64 32`
    assert KeyRing([std]).open(KeyRing([K2_HEX]).seal({"y": 2}, binding=BIND), binding=BIND) == {"y": 2}


@pytest.mark.parametrize("value", [f"{K2_HEX},{K1_B64}", f"{K2_B64} {K1_HEX}", f"\n {K2_HEX} ,\t{K1_HEX}, ", f"{K2_B64},,{K1_B64}"])
def test_from_env_rotation_with_mixed_formats_M16(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """M-16: keys are separated by commas and/or whitespace, in any format; the first seals, all open."""
    monkeypatch.setenv("ANYPORT_STATE_KEYS", value)
    ring = KeyRing.from_env()
    old = KeyRing([K1]).seal({"round": 1}, binding=BIND)
    assert ring.open(old, binding=BIND) == {"round": 1}
    new = ring.seal({"round": 2}, binding=BIND)
    assert KeyRing([K2]).open(new, binding=BIND) == {"round": 2}  # sealed with the first key
    with pytest.raises(InvalidParamsError):
        KeyRing([K1]).open(new, binding=BIND)


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_from_env_unset_or_blank_is_a_random_key_M16(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """M-16: no keys configured: a key of this process (replicas then cannot open each other's state)."""
    monkeypatch.setenv("ANYPORT_STATE_KEYS", value)
    a, b = KeyRing.from_env(), KeyRing.from_env()
    with pytest.raises(InvalidParamsError):
        b.open(a.seal({"x": 1}, binding=BIND), binding=BIND)
    ring = KeyRing.from_env()
    assert ring.open(ring.seal({"x": 1}, binding=BIND), binding=BIND) == {"x": 1}
    monkeypatch.delenv("ANYPORT_STATE_KEYS")
    ring = KeyRing.from_env()
    assert ring.open(ring.seal({"x": 1}, binding=BIND), binding=BIND) == {"x": 1}


SECRETISH = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"  # 44 base64 characters: 33 bytes


@pytest.mark.parametrize(
    ("value", "which", "why"),
    [
        (SECRETISH, "the key", "44 characters long"),
        (SECRETISH[:40], "the key", "40 characters long"),
        (f"{K1_B64},{SECRETISH[:30]}", "the 2nd of 2 keys", "30 characters long"),
        (f"{K1_B64} {K2_B64} {K1_HEX[:62]}", "the 3rd of 3 keys", "62 characters long"),
        (K1_HEX[:63] + "g", "the key", "position 64 is not a hex digit"),
        (K1_B64[:20] + "!" + K1_B64[21:], "the key", "neither base64url nor hex (position 21 of 43)"),
        (K1_B64[:20] + "é" + K1_B64[21:], "the key", "neither base64url nor hex (position 21 of 43)"),
        (K1_B64[:20] + "=" + K1_B64[21:], "the key", "'=' before its end"),
        (f"{K2_HEX},\"{K1_B64}\"", "the 2nd of 2 keys", "in quotes"),
        (f"'{K1_HEX}'", "the key", "in quotes"),
        (K1_HEX + K1_HEX, "the key", "128 characters long"),
        (", ,", "", "lists no key"),
    ],
)
def test_malformed_env_is_one_line_without_key_material_M16(
    monkeypatch: pytest.MonkeyPatch, value: str, which: str, why: str
) -> None:
    """Issue 12: a malformed ANYPORT_STATE_KEYS is one ValueError line naming the variable, the key and
    the reason, and never the key text itself (it ends up in logs)."""
    monkeypatch.setenv("ANYPORT_STATE_KEYS", value)
    with pytest.raises(ValueError) as info:
        KeyRing.from_env()
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith("ANYPORT_STATE_KEYS")
    assert which in msg and why in msg
    exc = info.value  # no chained decoder error in the traceback
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)
    for part in [p.strip("'\"") for p in value.replace(",", " ").split()]:
        for i in range(max(len(part) - 7, 1)):
            assert part[i : i + 8] not in msg, "key material in the message"


def test_wrong_length_says_what_is_expected_M16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: the message says what a key looks like and where to get one."""
    monkeypatch.setenv("ANYPORT_STATE_KEYS", "abc")
    with pytest.raises(ValueError, match=r"32 bytes: 43 base64url characters .* or 64 hex characters .*anyport keygen"):
        KeyRing.from_env()


def test_server_construction_reports_a_malformed_env_M16(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12: ``Server(...)`` reads the ring at construction: code gets the same clear ValueError."""
    from anyport import Server

    monkeypatch.setenv("ANYPORT_STATE_KEYS", f"{K1_HEX},nope")
    with pytest.raises(ValueError, match=r"^ANYPORT_STATE_KEYS: the 2nd of 2 keys is 4 characters long"):
        Server("s")
    monkeypatch.setenv("ANYPORT_STATE_KEYS", f"{K1_HEX},{K2_B64}")
    assert Server("s").key_ring.open(KeyRing([K1]).seal({"x": 1}, binding=BIND), binding=BIND) == {"x": 1}


@pytest.mark.parametrize(("n", "text"), [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"), (21, "21st"), (22, "22nd"), (101, "101st"), (111, "111th")])
def test_ordinals(n: int, text: str) -> None:
    from anyport.protocol._seal import _ordinal

    assert _ordinal(n) == text


def test_constructor_names_the_wrong_key_M16() -> None:
    """M-16: KeyRing([...]) from code says which key is wrong, too."""
    with pytest.raises(ValueError, match=r"^the 2nd of 3 keys is 31 bytes"):
        KeyRing([K1, b"x" * 31, K2])
    with pytest.raises(ValueError, match=r"^the 3rd of 3 keys is 5 characters long"):
        KeyRing([K1, K2_HEX, "short"])


def test_generate_key_formats_M16() -> None:
    """M-16: fresh keys, base64url (43 characters) or hex (64), each parsed back to 32 bytes."""
    from anyport.protocol._seal import _parse_key

    b64, hx = KeyRing.generate_key(), KeyRing.generate_key("hex")
    assert len(b64) == 43 and len(_parse_key(b64)) == 32
    assert len(hx) == 64 and bytes.fromhex(hx) == _parse_key(hx)
    assert KeyRing.generate_key() != b64
