"""Durations in Go's spelling, the form the Docker provider reads back (no diff on every preview)."""

from __future__ import annotations

import re

import pytest

from components.specs.durations import go_duration

# What Go's time.Duration(n * time.Second).String() prints.
GO_PRINTS = {
    0: "0s",
    1: "1s",
    5: "5s",
    59: "59s",
    60: "1m0s",
    90: "1m30s",
    120: "2m0s",
    300: "5m0s",
    3599: "59m59s",
    3600: "1h0m0s",
    3661: "1h1m1s",
    86400: "24h0m0s",
}


@pytest.mark.parametrize("seconds,printed", sorted(GO_PRINTS.items()))
def test_whole_seconds_print_as_go_does(seconds, printed):
    assert go_duration(seconds) == printed


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_anything_but_whole_seconds_is_refused(bad):
    with pytest.raises(ValueError):
        go_duration(bad)


def is_go_canonical(text: str) -> bool:
    """Whether `text` is exactly what Go would print for the duration it denotes."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not match or not text:
        return False
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return go_duration(hours * 3600 + minutes * 60 + seconds) == text


def test_the_canonical_check_rejects_what_the_provider_would_rewrite():
    assert is_go_canonical("2m0s") and is_go_canonical("15s")
    assert not is_go_canonical("120s") and not is_go_canonical("2m") and not is_go_canonical("60s")
