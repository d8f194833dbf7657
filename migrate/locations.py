"""What a stored artifact location names, in every form MLflow has ever written for a local store.

The forms, by where they come from:
    ./mlruns/2/<run>/artifacts          MLflow 1.x with a sqlite:/// tracking URI and the default
                                        root: relative to the directory the user ran MLflow from
    /home/alice/mlruns/2/<run>/...      MLflow 2.x/3.x with a SQLite store, or an absolute
                                        --default-artifact-root
    file:///home/alice/mlruns/...       MLflow 1.x/2.x file store and `file:` roots
    file://localhost/home/alice/...     the same, with the host RFC 8089 allows
    mlflow-artifacts:/2/<run>/...       an old `mlflow server --serve-artifacts`, relative to its
    mlflow-artifacts://host:port/2/...  --artifacts-destination (the host form when a client
                                        passed a full URL)
    models:/..., runs:/...              registry indirections (model_versions.source): resolved
                                        through other rows, nothing to map
Anything else (s3://, gs://, http(s)://, dbfs:/, a local path outside the root) is not under the
artifact folder being copied, so this tool cannot map it.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote, urlparse

# Sources of model versions that point at other rows, not at files.
REGISTRY_SCHEMES = ("models", "runs")


class Kind(Enum):
    UNDER_ROOT = "under the artifact root"
    REGISTRY = "a models:/ or runs:/ reference"
    LOCAL_OUTSIDE = "a local path outside the artifact root"
    REMOTE = "another store (not the artifact folder being copied)"


UNMAPPABLE = (Kind.LOCAL_OUTSIDE, Kind.REMOTE)


@dataclass(frozen=True)
class Where:
    kind: Kind
    relative: str | None = None  # below the root, "" for the root itself; only for UNDER_ROOT


class LocalRoot:
    """The artifact root as the database recorded it, and the directory relative locations were
    written from (MLflow resolves `./mlruns` against the process's working directory)."""

    def __init__(self, root: str, cwd: str = "/"):
        if not cwd.startswith("/"):
            raise ValueError(f"the recorded working directory must be absolute, got {cwd!r}")
        self.cwd = posixpath.normpath(cwd)
        self.root = self._absolute(_path_of(root) if root.startswith("file:") else root)

    def _absolute(self, path: str) -> str:
        return posixpath.normpath(path if path.startswith("/") else posixpath.join(self.cwd, path))

    def where(self, uri: object) -> Where | None:
        """None for a value that is no location at all (NULL, empty, not text)."""
        if not isinstance(uri, str) or not uri:
            return None
        parsed = urlparse(uri)
        scheme = parsed.scheme.lower()
        if scheme == "mlflow-artifacts":
            # Relative to the old server's artifacts destination: the folder being copied.
            return Where(Kind.UNDER_ROOT, posixpath.normpath("/" + unquote(parsed.path)).lstrip("/"))
        if scheme in REGISTRY_SCHEMES:
            return Where(Kind.REGISTRY)
        if scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                return Where(Kind.REMOTE)  # file://server/share: another machine's disk
            path = unquote(parsed.path)
        elif scheme == "" or (len(scheme) == 1 and uri[1:2] == ":"):
            if scheme:  # C:\... or C:/...: a Windows machine's disk
                return Where(Kind.LOCAL_OUTSIDE)
            path = uri
        else:
            return Where(Kind.REMOTE)
        path = self._absolute(path)
        if path == self.root:
            return Where(Kind.UNDER_ROOT, "")
        if path.startswith(self.root.rstrip("/") + "/"):
            return Where(Kind.UNDER_ROOT, path[len(self.root.rstrip("/")) + 1 :])
        return Where(Kind.LOCAL_OUTSIDE)


def _path_of(uri: str) -> str:
    return unquote(urlparse(uri).path)
