"""Headless Chromium from Debian, driven by Playwright, and what a page did on the wire.

Playwright is pointed at the system browser (`executable_path`): it never downloads one.
`PageWatch` records every console error, every failed request (refused, blocked, 4xx/5xx)
and every host the page asked, so a test can fail on any of them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

# Debian's `chromium` package: /usr/bin/chromium is a wrapper script that sources
# /etc/chromium.d; the browser binary itself is this one.
DEBIAN_CHROMIUM = "/usr/lib/chromium/chromium"
MISSING = (
    "Chromium is not installed: the browser tests drive Debian's build "
    "(apt-get install --no-install-recommends chromium); .ci/run installs it"
)


def chromium_path() -> str:
    """The Chromium binary, or a test failure naming the fix (never a skip)."""
    override = os.environ.get("E2E_CHROMIUM")
    for candidate in (override, DEBIAN_CHROMIUM, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(MISSING, pytrace=False)


@dataclass(frozen=True)
class Expected:
    """A failing request a page is known to make, and why it is not a defect."""

    method: str
    path: str
    status: int
    reason: str


@dataclass
class PageWatch:
    """What the pages of one browser context did: problems, and every request's origin."""

    expected: Sequence[Expected] = ()
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    seen_expected: list[Expected] = field(default_factory=list)
    origins: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)

    def attach(self, context) -> None:
        context.on("page", self._watch_page)
        for page in context.pages:
            self._watch_page(page)

    def _watch_page(self, page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))
        page.on("requestfailed", self._on_request_failed)
        page.on("response", self._on_response)
        page.on("request", self._on_request)
        page.on("download", lambda download: self.downloads.append(download.url))

    def _match(self, method: str, url: str, status: int) -> Expected | None:
        path = urlsplit(url).path
        return next(
            (e for e in self.expected if (e.method, e.path, e.status) == (method, path, status)),
            None,
        )

    def _on_request(self, request) -> None:
        self.requests.append(f"{request.method} {request.url}")
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss"):
            self.origins.add(f"{parts.scheme}://{parts.netloc}")

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        # Chromium logs every 4xx/5xx as "Failed to load resource"; an expected one is not an error.
        url = (message.location or {}).get("url", "")
        if message.text.startswith("Failed to load resource") and any(
            urlsplit(url).path == e.path and f"status of {e.status}" in message.text for e in self.expected
        ):
            return
        self.console_errors.append(f"{message.text} ({url})")

    def _on_request_failed(self, request) -> None:
        if request.failure == "net::ERR_ABORTED":  # judged in problems(): the download event comes later
            self.aborted.append(request.url)
            return
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def _on_response(self, response) -> None:
        if response.status < 400:
            return
        request = response.request
        known = self._match(request.method, response.url, response.status)
        if known is not None:
            self.seen_expected.append(known)
            return
        self.failed.append(f"{request.method} {response.url}: {response.status}")

    def problems(self) -> list[str]:
        # A request that became a download (a blob the page made, or a link the browser
        # follows) ends as "aborted" for the page; the test checks the downloaded file itself.
        aborted = [f"request: {url}: net::ERR_ABORTED" for url in self.aborted if url not in self.downloads]
        return [f"console error: {e}" for e in self.console_errors] + [f"request: {f}" for f in self.failed] + aborted


@dataclass(frozen=True)
class BrowserOptions:
    """Launch options: `host_map` maps names to 127.0.0.1 (a hosts file for Chromium only),
    `trust_spki` trusts exactly the certificates of these public keys (base64 SHA-256 of
    the SubjectPublicKeyInfo), as importing the generated certificate would."""

    host_map: Sequence[str] = ()
    trust_spki: Sequence[str] = ()

    def args(self) -> list[str]:
        args = []
        if self.host_map:
            args.append("--host-resolver-rules=" + ",".join(f"MAP {h} 127.0.0.1" for h in self.host_map))
        if self.trust_spki:
            # Honoured because Playwright gives Chromium its own --user-data-dir.
            args.append("--ignore-certificate-errors-spki-list=" + ",".join(self.trust_spki))
        return args


def launch(playwright, options: BrowserOptions = BrowserOptions()):
    return playwright.chromium.launch(executable_path=chromium_path(), args=options.args())


def sync_playwright_session() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright
