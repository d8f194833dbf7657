"""`make backup` / `make restore BACKUP=...`: one self-contained, timestamped backup of a stack's
metadata database (and the basic-auth database when there is one) and of its bucket, and its
restore into a running stack, verified against the backup's manifest.

A backup folder (mode 0700, written as `.<name>.partial` and renamed when complete):

    manifest.json      MLflow version, per database its schema revisions and rows per table,
                       the bucket's objects (key, size, SHA-256), SHA-256 and size of every file
    <database>.dump    `pg_dump --format=custom` inside one exported REPEATABLE READ snapshot,
                       the same snapshot the row counts are read in: they describe the dump
    objects.tar        every object of the bucket (pax tar, the exact key in a pax header),
                       listed after the snapshot, so every object a dumped row names is in it

Restore refuses a target that holds data (rows a fresh MLflow would not have made, or any
object) unless `--replace`; it checks every file's SHA-256 first, stops the servers, recreates
each database and restores it as the owner (`--no-owner --no-privileges`: the servers' boot step
grants its role again), compares rows and revisions with the manifest, starts the servers, loads
the objects and compares each object's size and SHA-256, read back from the store.

    python -m operations.backup backup  [--stack dev] [--dir backups]
    python -m operations.backup restore BACKUP [--stack dev] [--replace]
    python -m operations.backup verify  BACKUP
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from components.specs.mlflow_server import auth_database_name
from migrate.schema import BOOTSTRAP_ROWS, RUNTIME_TABLES
from operations.bucket_stream import KEY_HEADER
from operations.targets import Command, DockerTarget, OperationError, Target

MANIFEST = "manifest.json"
FORMAT = 1
OBJECTS_FILE = "objects.tar"
STAMP = "%Y%m%dT%H%M%SZ"  # a folder's UTC timestamp, in its name and its manifest's `created`
SCHEMA_TABLE = "alembic_version"
CHUNK = 8 << 20
# Every base table of the public schema; their exact row counts are read in the same
# REPEATABLE READ transaction (one UNION ALL: query_to_xml would need a libxml build).
TABLES_SQL = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
    "WHERE s.nspname = 'public' AND c.relkind = 'r' ORDER BY 1"
)
_SENTINEL = "__mlflow_platform_end__"

Say = Callable[[str], None]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class PsqlSession:
    """One psql process kept open (its snapshot lives as long as its transaction)."""

    def __init__(self, command: Command) -> None:
        argv = [*command.argv, "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1"]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=command.env
        )

    def query(self, statement: str) -> list[list[str]]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(f"{statement};\n\\echo {_SENTINEL}\n")
            stdin.flush()
        except BrokenPipeError:
            pass
        rows: list[list[str]] = []
        while (line := stdout.readline()) != "":
            line = line.rstrip("\n")
            if line == _SENTINEL:
                return rows
            rows.append(line.split("\t"))
        self.process.wait(30)
        error = self.process.stderr.read() if self.process.stderr else ""
        raise OperationError(f"psql failed on {statement.split()[0]}...: {error.strip()}")

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write("\\q\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> PsqlSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run(command: Command, *, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> bytes:
    """Run to completion; the stdout given, else captured and returned; fail with its stderr."""
    result = subprocess.run(
        command.argv,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=command.env,
    )
    if result.returncode != 0:
        tool = next((a for a in command.argv if a in ("pg_dump", "pg_restore", "psql")), command.argv[0])
        raise OperationError(
            f"{Path(tool).name} failed ({result.returncode}): {result.stderr.decode(errors='replace').strip()}"
        )
    return result.stdout or b""


def _json_lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


# -- databases -------------------------------------------------------------------------------


def databases_of(target: Target) -> list[str]:
    """The metadata database, and the basic-auth app's when it exists."""
    auth = auth_database_name(target.database)
    return [target.database, *([auth] if database_exists(target, auth) else [])]


def _table_facts(session: PsqlSession) -> tuple[dict[str, int], dict[str, str]]:
    tables = [r[0] for r in session.query(TABLES_SQL)]
    counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {_quote(t)}" for t in tables if "'" not in t)
    rows = {name: int(count) for name, count in session.query(counts)} if counts else {}
    revisions = {}
    for table in sorted(t for t in rows if t.startswith(SCHEMA_TABLE)):
        found = session.query(f"SELECT version_num FROM {_quote(table)}")
        revisions[table] = ",".join(sorted(r[0] for r in found))
    return rows, revisions


def dump_database(target: Target, database: str, path: Path) -> dict[str, Any]:
    """pg_dump -Fc in an exported snapshot, and the rows and revisions of that same snapshot."""
    with PsqlSession(target.postgres("psql", database)) as session:
        session.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = session.query("SELECT pg_export_snapshot()")[0][0]
        rows, revisions = _table_facts(session)
        with open(path, "wb") as out:
            _run(target.postgres("pg_dump", database, "--format=custom", f"--snapshot={snapshot}"), stdout=out)
        session.query("COMMIT")
    return {
        "file": path.name,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "rows": rows,
        "revisions": revisions,
    }


def database_exists(target: Target, database: str) -> bool:
    with PsqlSession(target.postgres("psql", "postgres")) as session:
        return bool(session.query(f"SELECT 1 FROM pg_database WHERE datname = '{database}'"))


def user_rows(target: Target, database: str) -> dict[str, int]:
    """Rows a fresh MLflow would not have made itself (migrate.schema's definition of empty);
    none in a database that does not exist."""
    if not database_exists(target, database):
        return {}
    with PsqlSession(target.postgres("psql", database)) as session:
        tables = [r[0] for r in session.query(TABLES_SQL)]
        found = {}
        for table in tables:
            if table in RUNTIME_TABLES or table.startswith(SCHEMA_TABLE):
                continue
            statement = f"SELECT count(*) FROM {_quote(table)}"
            if table in BOOTSTRAP_ROWS:
                statement += f" WHERE NOT ({BOOTSTRAP_ROWS[table]})"
            count = int(session.query(statement)[0][0])
            if count:
                found[table] = count
    return found


def restore_database(target: Target, database: str, dump: Path) -> None:
    """Drop and create the database as the owner, then restore the dump in one transaction."""
    with PsqlSession(target.postgres("psql", "postgres")) as session:
        # WITH (FORCE): PostgreSQL 13+ ends the sessions still open on it (the servers are stopped).
        session.query(f"DROP DATABASE IF EXISTS {_quote(database)} WITH (FORCE)")
        session.query(f"CREATE DATABASE {_quote(database)} OWNER {_quote(target.owner)}")
    with open(dump, "rb") as source:
        _run(
            target.postgres(
                "pg_restore", database, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"
            ),
            stdin=source,
        )


def database_differences(target: Target, database: str, expected: dict[str, Any]) -> list[str]:
    with PsqlSession(target.postgres("psql", database)) as session:
        rows, revisions = _table_facts(session)
    problems = []
    if revisions != expected["revisions"]:
        problems.append(f"{database}: schema revisions {revisions} != {expected['revisions']}")
    for table in sorted(set(rows) | set(expected["rows"])):
        got, want = rows.get(table), expected["rows"].get(table)
        if got != want:
            problems.append(f"{database}.{table}: {got} rows, the backup has {want}")
    return problems


# -- the bucket ------------------------------------------------------------------------------


def tar_objects(path: Path) -> Iterator[tuple[str, int, str]]:
    """(key, size, sha256) of every object in an objects.tar."""
    with tarfile.open(path, mode="r:") as tar:
        for member in tar:
            data = tar.extractfile(member)
            if data is None or KEY_HEADER not in member.pax_headers:
                raise OperationError(f"{path}: member {member.name} is not an object")
            digest = hashlib.sha256()
            while chunk := data.read(CHUNK):
                digest.update(chunk)
            yield member.pax_headers[KEY_HEADER], member.size, digest.hexdigest()


def dump_bucket(target: Target, path: Path) -> dict[str, Any]:
    with open(path, "wb") as out:
        _run(target.bucket_stream("dump", target.bucket), stdout=out)
    objects = {key: {"size": size, "sha256": digest} for key, size, digest in tar_objects(path)}
    return {
        "name": target.bucket,
        "file": path.name,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "objects": len(objects),
        "object_bytes": sum(o["size"] for o in objects.values()),
        "keys": objects,
    }


def bucket_differences(target: Target, expected: dict[str, Any]) -> list[str]:
    listed = {
        o["key"]: {"size": o["size"], "sha256": o["sha256"]}
        for o in _json_lines(_run(target.bucket_stream("list", target.bucket)))
    }
    want = expected["keys"]
    problems = [f"object {key!r}: missing" for key in sorted(set(want) - set(listed))]
    problems += [f"object {key!r}: not in the backup" for key in sorted(set(listed) - set(want))]
    problems += [
        f"object {key!r}: {listed[key]} != {want[key]}"
        for key in sorted(set(want) & set(listed))
        if listed[key] != want[key]
    ]
    return problems


# -- backup, verify, restore -----------------------------------------------------------------


def backup(target: Target, root: Path, *, now: datetime.datetime | None = None, say: Say = print) -> Path:
    """Write one backup folder under `root` and return it."""
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime(STAMP)
    final = root / f"{target.name}-{stamp}"
    partial = root / f".{final.name}.partial"
    if final.exists():
        raise OperationError(f"{final} exists already")
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700)
    try:
        info = _json_lines(_run(target.bucket_stream("info")))[0]
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created": stamp,
            "stack": target.name,
            "mlflow_version": info["mlflow_version"],
            "databases": {},
        }
        for database in databases_of(target):
            facts = dump_database(target, database, partial / f"{database}.dump")
            manifest["databases"][database] = facts
            say(
                f"{database}: {sum(facts['rows'].values()):,} rows in {len(facts['rows'])} tables, {facts['bytes']:,} bytes"
            )
        manifest["schema_revision"] = manifest["databases"][target.database]["revisions"].get(SCHEMA_TABLE)
        bucket = manifest["bucket"] = dump_bucket(target, partial / OBJECTS_FILE)
        say(f"bucket {target.bucket}: {bucket['objects']:,} objects, {bucket['object_bytes']:,} bytes")
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    say(f"backup written: {final}")
    return final


def prune(
    root: Path, name: str, keep_days: float, *, now: datetime.datetime | None = None, say: Say = print
) -> list[Path]:
    """Delete the complete backups of stack `name` under `root` taken more than `keep_days` ago,
    never the newest one. Only folders this tool wrote (a manifest of this stack) are touched."""
    now = now or datetime.datetime.now(datetime.UTC)
    found = []
    for folder in root.glob(f"{name}-*"):
        try:
            manifest = load_manifest(folder)
            taken = datetime.datetime.strptime(manifest["created"], STAMP).replace(tzinfo=datetime.UTC)
        except (OperationError, OSError, ValueError, KeyError):
            continue
        if manifest.get("stack") == name and folder.name == f"{name}-{manifest['created']}":
            found.append((taken, folder))
    found.sort()
    removed = []
    for taken, folder in found[:-1]:
        if now - taken > datetime.timedelta(days=keep_days):
            shutil.rmtree(folder)
            removed.append(folder)
            say(f"removed {folder.name} (older than {keep_days:g} days)")
    return removed


def load_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.exists():
        raise OperationError(f"{folder} is not a backup: no {MANIFEST}")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise OperationError(f"{path}: format {manifest.get('format')!r}, this tool reads format {FORMAT}")
    return manifest


def verify_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Every file of the backup against its size and SHA-256, and the tar against its keys."""
    problems = []
    entries = [*manifest["databases"].values(), manifest["bucket"]]
    for entry in entries:
        path = folder / entry["file"]
        if not path.exists():
            problems.append(f"{entry['file']}: missing")
        elif path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            problems.append(f"{entry['file']}: size or SHA-256 differs from the manifest")
    if not problems:
        found = {key: {"size": size, "sha256": digest} for key, size, digest in tar_objects(folder / OBJECTS_FILE)}
        if found != manifest["bucket"]["keys"]:
            problems.append(f"{OBJECTS_FILE}: its objects differ from the manifest's")
    return problems


def restore(target: Target, folder: Path, *, replace: bool = False, say: Say = print) -> None:
    manifest = load_manifest(folder)
    problems = verify_files(folder, manifest)
    if problems:
        raise OperationError("the backup is damaged; nothing was changed:\n  " + "\n  ".join(problems))
    if manifest["bucket"]["name"] != target.bucket or target.database not in manifest["databases"]:
        raise OperationError(
            f"the backup is of database {sorted(manifest['databases'])} and bucket {manifest['bucket']['name']!r}, "
            f"the target has {target.database!r} and {target.bucket!r}; nothing was changed"
        )
    existing = user_rows(target, target.database)
    objects = _json_lines(_run(target.bucket_stream("count", target.bucket)))[0]["objects"]
    if (existing or objects) and not replace:
        listing = ", ".join(f"{t}: {n}" for t, n in existing.items()) or "no rows"
        raise OperationError(
            f"the target holds data ({listing}; {objects} objects in bucket {target.bucket!r}); "
            "nothing was changed. Use --replace (make restore ... REPLACE=1) to overwrite it."
        )
    say(f"stopping the servers of {target.name}")
    target.stop_servers()
    try:
        for database, facts in manifest["databases"].items():
            restore_database(target, database, folder / facts["file"])
            problems += database_differences(target, database, facts)
            say(f"{database}: restored")
    finally:
        say("starting the servers")
        target.start_servers()
    if problems:
        raise OperationError("the restored databases differ from the backup:\n  " + "\n  ".join(problems))
    if replace:
        _run(target.bucket_stream("clear", target.bucket))
    with open(folder / OBJECTS_FILE, "rb") as source:
        _run(target.bucket_stream("load", target.bucket), stdin=source)
    problems = bucket_differences(target, manifest["bucket"])
    if problems:
        raise OperationError("the restored bucket differs from the backup:\n  " + "\n  ".join(problems[:20]))
    say(f"bucket {target.bucket}: {manifest['bucket']['objects']:,} objects restored and verified")
    say(f"restored {folder.name}: every row count, schema revision and object equal to the manifest")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m operations.backup", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("backup", help="write one timestamped backup folder")
    make.add_argument("--dir", type=Path, default=Path("backups"), help="where the folder goes (default: backups)")
    make.add_argument(
        "--keep-days", type=float, help="then delete this stack's backups older than that (never the newest)"
    )
    back = sub.add_parser("restore", help="restore a backup folder into the running stack, then verify it")
    back.add_argument("backup", type=Path)
    back.add_argument("--replace", action="store_true", help="overwrite a target that holds data")
    check = sub.add_parser("verify", help="check a backup folder's files against its manifest")
    check.add_argument("backup", type=Path)
    for command in (make, back):
        command.add_argument("--stack", default=os.environ.get("STACK", "dev"))
        command.add_argument("--project-dir", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            problems = verify_files(args.backup, load_manifest(args.backup))
            if problems:
                raise OperationError("\n".join(problems))
            print(f"{args.backup}: every file matches the manifest")
            return 0
        target = DockerTarget.for_stack(args.project_dir, args.stack)
        if args.command == "backup":
            backup(target, args.dir)
            if args.keep_days is not None:
                prune(args.dir, target.name, args.keep_days)
        else:
            restore(target, args.backup, replace=args.replace)
    except OperationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
