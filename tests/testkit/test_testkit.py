"""End-to-end tests of testkit: real processes, real ports, real auth."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import botocore.exceptions
import psycopg2
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from testkit import (
    LocalPostgres,
    LocalS3,
    ManagedProcess,
    free_port,
    free_ports,
    wait_for_http,
    wait_for_tcp,
)
from testkit.processes import _descendants

# Starts real PostgreSQL and SeaweedFS processes: the end-to-end layer.
pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    """True if pid exists and is not a zombie (dead, waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return stat.rpartition(b")")[2].split()[0] not in (b"Z", b"X")


def _wait_dead(pids: list[int], timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


# -- processes ---------------------------------------------------------------


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(10)
    assert len(set(ports)) == 10
    assert 0 < free_port() < 65536


def test_managed_process_http_server_logs_and_stop(tmp_path):
    port = free_port()
    proc = ManagedProcess(
        [sys.executable, "-u", "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        tmp_path,
        name="http",
        cwd=tmp_path,
    )
    try:
        wait_for_tcp("127.0.0.1", port, timeout=10)
        assert wait_for_http(f"http://127.0.0.1:{port}/", timeout=10) == 200
        assert wait_for_http(f"http://127.0.0.1:{port}/missing", 5, expect_status=(404,)) == 404
        assert proc.is_running()
        deadline = time.monotonic() + 5  # the access log line follows the response
        while "GET /missing" not in proc.log_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "GET /missing" in proc.log_text()
        assert (tmp_path / "http.log").exists()
        assert len(proc.tail(1).splitlines()) == 1
    finally:
        rc = proc.stop(timeout=5)
    assert rc == -15  # exited on SIGTERM, no SIGKILL needed
    assert not proc.is_running() and not _alive(proc.pid)


def test_stop_escalates_to_sigkill_and_reaches_detached_children(tmp_path):
    # The shell ignores SIGTERM and has one child in its own session
    # (like PostgreSQL's children), which killpg() alone would miss.
    proc = ManagedProcess(
        ["sh", "-c", "trap '' TERM; setsid sleep 300 & sleep 300 & echo started; wait"],
        tmp_path,
        name="stubborn",
    )
    deadline = time.monotonic() + 5
    while len(_descendants(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    children = _descendants(proc.pid)
    assert len(children) >= 2
    started = time.monotonic()
    assert proc.stop(timeout=0.5) == -9
    assert time.monotonic() - started < 3
    assert _wait_dead(children) == []
    assert "started" in proc.log_text()


def test_wait_for_tcp_times_out_on_closed_port():
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        wait_for_tcp("127.0.0.1", free_port(), timeout=0.3)
    assert time.monotonic() - started < 2


# -- PostgreSQL --------------------------------------------------------------


def test_postgres_password_auth_databases_and_clean_stop():
    pg = LocalPostgres(password="right-Pa55")
    with pg:
        assert pg.host == "127.0.0.1" and pg.port > 0 and pg.superuser == "postgres"
        assert pg.process.is_running()

        conn = pg.connect()
        with conn, conn.cursor() as cur:
            cur.execute("SHOW listen_addresses")
            assert cur.fetchone()[0] == "127.0.0.1"
            cur.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules")
            assert {row[0] for row in cur.fetchall()} == {"scram-sha-256"}
        conn.close()

        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            pg.connect(password="wrong")
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            pg.connect(user="nobody_here", password="right-Pa55")

        pg.create_role("mlflow_user", "u$er pw/with:odd@chars")
        pg.create_database("mlflow", owner="mlflow_user")
        url = pg.url("mlflow", user="mlflow_user", password="u$er pw/with:odd@chars")
        assert url.startswith("postgresql+psycopg2://mlflow_user:")
        libpq_url = pg.url("mlflow", driver="postgresql", user="mlflow_user", password="u$er pw/with:odd@chars")
        conn = psycopg2.connect(libpq_url)
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
            cur.execute("SELECT current_user, current_database(), sum(x) FROM t")
            assert cur.fetchone() == ("mlflow_user", "mlflow", 42)
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'mlflow'")
            assert cur.fetchone()[0] == "mlflow_user"
        conn.close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            pg.connect("mlflow", user="mlflow_user", password="nope")

        server_pids = [pg.pid, *_descendants(pg.pid)]
        assert len(server_pids) > 3  # postmaster + checkpointer, walwriter, ...
        base_dir = pg.base_dir
        assert (base_dir / "pgdata" / "PG_VERSION").exists()

    assert pg.process.returncode == 0  # clean "fast" shutdown
    assert _wait_dead(server_pids) == []
    assert not base_dir.exists()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host=pg.host, port=pg.port, user="postgres", password="right-Pa55", connect_timeout=1)


def test_postgres_kill_leaves_no_backend_behind():
    pg = LocalPostgres().start()
    try:
        conn = pg.connect()  # an open session: one more child process
        server_pids = [pg.pid, *_descendants(pg.pid)]
        pg.kill()
        assert _wait_dead(server_pids) == []
        conn.close()
    finally:
        pg.close()
    assert not pg.base_dir.exists()


def test_postgres_comes_back_on_the_same_data_port_and_password_after_a_kill_or_a_stop():
    pg = LocalPostgres().start()
    try:
        port, base_dir, first_pid = pg.port, pg.base_dir, pg.pid
        conn = pg.connect()
        with conn, conn.cursor() as cur:
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone()[0] == "on"  # the product's durability (components/specs/durability.py)
            cur.execute("CREATE TABLE acked (n int)")
        conn.autocommit = True
        with conn.cursor() as cur:
            for n in range(200):  # each INSERT commits and is acknowledged on its own
                cur.execute("INSERT INTO acked VALUES (%s)", (n,))
        server_pids = [pg.pid, *_descendants(pg.pid)]
        pg.kill()
        assert _wait_dead(server_pids) == []
        conn.close()
        with pytest.raises(RuntimeError, match="already started"):
            pg.start().start()
        assert (pg.port, pg.base_dir) == (port, base_dir) and pg.pid != first_pid
        conn = pg.connect()
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), min(n), max(n) FROM acked")
            assert cur.fetchone() == (200, 0, 199)  # nothing acknowledged was lost
        conn.close()
        assert "database system was interrupted" in pg.process.log_text()  # it did replay the WAL
        pg.stop()
        assert base_dir.exists() and (pg.data_dir / "PG_VERSION").exists()
        pg.start()
        assert pg.port == port
    finally:
        pg.close()
    assert not base_dir.exists()


# -- S3 ----------------------------------------------------------------------


def _error_code(call) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_s3_roundtrip_auth_and_clean_stop():
    s3 = LocalS3(access_key="TESTKITKEY", secret_key="testkit-secret")
    with s3:
        assert s3.endpoint_url == f"http://127.0.0.1:{s3.port}"
        assert (s3.access_key, s3.secret_key, s3.region) == ("TESTKITKEY", "testkit-secret", "us-east-1")
        client = s3.client()
        client.create_bucket(Bucket="roundtrip")
        payload = os.urandom(5 * 1024 * 1024)
        client.put_object(Bucket="roundtrip", Key="dir/blob.bin", Body=payload)
        body = client.get_object(Bucket="roundtrip", Key="dir/blob.bin")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(payload).hexdigest()
        listed = client.list_objects_v2(Bucket="roundtrip")["Contents"]
        assert [(o["Key"], o["Size"]) for o in listed] == [("dir/blob.bin", len(payload))]
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["roundtrip"]

        no_retry = Config(retries={"max_attempts": 1})
        anonymous = s3.client(config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}))
        wrong_secret = s3.client(aws_secret_access_key="not-the-secret", config=no_retry)
        unknown_key = s3.client(aws_access_key_id="UNKNOWNKEY", config=no_retry)

        assert _error_code(anonymous.list_buckets) == ("AccessDenied", 403)
        assert _error_code(lambda: anonymous.get_object(Bucket="roundtrip", Key="dir/blob.bin")) == (
            "AccessDenied",
            403,
        )
        assert _error_code(lambda: anonymous.put_object(Bucket="roundtrip", Key="x", Body=b"1")) == (
            "AccessDenied",
            403,
        )
        assert _error_code(wrong_secret.list_buckets) == ("SignatureDoesNotMatch", 403)
        assert _error_code(lambda: wrong_secret.get_object(Bucket="roundtrip", Key="dir/blob.bin"))[1] == 403
        assert _error_code(unknown_key.list_buckets) == ("InvalidAccessKeyId", 403)
        # Nothing was written by the refused requests.
        assert [o["Key"] for o in client.list_objects_v2(Bucket="roundtrip")["Contents"]] == ["dir/blob.bin"]

        env = s3.env()
        assert env["MLFLOW_S3_ENDPOINT_URL"] == s3.endpoint_url
        server_pids = [s3.pid, *_descendants(s3.pid)]
        ports, base_dir = list(s3._ports), s3.base_dir

    assert s3.process.returncode == 0  # exited on SIGTERM within the timeout
    assert _wait_dead(server_pids) == []
    assert not base_dir.exists()
    assert [p for port in ports for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")] == []
    with pytest.raises(OSError):
        wait_for_tcp("127.0.0.1", s3.port, timeout=0.2)


def test_s3_comes_back_at_the_same_address_with_its_objects_after_a_kill_or_a_stop():
    s3 = LocalS3().start()
    try:
        endpoint, ports, base_dir = s3.endpoint_url, list(s3._ports), s3.base_dir
        client = s3.client()
        client.create_bucket(Bucket="kept")
        client.put_object(Bucket="kept", Key="k", Body=b"acknowledged")
        server_pids = [s3.pid, *_descendants(s3.pid)]
        s3.kill()
        assert _wait_dead(server_pids) == []
        s3.start()
        assert (s3.endpoint_url, s3._ports, s3.base_dir) == (endpoint, ports, base_dir)
        # The same client (keys, endpoint) works again.
        assert client.get_object(Bucket="kept", Key="k")["Body"].read() == b"acknowledged"
        s3.stop()
        assert base_dir.exists()
        s3.start()
        assert client.get_object(Bucket="kept", Key="k")["Body"].read() == b"acknowledged"
    finally:
        s3.close()
    assert not base_dir.exists()
    assert [p for port in ports for p in Path("/tmp").glob(f"seaweedfs-*-{port}.sock")] == []


def test_the_topology_certificate_is_the_kind_the_stack_makes():
    """components/specs/tls.py: ECDSA P-256, the names as DNS / IP alternative names, server auth;
    the SPKI pin is the key's (what Chromium's --ignore-certificate-errors-spki-list compares)."""
    import base64
    import hashlib
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from testkit.tls import self_signed

    made = self_signed(["mlflow.test", "127.0.0.1"])
    cert = x509.load_pem_x509_certificate(made.cert_pem.encode())
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["mlflow.test"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert made.spki_sha256_b64 == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    private = serialization.load_pem_private_key(made.key_pem.encode(), password=None)
    assert private.public_key().public_numbers() == key.public_numbers()


def test_s3_draws_its_ports_again_when_one_is_taken_before_weed_binds_it(monkeypatch):
    """Seen in CI: a port free_ports() returned was bound by another process first, weed exited
    ("Port allocation failed") and a whole module's topology failed."""
    import socket

    from testkit import s3 as s3_module

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    real, draws = s3_module.free_ports, []

    def first_draw_collides(count, host="127.0.0.1"):
        drawn = real(count, host)
        draws.append(drawn)
        return [taken.getsockname()[1], *drawn[1:]] if len(draws) == 1 else drawn

    monkeypatch.setattr(s3_module, "free_ports", first_draw_collides)
    try:
        with LocalS3() as store:
            assert len(draws) == 2 and taken.getsockname()[1] not in store._ports
            store.client().create_bucket(Bucket="after-a-collision")
    finally:
        taken.close()
