"""What a PromQL expression reads, for tests that hold the dashboard and the alert rules to the
series the e2e shows scraped."""

from __future__ import annotations

import re

# PromQL words that are not series names (no function: those are followed by "(").
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def series_names(expr: str) -> set[str]:
    """Names of the series a PromQL expression selects."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # label matchers and range selectors
    bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)  # grouping labels
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?!\s*\()\b", bare))
    return {name for name in names if name not in KEYWORDS and not re.fullmatch(r"[eE]\d*", name)}
