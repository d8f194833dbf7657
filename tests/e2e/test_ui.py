"""The MLflow UI in a real browser (Debian's headless Chromium, driven by Playwright).

Through nginx over HTTP (the shared dev topology) and over HTTPS (`proxy.tls: true`, the
browser trusting the generated certificate, reached under a non-localhost name so MLflow's
host and CORS checks apply as on a LAN), then against the basic-auth app (the AWS default
auth mode) as a user with READ on one experiment only.

Every page load must be clean: any console error, any request refused, blocked or
answered 4xx/5xx fails the test, and the browser may only ever ask the proxy (never the
object store, which a dev stack's browser cannot reach). `E2E_SCREENSHOT_DIR` (`make
screenshots`) keeps the experiments list and run page renders; otherwise they go to a
temp dir.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.server import get_app_client

from testkit.mlflow_client import pointed_at

from .browser import BrowserOptions, Expected, PageWatch, launch, sync_playwright_session
from .conftest import require_nginx, start_topology, stop_topology
from .helpers import sha256_file, unique, write_random

pytestmark = pytest.mark.e2e

# A 50 MB artifact downloaded from the UI's own link.
BIG_ARTIFACT_BYTES = 50 * 1024 * 1024
LOSS_STEPS = 20
IMAGE_SIZE = (96, 48)  # width, height: a size no icon of the UI has
# A name that is not localhost: MLflow exempts localhost origins from its CORS check.
TLS_HOST = "mlflow.test"
TLS_SETTINGS = {
    "proxy": {"tls": True, "tlsHostnames": [TLS_HOST, "127.0.0.1"], "maxUploadSize": "100m"},
    "tracking": {"allowedHosts": [TLS_HOST, "127.0.0.1"]},
}
TIMEOUT_MS = 30_000
# The UI asks who is logged in (the basic-auth app's endpoint) to decide whether to show a
# user menu; a server without that app answers 404, which the UI takes as "no MLflow auth".
NO_AUTH_APP_PROBE = Expected(
    "GET", "/ajax-api/2.0/mlflow/users/current", 404, "the UI's probe for MLflow's basic-auth app"
)


@dataclass(frozen=True)
class Scenario:
    experiment_id: str
    experiment_name: str
    other_experiment_name: str
    run_id: str
    model_name: str
    trace_question: str
    big_sha256: str


def log_scenario(work: Path) -> Scenario:
    """What a data scientist logged before opening the UI (the caller points the client)."""
    client = MlflowClient()
    name = unique("ui-experiment")
    other = unique("ui-other")
    experiment_id = mlflow.create_experiment(name)
    mlflow.create_experiment(other)
    big = work / "big.bin"
    big_sha = write_random(big, BIG_ARTIFACT_BYTES)
    width, height = IMAGE_SIZE
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[:, : width // 2] = (200, 30, 30)
    with mlflow.start_run(experiment_id=experiment_id, run_name="ui-run") as run:
        mlflow.log_params({"learning_rate": "0.01", "optimizer": "adam"})
        for step in range(LOSS_STEPS):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_text("hello from the artifact view\n", "notes.txt")
        mlflow.log_image(image, "plot.png")
        mlflow.log_artifact(str(big))
        mlflow.log_text("flavors: {}\n", "model/MLmodel")
    model_name = unique("ui-model")
    client.create_registered_model(model_name)
    for _ in range(2):
        client.create_model_version(model_name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(model_name, "champion", "2")
    question = unique("ui-question")
    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_span("ui-trace") as span:
        span.set_inputs({"question": question})
        span.set_outputs({"answer": "42"})
    # Traces are exported in the background: done before the caller's credentials go.
    mlflow.flush_trace_async_logging()
    return Scenario(experiment_id, name, other, run.info.run_id, model_name, question, big_sha)


@pytest.fixture(scope="module")
def playwright() -> Iterator:
    yield from sync_playwright_session()


@pytest.fixture(scope="module")
def tls_stack(server_venv):
    require_nginx()
    topo = start_topology(settings=TLS_SETTINGS)
    yield topo
    stop_topology(topo)


@pytest.fixture
def work_dir() -> Iterator[Path]:
    # Not tmp_path: pytest keeps those, and this holds 100 MB.
    with tempfile.TemporaryDirectory(prefix="e2e-ui-") as work:
        yield Path(work)


def screenshot_dir(work: Path) -> Path:
    """docs/img under `make screenshots`, else the test's temp dir (the repo stays untouched)."""
    target = Path(os.environ.get("E2E_SCREENSHOT_DIR") or work / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


def open_context(browser, topo, watch: PageWatch, credentials: tuple[str, str] | None):
    context = browser.new_context(
        http_credentials={"username": credentials[0], "password": credentials[1]} if credentials else None,
        accept_downloads=True,
        viewport={"width": 1440, "height": 900},
    )
    context.set_default_timeout(TIMEOUT_MS)
    watch.attach(context)
    return context


def assert_clean(watch: PageWatch, origins: set[str]) -> None:
    assert watch.problems() == [], "\n".join(watch.problems())
    assert watch.origins == origins, watch.origins


def check_experiments_list(page, base_url: str, scenario: Scenario, shots: Path | None) -> None:
    page.goto(f"{base_url}/#/experiments")
    page.get_by_text(scenario.experiment_name, exact=True).wait_for()
    page.get_by_text(scenario.other_experiment_name, exact=True).wait_for()
    # The assistant side panel opens on a first visit served from localhost (not under another
    # name); closed, the pages (and the screenshots) show all their data. Cosmetic, not checked.
    close_assistant = page.locator("[data-component-id='mlflow.assistant.chat_panel.close']")
    if close_assistant.is_visible():
        close_assistant.click()
    if shots:
        page.screenshot(path=str(shots / "ui-experiments.png"))


def check_run_page(page, base_url: str, scenario: Scenario, shots: Path | None) -> None:
    run_url = f"{base_url}/#/experiments/{scenario.experiment_id}/runs/{scenario.run_id}"
    page.goto(run_url)
    params = page.get_by_text("Parameters (2)")
    params.wait_for()
    page.get_by_text("learning_rate", exact=True).wait_for()
    page.get_by_text("adam", exact=True).wait_for()

    # The chart draws from the history the UI asks for: all 20 logged points, through the proxy.
    with page.expect_response(lambda r: "/metrics/get-history-bulk-interval" in r.url) as history:
        page.goto(f"{run_url}/model-metrics")
    points = history.value.json()["metrics"]
    assert [(p["step"], p["value"]) for p in points] == [(s, 1.0 / (s + 1)) for s in range(LOSS_STEPS)]
    page.get_by_text("ui-run (loss)").wait_for()
    # plotly renders the line as an SVG path in the chart's plot area.
    page.locator(".js-plotly-plot .scatterlayer path.js-line").first.wait_for()
    if shots:
        page.screenshot(path=str(shots / "ui-run.png"))


def check_artifacts(page, base_url: str, scenario: Scenario, work: Path) -> Path:
    page.goto(f"{base_url}/#/experiments/{scenario.experiment_id}/runs/{scenario.run_id}/artifacts")
    page.get_by_text("notes.txt", exact=True).first.click()
    page.get_by_text("hello from the artifact view").wait_for()

    page.get_by_text("plot.png", exact=True).first.click()
    width, height = IMAGE_SIZE
    page.wait_for_function(
        "([w, h]) => [...document.images].some(i => i.complete && i.naturalWidth === w && i.naturalHeight === h)",
        arg=[width, height],
    )

    # The UI's download link for the 50 MB artifact: with presigned downloads withheld by the
    # proxy, the page fetches the bytes through it and hands them to the browser as a file.
    page.get_by_text("big.bin", exact=True).first.click()
    page.get_by_text("50MB").first.wait_for()
    download_button = page.locator("[data-component-id$='artifactview.tsx_337']")
    with page.expect_download(timeout=120_000) as download:
        download_button.click()
    saved = work / "downloaded-big.bin"
    download.value.save_as(saved)
    assert download.value.suggested_filename == "big.bin"
    return saved


def check_registry(page, base_url: str, scenario: Scenario) -> None:
    page.goto(f"{base_url}/#/models/{scenario.model_name}")
    page.get_by_text("Version 2", exact=True).wait_for()
    page.get_by_text("Version 1", exact=True).wait_for()
    page.get_by_text("@ champion").wait_for()


def check_traces(page, base_url: str, scenario: Scenario) -> None:
    page.goto(f"{base_url}/#/experiments/{scenario.experiment_id}/traces")
    page.get_by_text(json.dumps({"question": scenario.trace_question})).wait_for()


def check_challenge(browser, base_url: str, realm: str) -> None:
    """Without credentials the browser is challenged and shows nothing of MLflow: headless
    Chromium cannot prompt, so it ends the navigation with ERR_INVALID_AUTH_CREDENTIALS."""
    context = browser.new_context()
    try:
        page = context.new_page()
        answers = []
        page.on("response", lambda response: answers.append(response))
        with pytest.raises(Exception, match="ERR_INVALID_AUTH_CREDENTIALS"):
            page.goto(f"{base_url}/")
        assert [(r.url, r.status) for r in answers] == [(f"{base_url}/", 401)]
        assert answers[0].headers["www-authenticate"] == f'Basic realm="{realm}"'
    finally:
        context.close()


def run_ui_scenario(browser, topo, base_url: str, work: Path, shots: Path | None) -> None:
    with topo.tracking_env():
        scenario = log_scenario(work)
    check_challenge(browser, base_url, realm="MLflow")
    watch = PageWatch(expected=[NO_AUTH_APP_PROBE])
    context = open_context(browser, topo, watch, topo.credentials)
    try:
        page = context.new_page()
        check_experiments_list(page, base_url, scenario, shots)
        check_run_page(page, base_url, scenario, shots)
        saved = check_artifacts(page, base_url, scenario, work)
        check_registry(page, base_url, scenario)
        check_traces(page, base_url, scenario)
    except Exception as error:  # a page that never shows its data: what went wrong on the wire
        error.add_note("\n".join(["what the browser saw:", *watch.problems()]))
        raise
    finally:
        context.close()
    assert sha256_file(saved) == scenario.big_sha256
    # Every byte the browser asked for came through the one published address.
    assert_clean(watch, {base_url})
    # The probe is the one 4xx, and it did happen (the exception list is not dead weight).
    assert set(watch.seen_expected) == {NO_AUTH_APP_PROBE}

    # The 50 MB crossed nginx as one whole GET of the UI's artifact endpoint; nothing asked
    # for a presigned URL (in a dev stack that would point at http://minio:9000).
    big_path = f"/get-artifact?path=big.bin&run_uuid={scenario.run_id}"
    crossed = [(e["method"], e["status"]) for e in topo.access_log() if e["path"] == big_path]
    assert crossed == [("GET", 200)], [e for e in topo.access_log() if "big.bin" in e["path"]]
    assert [e for e in topo.access_log() if e["path"] == big_path][0]["sent"] >= BIG_ARTIFACT_BYTES
    assert not [e for e in topo.access_log() if "presigned" in e["path"]]
    s3_origin = topo.s3.endpoint_url.rstrip("/")
    assert not [r for r in watch.requests if s3_origin in r]


def test_ui_through_nginx_over_http(stack, playwright, work_dir):
    browser = launch(playwright)
    try:
        run_ui_scenario(browser, stack, stack.tracking_uri, work_dir, screenshot_dir(work_dir))
    finally:
        browser.close()


def test_ui_through_nginx_over_https_trusting_the_generated_certificate(tls_stack, playwright, work_dir):
    base_url = tls_stack.proxy_url(TLS_HOST)
    # Without trust in the generated certificate Chromium refuses the page: trust is what passes.
    untrusting = launch(playwright, BrowserOptions(host_map=[TLS_HOST]))
    try:
        with pytest.raises(Exception, match="ERR_CERT_AUTHORITY_INVALID"):
            untrusting.new_page().goto(f"{base_url}/")
    finally:
        untrusting.close()
    assert tls_stack.tls is not None
    browser = launch(playwright, BrowserOptions(host_map=[TLS_HOST], trust_spki=[tls_stack.tls.spki_sha256_b64]))
    try:
        run_ui_scenario(browser, tls_stack, base_url, work_dir, shots=None)
    finally:
        browser.close()


# -- the basic-auth app -------------------------------------------------------------------


@pytest.fixture(scope="module")
def authed(server_venv):
    tracking = {"allowedHosts": ["127.0.0.1", "127.0.0.1:*"]}
    topo = start_topology(settings={"tracking": tracking}, nginx=False, app_name="basic-auth")
    yield topo
    stop_topology(topo)


def test_ui_with_the_basic_auth_app_as_a_read_only_user(authed, playwright, work_dir):
    base_url = authed.instances[0].url
    admin_env = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": authed.auth_admin_password}
    with pointed_at(base_url, admin_env):
        scenario = log_scenario(work_dir)
        admin = get_app_client("basic-auth", tracking_uri=base_url)
        admin.create_user("reader", "reader-password-123")
        admin.grant_user_permission("reader", "experiment", scenario.experiment_id, "READ")
        admin.grant_user_permission("reader", "registered_model", scenario.model_name, "READ")

    browser = launch(playwright)
    try:
        check_challenge(browser, base_url, realm="mlflow")
        # The one refusal this user meets is the edit below, with MLflow's own message.
        refused = Expected("POST", "/ajax-api/2.0/mlflow/runs/set-tag", 403, "READ may not edit a run")
        watch = PageWatch(expected=[refused])
        context = open_context(browser, authed, watch, ("reader", "reader-password-123"))
        try:
            page = context.new_page()
            page.goto(f"{base_url}/#/experiments")
            page.get_by_text(scenario.experiment_name, exact=True).wait_for()
            assert page.get_by_text(scenario.other_experiment_name, exact=True).count() == 0
            check_run_page(page, base_url, scenario, shots=None)
            saved = check_artifacts(page, base_url, scenario, work_dir)
            check_registry(page, base_url, scenario)
            check_traces(page, base_url, scenario)
            # An edit through the UI: the run's description. MLflow refuses it with its message.
            page.goto(f"{base_url}/#/experiments/{scenario.experiment_id}/runs/{scenario.run_id}")
            page.get_by_role("button", name="Edit description").click()
            page.locator("textarea").first.fill("edited by a reader")
            with page.expect_response(lambda r: r.url.endswith("/ajax-api/2.0/mlflow/runs/set-tag")) as edit:
                page.get_by_role("button", name="Save").click()
            answer = [edit.value.status, edit.value.text()]
            # The UI reports the refusal; it cannot show MLflow's message, a plain-text body where
            # it parses JSON, so it names the error code it falls back to.
            page.get_by_text("There was an error submitting your note.").wait_for()
        finally:
            context.close()
    finally:
        browser.close()
    assert answer == [403, "Permission denied"]
    # Nothing changed.
    with pointed_at(base_url, admin_env):
        assert "mlflow.note.content" not in MlflowClient(tracking_uri=base_url).get_run(scenario.run_id).data.tags
    assert sha256_file(saved) == scenario.big_sha256
    # No proxy rewrites MLflow's capabilities here, as on AWS (the load balancer passes them on):
    # the UI's download link is a presigned URL of the object store, which the browser follows.
    s3_origin = authed.s3.endpoint_url.rstrip("/")
    assert [urlsplit(url).path for url in watch.downloads] == [
        f"/{authed.bucket}/{scenario.experiment_id}/{scenario.run_id}/artifacts/big.bin"
    ]
    assert all(url.startswith(s3_origin) and "X-Amz-Signature=" in url for url in watch.downloads)
    assert_clean(watch, {base_url, s3_origin})
    assert watch.seen_expected == [refused]
