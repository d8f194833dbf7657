"""The browser test's harness (tests/e2e/browser.py): a missing Chromium fails with the fix, and
only the named known failures are let through."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.e2e import browser
from tests.e2e.browser import Expected, PageWatch


def test_a_missing_chromium_fails_naming_the_apt_package(monkeypatch, tmp_path):
    monkeypatch.setenv("E2E_CHROMIUM", str(tmp_path / "nothing"))
    monkeypatch.setattr(browser, "DEBIAN_CHROMIUM", str(tmp_path / "absent"))
    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install --no-install-recommends chromium"):
        browser.chromium_path()


def response(method: str, url: str, status: int):
    return SimpleNamespace(status=status, url=url, request=SimpleNamespace(method=method, url=url))


PROBE = Expected("GET", "/ajax-api/2.0/mlflow/users/current", 404, "probe")


def test_only_the_named_failure_passes():
    watch = PageWatch(expected=[PROBE])
    watch._on_response(response("GET", "http://h/ajax-api/2.0/mlflow/users/current", 404))
    watch._on_response(response("GET", "http://h/ajax-api/2.0/mlflow/users/current", 500))
    watch._on_response(response("POST", "http://h/ajax-api/2.0/mlflow/runs/search", 403))
    watch._on_response(response("GET", "http://h/static-files/main.js", 200))
    assert watch.seen_expected == [PROBE]
    assert watch.problems() == [
        "request: GET http://h/ajax-api/2.0/mlflow/users/current: 500",
        "request: POST http://h/ajax-api/2.0/mlflow/runs/search: 403",
    ]


def test_console_errors_fail_except_the_expected_status_line():
    watch = PageWatch(expected=[PROBE])
    probe_line = "Failed to load resource: the server responded with a status of 404 (Not Found)"
    watch._on_console(SimpleNamespace(type="error", text=probe_line, location={"url": "http://h" + PROBE.path}))
    watch._on_console(SimpleNamespace(type="error", text=probe_line, location={"url": "http://h/other"}))
    watch._on_console(
        SimpleNamespace(type="error", text="TypeError: x is undefined", location={"url": "http://h/a.js"})
    )
    watch._on_console(SimpleNamespace(type="warning", text="deprecated", location={}))
    assert watch.problems() == [
        f"console error: {probe_line} (http://h/other)",
        "console error: TypeError: x is undefined (http://h/a.js)",
    ]


def test_an_aborted_request_passes_only_when_it_became_a_download():
    watch = PageWatch()
    for url in ("http://s3/b/big.bin?X-Amz-Signature=1", "http://h/ajax-api/2.0/mlflow/runs/search"):
        watch._on_request_failed(SimpleNamespace(method="GET", url=url, failure="net::ERR_ABORTED"))
    watch._on_request_failed(SimpleNamespace(method="GET", url="http://h/x", failure="net::ERR_CONNECTION_REFUSED"))
    watch.downloads.append("http://s3/b/big.bin?X-Amz-Signature=1")
    assert watch.problems() == [
        "request: GET http://h/x: net::ERR_CONNECTION_REFUSED",
        "request: http://h/ajax-api/2.0/mlflow/runs/search: net::ERR_ABORTED",
    ]


def test_launch_arguments_map_the_name_and_trust_exactly_the_key():
    options = browser.BrowserOptions(host_map=["mlflow.test"], trust_spki=["abc="])
    assert options.args() == [
        "--host-resolver-rules=MAP mlflow.test 127.0.0.1",
        "--ignore-certificate-errors-spki-list=abc=",
    ]
