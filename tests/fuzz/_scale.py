"""How many generated inputs a run uses: ``make test`` a few seconds per fuzzer, ``make fuzz`` millions.

- ``ANYPORT_FUZZ_EXAMPLES`` (default 100): examples per hypothesis property; the stdio and HTTP
  fuzzers of the test suite default to 6x and 4x that many inputs.
- ``ANYPORT_FUZZ_STDIO_INPUTS`` / ``ANYPORT_FUZZ_HTTP_INPUTS``: override those two directly.
- ``ANYPORT_FUZZ_SEED`` (default 0): the seed of the stdio and HTTP generators.
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def examples() -> int:
    return max(1, _int("ANYPORT_FUZZ_EXAMPLES", 100))


def stdio_inputs() -> int:
    return max(1, _int("ANYPORT_FUZZ_STDIO_INPUTS", 6 * examples()))


def http_inputs() -> int:
    return max(1, _int("ANYPORT_FUZZ_HTTP_INPUTS", 4 * examples()))


def seed() -> int:
    return _int("ANYPORT_FUZZ_SEED", 0)
