"""Shared test setup: the repo root and tests/ on sys.path (pytest.ini sets pythonpath=.)."""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
