"""The origins MLflow accepts as the UI's own (components/specs/origins.py).

MLflow 3.17 refuses a POST/PUT/PATCH/DELETE under /api/ or /ajax-api/ whose Origin is neither
localhost nor in --cors-allowed-origins (mlflow/server/security_utils.py,
should_block_cors_request), and browsers send Origin on same-origin POSTs: the UI's run,
trace and dataset searches. tests/e2e/test_ui.py proves it on a TLS proxy under a LAN name.
"""

from __future__ import annotations

from components.config import parse_settings
from components.config.docker import DockerSettings
from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint, JobQueueEndpoint
from components.specs.mlflow_server import mlflow_server_spec
from components.specs.origins import load_balancer_origins, merged, origin, proxy_origins

# The shared job queue every spec with tracking.jobExecution (the default) needs.
QUEUE = JobQueueEndpoint("redis", 6379)

DB = DatabaseEndpoint(host="db", port=5432, name="mlflow", user="mlflow")
S3 = ArtifactEndpoint(bucket="b", region="eu-west-1")


def docker(proxy: dict, tracking: dict | None = None) -> DockerSettings:
    settings = parse_settings({"target": "docker", "proxy": proxy, "tracking": tracking or {}})
    assert isinstance(settings, DockerSettings)
    return settings


def test_origin_is_written_as_a_browser_sends_it():
    assert origin("https", "mlflow.example.com", 443) == "https://mlflow.example.com"
    assert origin("https", "mlflow.lan", 8443) == "https://mlflow.lan:8443"
    assert origin("http", "localhost", 80) == "http://localhost"
    assert origin("https", "::1", 8443) == "https://[::1]:8443"
    assert origin("https", "192.168.1.5", 8443) == "https://192.168.1.5:8443"


def test_the_tls_proxy_names_are_origins_on_the_published_port():
    settings = docker(
        {"tls": True, "port": 8443, "tlsHostnames": ["mlflow.lan", "192.168.1.5"], "bindAddress": "0.0.0.0"},
        {"allowedHosts": ["mlflow.lan", "192.168.1.5"]},
    )
    assert proxy_origins(settings.proxy) == ["https://mlflow.lan:8443", "https://192.168.1.5:8443"]


def test_plain_http_adds_no_origin():
    # Published on loopback only, whose origins MLflow never blocks.
    assert proxy_origins(docker({"tls": False}).proxy) == []


def test_the_load_balancer_domain_is_the_prod_origin():
    assert load_balancer_origins("mlflow.example.com") == ["https://mlflow.example.com"]
    assert load_balancer_origins(None) == []


def test_configured_origins_come_first_each_once():
    assert merged(["https://nb.example.com", "https://a"], ["https://a", "https://b"]) == [
        "https://nb.example.com",
        "https://a",
        "https://b",
    ]


def test_the_server_command_allows_its_own_origins_and_the_configured_ones():
    settings = docker({"tls": True}, {"corsAllowedOrigins": ["https://notebooks.example.com"]})
    spec = mlflow_server_spec(settings.tracking, DB, S3, public_origins=proxy_origins(settings.proxy), job_queue=QUEUE)
    argv = list(spec.argv)
    value = argv[argv.index("--cors-allowed-origins") + 1]
    assert value == "https://notebooks.example.com,https://localhost:8080"


def test_no_flag_without_origins():
    spec = mlflow_server_spec(docker({}).tracking, DB, S3, job_queue=QUEUE)
    assert "--cors-allowed-origins" not in spec.argv
