"""The image entrypoint's pure parts: secrets from files, the backend URI, the health probe."""

from __future__ import annotations

import sys
import urllib.parse

import pytest

from components.versions import MLFLOW_IMAGE_DIR
from images.mlflow import server_contract as contract

sys.path.insert(0, str(MLFLOW_IMAGE_DIR))
import mlflow_boot  # noqa: E402


def test_file_secrets_become_process_env(tmp_path):
    secret = tmp_path / "db_password"
    secret.write_text("s3cr3t\n")
    environ = {"MLFLOW_DB_PASSWORD_FILE": str(secret), "UNRELATED_FILE": "/nope"}
    mlflow_boot.load_file_secrets(environ)
    assert environ["MLFLOW_DB_PASSWORD"] == "s3cr3t"
    assert "UNRELATED" not in environ


def test_unreadable_secret_file_is_a_clear_error(tmp_path):
    with pytest.raises(mlflow_boot.BootError, match="MLFLOW_DB_PASSWORD_FILE points to .*missing"):
        mlflow_boot.load_file_secrets({"MLFLOW_DB_PASSWORD_FILE": str(tmp_path / "missing")})


def test_backend_uri_quotes_credentials_and_carries_tls_settings():
    password = "p@ss/w:rd?#%"
    uri = mlflow_boot.backend_store_uri(
        {
            "MLFLOW_DB_HOST": "db.internal",
            "MLFLOW_DB_PORT": "6543",
            "MLFLOW_DB_NAME": "mlflow",
            "MLFLOW_DB_USER": "mlflow",
            "MLFLOW_DB_PASSWORD": password,
            "MLFLOW_DB_SSLMODE": "verify-full",
            "MLFLOW_DB_SSLROOTCERT": "/etc/ssl/rds.pem",
        }
    )
    parsed = urllib.parse.urlsplit(uri)
    assert parsed.scheme == "postgresql+psycopg2"
    assert urllib.parse.unquote(parsed.password) == password
    assert (parsed.hostname, parsed.port, parsed.path) == ("db.internal", 6543, "/mlflow")
    assert urllib.parse.parse_qs(parsed.query) == {
        "sslmode": ["verify-full"],
        "sslrootcert": ["/etc/ssl/rds.pem"],
        # A failover's dead peer is found in seconds, not after ~15 min of retransmissions.
        "connect_timeout": ["10"],
        "keepalives": ["1"],
        "keepalives_idle": ["30"],
        "keepalives_interval": ["10"],
        "keepalives_count": ["3"],
        "tcp_user_timeout": ["30000"],
    }


def test_libpq_takes_the_tcp_options_as_they_are_in_the_uri():
    """SQLAlchemy hands the URI's query to psycopg2 unchanged, and libpq knows every option's
    name (PQconninfoParse refuses an unknown one)."""
    import psycopg2.extensions
    import sqlalchemy

    uri = mlflow_boot.backend_store_uri(
        {"MLFLOW_DB_HOST": "db", "MLFLOW_DB_NAME": "m", "MLFLOW_DB_USER": "u", "MLFLOW_DB_PASSWORD": "p"}
    )
    args, kwargs = sqlalchemy.create_engine(uri).dialect.create_connect_args(sqlalchemy.engine.make_url(uri))
    dsn = psycopg2.extensions.make_dsn(*args, **kwargs)
    parsed = psycopg2.extensions.parse_dsn(dsn)
    assert {k: parsed[k] for k in contract.DB_TCP_OPTIONS} == dict(contract.DB_TCP_OPTIONS)


def test_backend_uri_names_what_is_missing():
    with pytest.raises(mlflow_boot.BootError, match="MLFLOW_DB_HOST, MLFLOW_DB_PASSWORD"):
        mlflow_boot.backend_store_uri({"MLFLOW_DB_NAME": "m", "MLFLOW_DB_USER": "u"})


def test_healthcheck_fails_when_nothing_listens():
    assert mlflow_boot.healthcheck("http://127.0.0.1:9/health", timeout=1) == 1


def test_unreachable_database_fails_with_a_message_not_a_traceback():
    uri = "postgresql+psycopg2://u:p@127.0.0.1:9/db?sslmode=disable"
    with pytest.raises(mlflow_boot.BootError, match="database not reachable after 1s"):
        mlflow_boot.wait_for_database(uri, timeout=1)


def test_auth_config_is_written_owner_only_with_the_cache_on(tmp_path):
    import configparser

    path = tmp_path / "auth.ini"
    uri = "postgresql+psycopg2://u:p%40ss@db:5432/mlflow_auth?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem"
    mlflow_boot.write_auth_config(str(path), uri, {"MLFLOW_AUTH_ADMIN_USERNAME": "root"})
    assert path.stat().st_mode & 0o777 == 0o600
    # Read it the way MLflow's auth app does (default interpolation): '%' must survive.
    config = configparser.ConfigParser()
    config.read(path)
    assert config["mlflow"]["database_uri"] == uri
    assert config["mlflow"]["admin_username"] == "root"
    assert int(config["mlflow"]["auth_cache_ttl_seconds"]) > 0
    # Least privilege by default (MLflow's own default, READ, opens everything to every user);
    # the browser test proves a user is shown only the experiment granted to them.
    assert config["mlflow"]["default_permission"] == "NO_PERMISSIONS"


def test_auth_database_uri_keeps_credentials_and_changes_only_the_database():
    uri = "postgresql+psycopg2://u:p%40ss@db:5432/mlflow?sslmode=verify-full"
    assert (
        mlflow_boot.with_database(uri, "mlflow_auth")
        == "postgresql+psycopg2://u:p%40ss@db:5432/mlflow_auth?sslmode=verify-full"
    )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _s3_env(port: int) -> dict[str, str]:
    return {
        "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }


def test_an_object_store_that_never_answers_fails_after_the_bound_with_a_message():
    import time

    started = time.monotonic()
    with pytest.raises(mlflow_boot.BootError, match="object store not reachable after 2s"):
        mlflow_boot.ensure_bucket("mlflow", _s3_env(_free_port()), timeout=2)
    assert time.monotonic() - started < 15


def test_boot_waits_for_an_object_store_that_starts_later(monkeypatch):
    """The store comes up 2 s after boot starts waiting (first 503, then a bucket): boot creates it."""
    import http.server
    import threading
    import time

    port = _free_port()
    requests = []

    class Store(http.server.BaseHTTPRequestHandler):
        def _answer(self, status: int) -> None:
            requests.append((self.command, status))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_HEAD(self):  # head_bucket: "not initialized" first, then "no such bucket"
            self._answer(503 if len(requests) < 2 else 404)

        def do_PUT(self):  # create_bucket
            self._answer(200)

        def log_message(self, *args):
            pass

    server = None

    def start():
        nonlocal server
        time.sleep(2)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Store)
        server.serve_forever()

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    try:
        assert mlflow_boot.ensure_bucket("mlflow", _s3_env(port), timeout=30) is True
    finally:
        while server is None:
            time.sleep(0.1)
        server.shutdown()
        server.server_close()
    assert requests[:2] == [("HEAD", 503), ("HEAD", 503)]
    assert requests[-1] == ("PUT", 200)


@pytest.mark.e2e
def test_boot_sets_sse_s3_as_the_default_of_the_bucket_it_creates_on_the_real_weed():
    """The bucket's default encryption after prepare's two steps, as S3 reports it; a store that
    refuses (here: no such bucket) is a BootError naming the bucket."""
    from images.mlflow import server_contract as contract
    from testkit.s3 import LocalS3

    with LocalS3() as s3:
        environ = {**s3.env(), contract.BUCKET_ENCRYPTION: contract.SSE_S3}
        assert mlflow_boot.ensure_bucket("mlflow", environ, timeout=10) is True
        mlflow_boot.ensure_bucket_encryption("mlflow", environ[contract.BUCKET_ENCRYPTION], environ)
        mlflow_boot.ensure_bucket_encryption("mlflow", contract.SSE_S3, environ)  # every boot: idempotent
        (rule,) = s3.client().get_bucket_encryption(Bucket="mlflow")["ServerSideEncryptionConfiguration"]["Rules"]
        assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        s3.client().put_object(Bucket="mlflow", Key="k", Body=b"x")
        assert s3.client().head_object(Bucket="mlflow", Key="k")["ServerSideEncryption"] == "AES256"
        with pytest.raises(mlflow_boot.BootError, match="default encryption of bucket 'missing'"):
            mlflow_boot.ensure_bucket_encryption("missing", contract.SSE_S3, environ)


# MLFLOW_BOOT_SCHEMA: what the boot step may do with a schema that is not this image's head.
HEAD, OLDER, NEWER = "head0000", "older000", "newer000"


@pytest.mark.parametrize("mode", ["migrate", "require-current"])
@pytest.mark.parametrize("state", ["empty", "current"])
def test_both_modes_create_an_empty_database_and_accept_a_current_one(mode, state):
    mlflow_boot.check_schema(
        "tracking", mlflow_boot.SchemaState(state, HEAD if state == "current" else None, HEAD), mode
    )


def test_migrate_mode_upgrades_an_older_schema():
    mlflow_boot.check_schema("tracking", mlflow_boot.SchemaState("behind", OLDER, HEAD), "migrate")


def test_require_current_refuses_an_older_schema_naming_both_revisions_and_the_way_out():
    with pytest.raises(mlflow_boot.BootError) as refused:
        mlflow_boot.check_schema("tracking", mlflow_boot.SchemaState("behind", OLDER, HEAD), "require-current")
    message = str(refused.value)
    assert OLDER in message and HEAD in message
    assert "MLFLOW_BOOT_SCHEMA=require-current" in message and "python -m mlflow_boot upgrade" in message


@pytest.mark.parametrize("mode", ["migrate", "require-current"])
def test_a_schema_newer_than_the_image_is_refused_in_both_modes(mode):
    with pytest.raises(mlflow_boot.BootError, match=f"auth schema is at {NEWER}.*head is {HEAD}.*newer MLflow"):
        mlflow_boot.check_schema("auth", mlflow_boot.SchemaState("ahead", NEWER, HEAD), mode)


def test_schema_mode_defaults_to_migrate_and_refuses_an_unknown_value():
    assert mlflow_boot.schema_mode({}) == "migrate"
    assert mlflow_boot.schema_mode({"MLFLOW_BOOT_SCHEMA": "require-current"}) == "require-current"
    with pytest.raises(
        mlflow_boot.BootError, match="MLFLOW_BOOT_SCHEMA='upgrade-please': expected one of migrate, require-current"
    ):
        mlflow_boot.schema_mode({"MLFLOW_BOOT_SCHEMA": "upgrade-please"})


def test_upgrade_migrates_whatever_the_env_says_touches_no_bucket_and_never_execs(monkeypatch):
    calls = []
    monkeypatch.setattr(mlflow_boot, "prepare", lambda environ, **kwargs: calls.append(kwargs) or "upgraded")
    monkeypatch.setattr(mlflow_boot.os, "execvp", lambda *a: pytest.fail("upgrade must not exec a server"))
    monkeypatch.setenv("MLFLOW_BOOT_SCHEMA", "require-current")
    assert mlflow_boot.main(["upgrade"]) == 0
    assert calls == [{"mode": "migrate", "bucket": False}]


def test_a_refused_schema_exits_1_with_one_error_line_and_no_server(monkeypatch, caplog):
    def refuse(environ, **kwargs):
        raise mlflow_boot.BootError("the tracking schema is at older000, this image needs head0000")

    monkeypatch.setattr(mlflow_boot, "prepare", refuse)
    monkeypatch.setattr(mlflow_boot.os, "execvp", lambda *a: pytest.fail("a refused boot must not start the server"))
    assert mlflow_boot.main(["mlflow", "server"]) == 1
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "the tracking schema is at older000, this image needs head0000"
    ]


def test_boot_empties_the_prometheus_dir_of_a_previous_run(tmp_path):
    metrics = tmp_path / "prometheus"
    metrics.mkdir()
    (metrics / "counter_1234.db").write_bytes(b"old worker")
    argv = ["mlflow", "server", "--expose-prometheus", str(metrics), "--port", "5000"]
    assert mlflow_boot.reset_metrics_dir(argv) == str(metrics)
    assert metrics.is_dir() and list(metrics.iterdir()) == []
    # A server without the exporter: nothing to do.
    assert mlflow_boot.reset_metrics_dir(["mlflow", "server"]) is None
