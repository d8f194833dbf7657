"""A client with only MLFLOW_TRACKING_URI, _USERNAME and _PASSWORD moves any artifact through the proxy.

MLflow 3.17 tells clients (GET /api/3.0/mlflow/server-info) that they may transfer artifacts
straight to S3 with presigned URLs: every download, and uploads from 500 MB. On the dev stack
those URLs name http://minio:9000, which only the containers resolve, so a client that set
nothing else failed. The proxy now answers that probe with no direct transfers: here a client
process whose environment holds nothing but the three variables uploads and downloads a file
above the multipart threshold, and the proxy's log shows every byte went through it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from tests.e2e.conftest import require_nginx, start_topology, stop_topology
from tests.e2e.helpers import sha256_file, unique, write_random

pytestmark = pytest.mark.e2e

# Above MLflow's default multipart thresholds (500 MB), so both presigned paths would be offered.
BIG = 520 * 1024**2

CLIENT = r"""
import json, os, sys, tempfile
import mlflow
path, experiment = sys.argv[1], sys.argv[2]
mlflow.set_experiment(experiment)
with mlflow.start_run() as run:
    mlflow.log_artifact(path)
out = tempfile.mkdtemp()
local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=os.path.basename(path), dst_path=out)
print(json.dumps({"run_id": run.info.run_id, "downloaded": local}))
"""


@pytest.fixture(scope="module")
def big_stack(server_venv):
    require_nginx()
    topo = start_topology(settings={"proxy": {"maxUploadSize": "1g"}})
    yield topo
    stop_topology(topo)


def server_info(url: str, auth=None, headers=None) -> dict:
    response = requests.get(f"{url}/api/3.0/mlflow/server-info", auth=auth, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()


def test_the_proxy_answers_the_capability_probe_with_no_direct_transfers(big_stack):
    # A Host MLflow's allowed-hosts check accepts (nginx forwards the bare host name).
    direct = server_info(big_stack.instances[0].url, headers={"Host": "127.0.0.1"})
    through_proxy = server_info(big_stack.tracking_uri, auth=big_stack.credentials)
    # MLflow itself offers them (its S3 store can presign); the proxy withholds them.
    assert direct["multipart_uploads_enabled"] is True and direct["multipart_downloads_enabled"] is True
    assert through_proxy["multipart_uploads_enabled"] is False
    assert through_proxy["multipart_downloads_enabled"] is False
    assert {k: v for k, v in through_proxy.items() if not k.startswith("multipart_")} == {
        k: v for k, v in direct.items() if not k.startswith("multipart_")
    }
    # The same for the UI's path, and still behind the password.
    ajax = requests.get(
        f"{big_stack.tracking_uri}/ajax-api/3.0/mlflow/server-info", auth=big_stack.credentials, timeout=30
    ).json()
    assert ajax["multipart_downloads_enabled"] is False
    assert requests.get(f"{big_stack.tracking_uri}/api/3.0/mlflow/server-info", timeout=30).status_code == 401


def test_a_client_with_only_the_three_variables_uploads_and_downloads_a_big_artifact(big_stack, tmp_path):
    artifact = tmp_path / "weights.bin"
    digest = write_random(artifact, BIG)
    uri, (user, password) = big_stack.tracking_uri, big_stack.credentials
    # Nothing of this process's environment: no MLFLOW_ENABLE_PROXY_MULTIPART_*, no AWS_*.
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_TRACKING_USERNAME": user,
        "MLFLOW_TRACKING_PASSWORD": password,
    }
    before = len(big_stack.access_log())
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, str(artifact), unique("plain-client")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert sha256_file(result["downloaded"]) == digest

    calls = big_stack.access_log()[before:]
    paths = [entry["path"] for entry in calls]
    # No presigned or multipart endpoint was asked for: the client never tried S3 itself.
    assert not [p for p in paths if "presigned" in p or "/mpu/" in p], paths
    artifact_path = "/api/2.0/mlflow-artifacts/artifacts/"
    uploads = [e for e in calls if e["method"] == "PUT" and e["path"].startswith(artifact_path)]
    downloads = [
        e
        for e in calls
        if e["method"] == "GET" and e["path"].startswith(artifact_path) and e["path"].endswith("weights.bin")
    ]
    assert [e["status"] for e in uploads] == [200] and uploads[0]["received"] >= BIG
    assert [e["status"] for e in downloads] == [200] and downloads[0]["sent"] >= BIG
