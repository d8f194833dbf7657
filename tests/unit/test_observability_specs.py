"""The dev observability containers' specs (components/specs: prometheus, grafana,
postgres_exporter), checked against the real tools where they are installed (the e2e's Debian
prometheus and postgres exporter)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import yaml

from components.specs import grafana, postgres_exporter, prometheus
from components.specs.prometheus import ScrapeTargets, prometheus_container
from components.versions import MLFLOW_IMAGE_DIR
from images.mlflow import server_contract as contract

TARGETS = ScrapeTargets(mlflow=["mlflow-0:5000"], postgres_exporter=["postgres-exporter:9187"])


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (Debian: apt-get install {name})"
    return path


def help_flags(binary: str) -> set[str]:
    result = subprocess.run([binary, "--help-long"], capture_output=True, text=True, timeout=30)
    return set(re.findall(r"--([a-z][a-z0-9.\-]+)", result.stdout + result.stderr))


def test_prometheus_container_runs_flags_prometheus_has_and_a_config_promtool_reads(tmp_path):
    spec = prometheus_container(TARGETS, retention_days=7)
    flags = {part.split("=", 1)[0].removeprefix("--") for part in spec.command}
    assert flags <= help_flags(tool("prometheus")), flags - help_flags(tool("prometheus"))
    assert "--storage.tsdb.retention.time=7d" in spec.command and f"--storage.tsdb.path={spec.data_dir}" in spec.command
    files = dict(spec.uploads)
    config = tmp_path / "prometheus.yml"
    config.write_text(files[prometheus.CONFIG_FILE])
    # The rule file is at its container path, not here: the syntax, then the rules themselves.
    result = subprocess.run([tool("promtool"), "check", "config", "--syntax-only", str(config)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert yaml.safe_load(files[prometheus.CONFIG_FILE])["rule_files"] == ["/etc/prometheus/rules/alerts.yml"]
    rules = tmp_path / "alerts.yml"
    rules.write_text(files["/etc/prometheus/rules/alerts.yml"])
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_exporter_signs_in_as_its_role_with_a_password_file_only():
    env = postgres_exporter.exporter_env("postgres", 5432, "mlflow", contract.MONITOR_DB_ROLE)
    assert env == {
        "DATA_SOURCE_URI": "postgres:5432/mlflow?sslmode=disable",
        "DATA_SOURCE_USER": "mlflow_monitor",
        "DATA_SOURCE_PASS_FILE": postgres_exporter.PASSWORD_FILE,
    }
    assert not {"DATA_SOURCE_NAME", "DATA_SOURCE_PASS"} & set(env)
    flags = {part.split("=", 1)[0].removeprefix("--") for part in postgres_exporter.exporter_command()}
    assert flags <= help_flags(tool("prometheus-postgres-exporter"))


def test_grafana_provisions_every_repo_file_and_its_data_source_is_the_stack_s_prometheus():
    files = dict(grafana.provisioned_files())
    repo = {p.relative_to(grafana.GRAFANA_DIR).as_posix() for p in grafana.GRAFANA_DIR.rglob("*") if p.is_file()}
    assert len(files) == len(repo) == 3
    assert list(files) == sorted(files)
    datasource = yaml.safe_load(files[f"{grafana.PROVISIONING_DIR}/datasources/prometheus.yml"])
    assert datasource["datasources"][0]["url"] == f"http://{prometheus.PROMETHEUS_HOST}:{prometheus.PROMETHEUS_PORT}"
    provider = yaml.safe_load(files[f"{grafana.PROVISIONING_DIR}/dashboards/mlflow.yml"])
    assert provider["providers"][0]["options"]["path"] == grafana.DASHBOARDS_DIR
    assert f"{grafana.DASHBOARDS_DIR}/mlflow.json" in files


def test_grafana_gets_its_password_from_the_file_and_the_reset_reads_it_on_stdin(tmp_path):
    spec = grafana.grafana_spec("http://localhost:3000/")
    assert spec.env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == spec.password_file
    assert "GF_SECURITY_ADMIN_PASSWORD" not in spec.env
    script = tmp_path / "entrypoint"
    script.write_text(spec.entrypoint_script)
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, timeout=10).returncode == 0
    assert '--password-from-stdin < "$GF_SECURITY_ADMIN_PASSWORD__FILE"' in spec.entrypoint_script
    assert spec.entrypoint_script.rstrip().endswith('exec /run.sh "$@"')


def test_the_boot_step_reads_the_monitor_password_from_its_file(tmp_path):
    sys.path.insert(0, str(MLFLOW_IMAGE_DIR))
    try:
        import mlflow_boot
    finally:
        sys.path.remove(str(MLFLOW_IMAGE_DIR))
    secret = tmp_path / "monitor"
    secret.write_text("m0n1tor\n")
    environ = {f"{contract.DB_MONITOR_PASSWORD}_FILE": str(secret)}
    mlflow_boot.load_file_secrets(environ)
    assert environ[contract.DB_MONITOR_PASSWORD] == "m0n1tor"
