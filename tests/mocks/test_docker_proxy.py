"""The dev stack's proxy (components/docker/proxy.py): nginx, the only published port, basic auth,
optional self-signed TLS, replaced with the MLflow containers."""

from __future__ import annotations

import json

from tests.mocks.docker_finders import CONTAINER, MLFLOW, NGINX, containers
from tests.pulumi_mocks import reveal, run_program, secret_paths, stack_config


def test_only_the_proxy_publishes_a_port_on_loopback(dev_run):
    published = {name: c.inputs.get("ports") for name, c in containers(dev_run).items() if c.inputs.get("ports")}
    assert list(published) == [NGINX]
    (port,) = published[NGINX]
    assert port == {"internal": 8080, "external": 8080, "ip": "127.0.0.1", "protocol": "tcp"}
    assert containers(dev_run)[NGINX].inputs["name"] == "mlflow-dev-nginx"


def test_the_proxy_withholds_presigned_transfers_clients_cannot_reach_and_resolves_upstreams(dev_run):
    """MinIO (http://minio:9000) is reachable from the containers only: nginx answers MLflow's
    capability probe with no direct transfers; upstream names go through Docker's DNS."""
    nginx = containers(dev_run)[NGINX].plain
    (conf,) = [u["content"] for u in nginx["uploads"] if u["file"] == "/etc/nginx/nginx.conf"]
    assert "sub_filter '\"multipart_uploads_enabled\":true' '\"multipart_uploads_enabled\":false';" in conf
    assert "sub_filter '\"multipart_downloads_enabled\":true' '\"multipart_downloads_enabled\":false';" in conf
    assert "resolver 127.0.0.11 valid=5s ipv6=off;" in conf
    assert "server mlflow-0:5000 max_fails=1 fail_timeout=1s resolve;" in conf and "zone mlflow_upstreams" in conf


def test_nginx_gets_the_rendered_config_and_a_sha512_htpasswd(dev_run):
    uploads = {u["file"]: u for u in reveal(containers(dev_run)[NGINX].inputs["uploads"])}
    conf = uploads["/etc/nginx/nginx.conf"]["content"]
    assert "client_max_body_size 10g;" in conf and "server mlflow-0:5000 max_fails=1 fail_timeout=1s resolve;" in conf
    htpasswd = uploads["/etc/nginx/mlflow/htpasswd"]
    assert htpasswd["content"].startswith("mlflow:$6$")
    assert htpasswd["owner"] == "101"


def test_tls_adds_a_generated_certificate_and_https_uri():
    config = stack_config("dev")
    config["mlflow-platform:proxy"] = json.dumps({"tls": True, "port": 8443})
    run = run_program(config, stack="dev")
    key = run.one("tls:index/privateKey:PrivateKey")
    assert key.name == "proxy-tls-key"
    assert key.inputs["algorithm"] == "ECDSA"
    cert = run.one("tls:index/selfSignedCert:SelfSignedCert")
    assert cert.name == "proxy-tls-cert"
    assert cert.inputs["dnsNames"] == ["localhost"]
    assert "privateKeyPem" in secret_paths(cert.inputs)
    nginx = run.one(CONTAINER, "nginx")
    files = {u["file"]: u for u in reveal(nginx.inputs["uploads"])}
    assert files["/etc/nginx/mlflow/tls.key"]["permissions"] == "0400"
    assert nginx.inputs["ports"][0]["internal"] == 8443
    assert run.outputs["trackingUri"][0] == "https://localhost:8443"
    assert run.outputs["tlsCertificate"][0].startswith("-----BEGIN CERTIFICATE-----")


def test_nginx_starts_after_mlflow_and_is_replaced_with_it(dev_run):
    by_name = containers(dev_run)
    assert dev_run.depends_on(by_name[NGINX], by_name[MLFLOW])
    assert by_name[NGINX].replace_with == [by_name[MLFLOW].urn]
