"""Shared test setup. Test helpers are imported from one root, the `tests` package
(`from tests.pulumi_mocks import ...`); pytest.ini puts the repo root on sys.path."""
