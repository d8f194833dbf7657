"""The policy tests import the pack as the CLI runs it: policy/ on sys.path (see harness.py)."""

from tests.policy import harness  # noqa: F401  (puts policy/ on sys.path before the tests import rules)
