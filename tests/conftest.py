"""Shared test setup: hypothesis profiles, and an opt-in switch to run the suite on the NumPy reference.

Profiles: `dev` (default) and `ci` (derandomized, chosen when CI is set). Neither has a deadline.
TINYTENSOR_TEST_BACKEND=ref runs every test on backend/ref.py instead of the C kernels (to check the
reference itself); it never changes what tinytensor does outside the tests.
"""
import os
import sys

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

sys.path.insert(0, os.path.dirname(__file__))  # so tests can `import helpers`

if os.environ.get("TINYTENSOR_TEST_BACKEND") == "ref":
    import tinytensor  # noqa: F401
    from tinytensor.backend import get as _get, ref
    # only the CPU kernels are swapped: other devices still raise their own errors
    sys.modules["tinytensor.tensor"].get_backend = lambda device: ref if device == "cpu" else _get(device)
