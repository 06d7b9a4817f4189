"""Shared test configuration: hypothesis profiles and the autograd reference helpers.

The ``ci`` profile (selected when the environment variable CI is set) is
derandomized, so every CI run executes the same examples; locally the ``dev``
profile explores new examples each run. Neither has a deadline: the cost of an
example depends on the drawn sizes, not on a regression.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
