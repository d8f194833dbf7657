"""Stack config validation: good configs give Settings, bad ones one error naming every key."""

from __future__ import annotations

import json

import pulumi
import pytest

from components.config import ConfigError, DockerSettings, parse_settings
from components.config.loader import load_settings
from components.versions import pinned_mlflow_version


def problems(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw)
    return dict(caught.value.problems)


def test_minimal_docker_config_gets_secure_defaults():
    settings = parse_settings({"target": "docker"})
    assert isinstance(settings, DockerSettings)
    assert settings.tracking.mlflow_version == pinned_mlflow_version()
    assert settings.tracking.artifacts == "proxied"
    assert str(settings.proxy.bind_address) == "127.0.0.1"
    assert settings.proxy.max_upload_size == 10 * 1024**3
    assert settings.docker.keep_data_on_destroy is True
    assert "*" not in settings.tracking.allowed_hosts


def test_specific_wildcards_that_cannot_match_foreign_hosts_are_allowed():
    tracking = parse_settings(
        {
            "target": "docker",
            "tracking": {
                "allowedHosts": ["*.mlflow.example.com", "localhost:*"],
                "corsAllowedOrigins": ["https://notebooks.example.com"],
            },
        }
    ).tracking
    assert tracking.allowed_hosts == ["*.mlflow.example.com", "localhost:*"]


@pytest.mark.parametrize(
    ("raw", "path", "reason"),
    [
        ({}, "target", "required"),
        ({"target": "gcp"}, "target", "must be 'docker' or 'aws' (got 'gcp')"),
        ({"target": "docker", "proxy": {"port": 70000}}, "proxy.port", "less than or equal to 65535"),
        ({"target": "docker", "proxy": {"port": 0}}, "proxy.port", "greater than or equal to 1"),
        ({"target": "docker", "proxy": {"maxUploadSize": "10 parsecs"}}, "proxy.maxUploadSize", "is not a size"),
        (
            {"target": "docker", "proxy": {"maxUploadSize": "1k"}},
            "proxy.maxUploadSize",
            "greater than or equal to 1048576",
        ),
        ({"target": "docker", "tracking": {"workers": "four"}}, "tracking.workers", "valid integer"),
        ({"target": "docker", "tracking": {"workerz": 4}}, "tracking.workerz", "did you mean 'workers'"),
        ({"target": "docker", "tracking": {"artifacts": "s3"}}, "tracking.artifacts", "'proxied' or 'direct'"),
        ({"target": "docker", "tracking": {"allowedHosts": ["*"]}}, "tracking.allowedHosts.0", "host check off"),
        ({"target": "docker", "tracking": {"allowedHosts": []}}, "tracking.allowedHosts", "at least 1 item"),
        ({"target": "docker", "aws": {"region": "eu-west-1"}}, "aws", "only valid when target is 'aws'"),
        ({"target": "docker", "bogus": 1}, "bogus", "unknown key"),
        ({"target": "docker", "database": {"image": "postgres:latest"}}, "database.image", "not pinned"),
        ({"target": "docker", "database": {"name": "Robert'); DROP"}}, "database.name", "lowercase identifier"),
        ({"target": "docker", "database": {"name": "_mlflow"}}, "database.name", "a letter, then"),
        ({"target": "docker", "database": {"name": "m" * 58}}, "database.name", "at most 57"),
        (
            {"target": "docker", "database": {"username": "mlflow_server"}},
            "database.username",
            "the owner needs another",
        ),
        ({"target": "docker", "tracking": {"allowedHosts": ["*.*"]}}, "tracking.allowedHosts.0", "matches any host"),
        ({"target": "docker", "tracking": {"allowedHosts": ["?*"]}}, "tracking.allowedHosts.0", "matches any host"),
        (
            {"target": "docker", "tracking": {"corsAllowedOrigins": ["*"]}},
            "tracking.corsAllowedOrigins.0",
            "no wildcards",
        ),
        ({"target": "docker", "artifactStore": {"bucket": "My_Bucket"}}, "artifactStore.bucket", "not a valid bucket"),
        ({"target": "docker", "tracking": {"mlflowVersion": "2.9.2"}}, "tracking.mlflowVersion", "pins"),
        ({"target": "docker", "proxy": {"tls": "maybe"}}, "proxy.tls", "valid boolean"),
        ({"target": "docker", "proxy": {"bindAddress": "not-an-ip"}}, "proxy.bindAddress", "IPv4 or IPv6"),
        ({"target": "docker", "docker": {"host": "/var/run/docker.sock"}}, "docker.host", "expected format"),
        ({"target": "docker", "tracking": {"artifacts": "direct"}}, "tracking.artifacts", "publishes only the proxy"),
        ({"target": "docker", "proxy": {"bindAddress": "0.0.0.0"}}, "proxy.bindAddress", "plain HTTP"),
        (
            {"target": "docker", "proxy": {"tls": True, "tlsHostnames": ["mlflow.lan"]}},
            "proxy.tlsHostnames",
            "not in tracking.allowedHosts",
        ),
        ({"target": "aws", "proxy": {"port": 8080}}, "proxy", "only valid when target is 'docker'"),
        (
            {"target": "docker", "database": {"username": "mlflow_monitor"}},
            "database.username",
            "the metrics exporter's own role",
        ),
        ({"target": "docker", "observability": {"enabled": "sometimes"}}, "observability.enabled", "valid boolean"),
        ({"target": "docker", "observability": {"retentionDays": 0}}, "observability.retentionDays", "greater than"),
        (
            {"target": "docker", "observability": {"grafanaImage": "grafana/grafana"}},
            "observability.grafanaImage",
            "pin",
        ),
        ({"target": "docker", "observability": {"grafana": True}}, "observability.grafana", "did you mean"),
        (
            {"target": "docker", "observability": {"enabled": True, "grafanaPort": 8080}},
            "observability.grafanaPort",
            "is proxy.port",
        ),
        ({"target": "aws", "observability": {"enabled": True}}, "observability", "only valid when target is 'docker'"),
    ],
)
def test_bad_config_names_the_key_and_why(raw, path, reason):
    found = problems(raw)
    assert path in found, found
    assert reason in found[path]


def test_every_problem_is_reported_at_once():
    found = problems(
        {
            "target": "docker",
            "proxy": {"port": 70000, "maxUploadSize": "lots"},
            "tracking": {"workers": 0, "colour": "blue"},
            "aws": {},
        }
    )
    assert set(found) == {"proxy.port", "proxy.maxUploadSize", "tracking.workers", "tracking.colour", "aws"}


def test_error_message_is_one_readable_block_without_traceback_text():
    with pytest.raises(ConfigError) as caught:
        parse_settings({"target": "docker", "proxy": {"port": "http"}})
    message = str(caught.value)
    assert message.startswith("invalid stack configuration (1 problem):")
    assert "mlflow-platform:proxy.port" in message
    assert "Traceback" not in message and "pydantic" not in message.lower()


def test_the_program_raises_config_errors_as_run_errors(monkeypatch):
    """A RunError: the Pulumi engine prints the message only, without a stack trace."""
    from components.config import loader

    monkeypatch.setattr(loader, "read_raw_config", lambda: {"target": "docker", "proxy": {"port": "http"}})
    with pytest.raises(ConfigError) as caught:
        loader.load_settings()
    assert isinstance(caught.value, pulumi.RunError)
    assert str(caught.value).startswith("invalid stack configuration (1 problem):")


def test_sizes_accept_common_spellings():
    for spelling, expected in [
        ("10g", 10 * 1024**3),
        ("512M", 512 * 1024**2),
        ("1.5g", 1536 * 1024**2),
        ("2GiB", 2 * 1024**3),
        (1048576, 1048576),
    ]:
        assert (
            parse_settings({"target": "docker", "proxy": {"maxUploadSize": spelling}}).proxy.max_upload_size == expected
        )


def test_load_settings_reads_the_pulumi_config_namespace():
    pulumi.runtime.set_all_config(
        {
            "mlflow-platform:target": "docker",
            "mlflow-platform:proxy": json.dumps({"port": 9999}),
            "mlflow-platform:tracking": json.dumps({"workers": 3}),
            # Other namespaces are not ours to validate.
            "aws:region": "eu-west-1",
        }
    )
    try:
        settings = load_settings()
    finally:
        pulumi.runtime.set_all_config({})
    assert settings.proxy.port == 9999
    assert settings.tracking.workers == 3


def test_load_settings_rejects_unknown_top_level_keys():
    pulumi.runtime.set_all_config({"mlflow-platform:target": "docker", "mlflow-platform:proxxy": "{}"})
    try:
        with pytest.raises(ConfigError) as caught:
            load_settings()
    finally:
        pulumi.runtime.set_all_config({})
    assert "did you mean 'proxy'" in dict(caught.value.problems)["proxxy"]
