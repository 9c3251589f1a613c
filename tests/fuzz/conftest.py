"""Hypothesis settings for the fuzz suite.

``make test`` runs a short, deterministic run (``derandomize``: the same examples every time, no
example database written). ``ANYPORT_FUZZ_EXAMPLES`` scales every property test (default 100
examples each) and, through ``tests.fuzz._scale``, the stdio and HTTP fuzzers. ``fuzz/run.py``
sets ``ANYPORT_FUZZ_RANDOM=1`` for a randomised long run (seed printed by hypothesis on failure).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.fuzz._scale import examples

settings.register_profile(
    "anyport-fuzz",
    max_examples=examples(),
    derandomize=not os.environ.get("ANYPORT_FUZZ_RANDOM"),
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
settings.load_profile("anyport-fuzz")
