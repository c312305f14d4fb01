"""The Hypothesis profiles of the oracle tests, chosen by ``HYPOTHESIS_PROFILE``.

``default``: 8 generated examples a test, a failure shrunk to the smallest scenario; ``ci``: the
same examples without shrinking (a failure costs minutes of shrinking there; the printed blob
reproduces it locally); ``long``: 2,000.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

NO_SHRINKING = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
_COMMON = {
    "deadline": None,
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
}


def load_profile() -> settings:
    """Register the profiles and load the one ``HYPOTHESIS_PROFILE`` names (``default``)."""
    settings.register_profile("default", max_examples=8, **_COMMON)
    settings.register_profile("ci", max_examples=8, phases=NO_SHRINKING, **_COMMON)
    settings.register_profile("long", max_examples=2_000, **_COMMON)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
    return settings.default
