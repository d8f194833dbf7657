"""The pure parts, without servers: location rewriting, COPY encoding, ordering, URLs, progress."""

from __future__ import annotations

import io
import math
import threading
import time
import urllib.parse

import pytest

from images.mlflow import server_contract as contract
from migrate import copy_data, progress, reachability, schema, target
from migrate.artifacts import Destination, Rewriter
from migrate.errors import MigrationError, mask_url, redact
from migrate.locations import Kind, LocalRoot, Where
from migrate.progress import Progress

PROXIED = Destination("bkt", "", "proxied")
DIRECT = Destination("bkt", "team/mlflow", "direct")

# The libpq TCP options every platform URI carries (server_contract.DB_TCP_OPTIONS).
TCP_QUERY = urllib.parse.urlencode(dict(contract.DB_TCP_OPTIONS))


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("/data/mlruns/1/abc/artifacts", "mlflow-artifacts:/1/abc/artifacts"),
        ("file:///data/mlruns/1/abc/artifacts", "mlflow-artifacts:/1/abc/artifacts"),
        ("file://localhost/data/mlruns/1", "mlflow-artifacts:/1"),
        ("file:///data/mlruns/2/my%20run/artifacts", "mlflow-artifacts:/2/my run/artifacts"),
        ("/data/mlruns/1/models/m-1/artifacts/", "mlflow-artifacts:/1/models/m-1/artifacts"),
        ("/data/mlruns", "mlflow-artifacts:/"),
        ("mlflow-artifacts:/3/xyz/artifacts", "mlflow-artifacts:/3/xyz/artifacts"),
        # A client given a full server URL records the host form; the path is the same layout.
        ("mlflow-artifacts://old-server:5000/1/abc", "mlflow-artifacts:/1/abc"),
        # MLflow 1.x with a sqlite:/// URI and the default root, run from /data.
        ("./mlruns/2/abc/artifacts", "mlflow-artifacts:/2/abc/artifacts"),
        ("mlruns/2/abc/artifacts/model", "mlflow-artifacts:/2/abc/artifacts/model"),
        ("./mlruns/../mlruns/2", "mlflow-artifacts:/2"),
        ("./other/2", "./other/2"),
        ("../mlruns/2", "../mlruns/2"),
        ("C:\\Users\\alice\\mlruns\\1", "C:\\Users\\alice\\mlruns\\1"),
        # Not under the root: left exactly as they are.
        ("/data/mlruns2/1/abc", "/data/mlruns2/1/abc"),
        ("/data/other/1", "/data/other/1"),
        ("file://otherhost/data/mlruns/1", "file://otherhost/data/mlruns/1"),
        ("s3://elsewhere/1/abc", "s3://elsewhere/1/abc"),
        ("runs:/abc/model", "runs:/abc/model"),
        ("models:/m-123", "models:/m-123"),
        ("", ""),
        (None, None),
    ],
)
def test_proxied_rewrite(uri, expected):
    assert Rewriter("/data/mlruns/", PROXIED, cwd="/data").rewrite(uri) == expected


@pytest.mark.parametrize(
    "root, cwd",
    [("./mlruns", "/home/alice/project"), ("mlruns", "/home/alice/project"), ("/home/alice/project/mlruns", "/")],
)
def test_relative_root_and_locations_resolve_against_the_recorded_cwd(root, cwd):
    """MLflow 1.x resolves `./mlruns` against its process's working directory, so a relative
    recorded root and relative locations name the same folder when joined to the same cwd."""
    rewriter = Rewriter(root, PROXIED, cwd=cwd)
    assert rewriter.root == "/home/alice/project/mlruns"
    assert rewriter.rewrite("/home/alice/project/mlruns/4/r/artifacts") == "mlflow-artifacts:/4/r/artifacts"
    if not root.startswith("/"):
        assert rewriter.rewrite("./mlruns/4/r/artifacts") == "mlflow-artifacts:/4/r/artifacts"


def test_location_kinds():
    local = LocalRoot("/data/mlruns", "/data")
    assert local.where("./mlruns/1") == Where(Kind.UNDER_ROOT, "1")
    assert local.where("runs:/abc/model").kind is Kind.REGISTRY
    assert local.where("models:/adder/1").kind is Kind.REGISTRY
    for remote in ("s3://other/1", "https://host/x", "dbfs:/x", "file://nas/data/mlruns/1", "gs://b/k"):
        assert local.where(remote).kind is Kind.REMOTE, remote
    for outside in ("/elsewhere/1", "./mlruns2/1", "file:///data/x", "C:/mlruns/1"):
        assert local.where(outside).kind is Kind.LOCAL_OUTSIDE, outside
    assert local.where(None) is None and local.where("") is None


def test_direct_rewrite_keeps_the_prefix():
    rewriter = Rewriter("/data/mlruns", DIRECT)
    assert rewriter.rewrite("/data/mlruns/1/abc/artifacts") == "s3://bkt/team/mlflow/1/abc/artifacts"
    assert rewriter.rewrite("/data/mlruns") == "s3://bkt/team/mlflow"
    assert DIRECT.key("1/abc/artifacts/x.txt") == "team/mlflow/1/abc/artifacts/x.txt"
    assert Destination.parse("s3://bkt", "direct").uri("0") == "s3://bkt/0"


def test_destination_must_be_s3():
    with pytest.raises(MigrationError, match="s3://bucket"):
        Destination.parse("gs://bucket/x", "proxied")


def test_trace_tags_change_only_the_artifact_location_tag():
    transform = Rewriter("/r", PROXIED).row_transform("trace_tags", ["key", "value", "request_id"])
    assert transform(("mlflow.artifactLocation", "/r/1/traces/t/artifacts", "t")) == (
        "mlflow.artifactLocation",
        "mlflow-artifacts:/1/traces/t/artifacts",
        "t",
    )
    assert transform(("user.note", "/r/1/x", "t")) == ("user.note", "/r/1/x", "t")
    assert Rewriter("/r", PROXIED).row_transform("params", ["key", "value", "run_uuid"]) is None


def test_copy_text_encoding():
    text = copy_data.formatter("varchar")
    assert text("a\tb\nc\\d\re") == "a\\tb\\nc\\\\d\\re"
    assert text(None) == "\\N" and text(12) == "12" and text(b"bytes") == "bytes"
    with pytest.raises(ValueError, match="NUL"):
        text("a\x00b")
    boolean = copy_data.formatter("bool")
    assert [boolean(v) for v in (0, 1, "true", "0", None)] == ["f", "t", "t", "f", "\\N"]
    integer = copy_data.formatter("int8")
    assert integer(3.0) == "3" and integer(2**40) == str(2**40)
    with pytest.raises(ValueError):
        integer(3.5)
    real = copy_data.formatter("float8")
    assert [real(v) for v in (math.nan, math.inf, -math.inf, 0.1 + 0.2, 5)] == [
        "NaN",
        "Infinity",
        "-Infinity",
        "0.30000000000000004",
        "5.0",
    ]
    assert copy_data.formatter("bytea")(b"\x00\xff") == "\\\\x00ff"
    assert copy_data.formatter("json")('{"a": "\t"}') == '{"a": "\\t"}'


def test_foreign_key_order_puts_parents_first():
    tables = {
        name: schema.Table(name, parents=set(parents))
        for name, parents in {
            "metrics": {"runs"},
            "runs": {"experiments"},
            "experiments": set(),
            "tags": {"runs"},
            "self_ref": {"self_ref"},
        }.items()
    }
    tables["self_ref"].parents = set()  # catalog drops self references
    assert schema.foreign_key_order(tables, set(tables)) == ["experiments", "self_ref", "runs", "metrics", "tags"]
    tables["experiments"].parents = {"tags"}
    with pytest.raises(MigrationError, match="cycle"):
        schema.foreign_key_order(tables, set(tables))


def test_inside_a_platform_server_the_migration_signs_in_as_the_schema_owner(tmp_path):
    """The servers' own role may not create a schema or reset a sequence: the owner's credentials."""
    (tmp_path / "owner").write_text("owner-pw\n")
    (tmp_path / "server").write_text("server-pw\n")
    url = target.url_from_platform_env(
        {
            "MLFLOW_DB_HOST": "postgres",
            "MLFLOW_DB_NAME": "mlflow",
            "MLFLOW_DB_USER": "mlflow_server",
            "MLFLOW_DB_PASSWORD_FILE": str(tmp_path / "server"),
            "MLFLOW_DB_OWNER_USER": "mlflow",
            "MLFLOW_DB_OWNER_PASSWORD_FILE": str(tmp_path / "owner"),
            "MLFLOW_DB_SSLMODE": "disable",
        }
    )
    assert url == f"postgresql+psycopg2://mlflow:owner-pw@postgres:5432/mlflow?sslmode=disable&{TCP_QUERY}"


def test_urls_never_show_the_password(tmp_path):
    assert mask_url("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("failed for p@ss here", "p@ss") == "failed for *** here"
    secret = tmp_path / "pw"
    secret.write_text("p@ss:/word\n")
    url = target.url_from_platform_env(
        {
            "MLFLOW_DB_HOST": "db.internal",
            "MLFLOW_DB_NAME": "mlflow",
            "MLFLOW_DB_USER": "mlflow",
            "MLFLOW_DB_PASSWORD_FILE": str(secret),
            "MLFLOW_DB_SSLMODE": "verify-full",
            "MLFLOW_DB_SSLROOTCERT": "/certs/rds.pem",
        }
    )
    assert url == (
        "postgresql+psycopg2://mlflow:p%40ss%3A%2Fword@db.internal:5432/mlflow"
        f"?sslmode=verify-full&sslrootcert=%2Fcerts%2Frds.pem&{TCP_QUERY}"
    )
    assert target.password_of(url) == "p@ss:/word"
    assert target.normalize("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert (
        target.resolve_url(None, {"MLFLOW_MIGRATE_TARGET_URL": "postgresql://u@h/db"})[1] == "MLFLOW_MIGRATE_TARGET_URL"
    )
    with pytest.raises(MigrationError, match="no target database"):
        target.resolve_url(None, {})


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_logs_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    bar = Progress(200, "rows", stream=out, log_interval=0)
    bar.advance(50, "metrics")
    bar.advance(150)
    bar.close()
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and text.endswith("\n") and len(lines) == 4  # start, 2 advances, end
    assert all(line.strip() for line in lines) and text.isascii()
    assert "25%" in lines[1] and "50/200" in lines[1] and "metrics" in lines[1]
    assert "100%" in lines[-1] and "200/200" in lines[-1] and "metrics" in lines[-1]
    bar.close()  # a second close draws nothing
    assert out.getvalue() == text


def test_progress_log_lines_are_rate_limited_and_thread_safe():
    out = io.StringIO()
    bar = Progress(8 * 2000, "rows", stream=out)  # the default: a line every 5 s at most

    def worker():
        for _ in range(2000):
            bar.advance(1, "runs")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bar.close()
    lines = out.getvalue().splitlines(keepends=True)
    assert bar.done == 16000
    assert len(lines) == 2 and all(line.endswith("\n") and "\r" not in line for line in lines)
    assert "16,000/16,000" in lines[-1]

    out = io.StringIO()
    bar = Progress(100, "bytes", stream=out, log_interval=0.2)
    started = time.monotonic()
    for _ in range(100):
        bar.advance(1)
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    bar.close()
    lines = out.getvalue().splitlines(keepends=True)
    assert 3 <= len(lines) <= 2 + elapsed / 0.2 + 1
    assert all(line.endswith("\n") and "\r" not in line for line in lines)


def test_progress_redraws_in_place_on_a_terminal():
    out = Terminal()
    bar = Progress(1000, "rows", stream=out)
    for _ in range(10):
        bar.advance(100, "metrics")
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    last = text.rsplit("\r", 1)[-1]
    assert "100%" in last and "1,000/1,000" in last and "metrics" in last

    out = Terminal()
    bar = Progress(3 * 1024 * 1024, "bytes", stream=out)
    bar.advance(3 * 1024 * 1024)
    bar.close()
    assert "3.00M/3.00M" in out.getvalue().rsplit("\r", 1)[-1]


def test_progress_draws_nothing_when_off_or_idle(monkeypatch):
    quiet = io.StringIO()
    for bar in (Progress(10, stream=quiet, enabled=False), Progress(0, stream=quiet)):
        bar.advance(10)
        bar.close()
    assert quiet.getvalue() == ""
    # The MLflow image has no tqdm: the migration still runs, with a note instead of a bar.
    monkeypatch.setattr(progress, "_tqdm", None)
    monkeypatch.setattr(progress, "_missing_noted", False)
    out = io.StringIO()
    for _ in range(2):
        bar = Progress(10, stream=out)
        bar.advance(10, "runs")
        bar.close()
    assert out.getvalue().splitlines() == ["note: no progress is shown: tqdm is not installed (see docs/migrate.md)"]


def test_server_key_resolves_like_the_server():
    """Proxied: the server maps mlflow-artifacts:/<path> to <destination>/<path>; a host form
    sends the client to another server. Direct: only s3:// of the destination bucket and prefix."""
    prefixed = Destination("bkt", "team/mlflow", "proxied")
    assert reachability.server_key("mlflow-artifacts:/1/r/artifacts", prefixed) == "team/mlflow/1/r/artifacts"
    assert reachability.server_key("mlflow-artifacts:/", PROXIED) == ""
    for unresolved in ("mlflow-artifacts://host:5000/1/r", "./mlruns/1/r", "/data/mlruns/1", "s3://bkt/1", None):
        assert reachability.server_key(unresolved, PROXIED) is None, unresolved
    assert reachability.server_key("s3://bkt/team/mlflow/1/r/artifacts", DIRECT) == "team/mlflow/1/r/artifacts"
    for unresolved in ("s3://other/team/mlflow/1", "s3://bkt/team/other/1", "mlflow-artifacts:/1"):
        assert reachability.server_key(unresolved, DIRECT) is None, unresolved


def _locations(rows):
    return {("runs", "artifact_uri"): rows}


def test_reachability_check_needs_every_file_where_the_server_looks():
    rewriter = Rewriter("/p/mlruns", PROXIED, cwd="/p")
    files = {"1/a/artifacts/x.txt": 3, "1/a/artifacts/d/y.bin": 5, "1/b/artifacts/z": 1}
    source = _locations({("a",): "./mlruns/1/a/artifacts", ("b",): "./mlruns/1/b/artifacts", ("c",): "runs:/a/m"})
    good = {("a",): "mlflow-artifacts:/1/a/artifacts", ("b",): "mlflow-artifacts:/1/b/artifacts", ("c",): "runs:/a/m"}
    report = reachability.check(source, _locations(good), rewriter, files, dict(files), keep_unmapped=False, limit=0)
    assert (report.problems, report.checked, report.registry) == ([], 2, 1)

    # Copied unchanged (the 1.x bug) or an object missing / of another size: each row is named.
    left = {**good, ("a",): "./mlruns/1/a/artifacts"}
    objects = {**files, "1/b/artifacts/z": 2}
    report = reachability.check(source, _locations(left), rewriter, files, objects, keep_unmapped=False, limit=0)
    assert len(report.problems) == 2
    assert "runs.artifact_uri of a: stored as './mlruns/1/a/artifacts', which the new server" in report.problems[0]
    assert "runs.artifact_uri of b: 'mlflow-artifacts:/1/b/artifacts' names 1 file(s)" in report.problems[1]


def test_reachability_unmapped_pass_only_when_kept_and_unchanged():
    rewriter = Rewriter("/p/mlruns", PROXIED)
    source = _locations({("a",): "s3://other/x", ("b",): "/elsewhere/y"})
    same = _locations({("a",): "s3://other/x", ("b",): "/elsewhere/y"})
    kept = reachability.check(source, same, rewriter, {}, {}, keep_unmapped=True, limit=0)
    assert (kept.problems, kept.kept) == ([], 2)
    refused = reachability.check(source, same, rewriter, {}, {}, keep_unmapped=False, limit=0)
    assert len(refused.problems) == 2 and "another store" in refused.problems[0]


def test_reachability_samples_beyond_the_limit():
    rewriter = Rewriter("/p/mlruns", PROXIED)
    rows = {(str(i),): f"/p/mlruns/1/{i}/artifacts" for i in range(50)}
    planned = reachability.planned_locations(_locations(rows), rewriter)
    report = reachability.check(_locations(rows), planned, rewriter, {}, {}, keep_unmapped=False, limit=10, seed=1)
    assert (report.checked, report.sampled) == (10, True)
