"""MLflow's own encryption keys, as the stacks hand them to the servers (NAME_FILE files).

Two servers against one PostgreSQL. An AI Gateway secret created through one server with the
real client is stored encrypted: MLflow's default passphrase (printed in its source) cannot
decrypt the row, the generated passphrase can, with MLflow's own functions. A webhook's signing
secret written through one server is read back through the other (one Fernet key for all
processes, not one drawn per process). Both still hold after the servers restart.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import sqlalchemy
from cryptography.fernet import Fernet
from mlflow import MlflowClient
from mlflow.tracking._tracking_service.utils import _get_store

from images.mlflow import server_contract as contract

from .conftest import start_topology, stop_topology

pytestmark = pytest.mark.e2e

SERVERS = 2
API_KEY = "sk-e2e-0123456789abcdefghijklmnop"
WEBHOOK_SECRET = "e2e-webhook-signing-secret"
# A public address literal: MLflow takes public hosts only and resolves names (no DNS here);
# no event is ever sent to it.
WEBHOOK_URL = "https://93.184.215.14/hook"

# Run by the server venv's python: MLflow's own KEK derivation and envelope decryption.
DECRYPT = """
import json, sys
import sqlalchemy
from mlflow.utils.crypto import DEFAULT_KEK_PASSPHRASE, KEKManager, _decrypt_secret

args = json.loads(sys.argv[1])
engine = sqlalchemy.create_engine(args["uri"])
with engine.connect() as connection:
    row = connection.execute(
        sqlalchemy.text("SELECT secret_id, secret_name, encrypted_value, wrapped_dek, kek_version"
                        " FROM secrets WHERE secret_name = :name"),
        {"name": args["name"]},
    ).one()
manager = KEKManager(passphrase=args["passphrase"] or DEFAULT_KEK_PASSPHRASE, kek_version=row.kek_version)
out = {"kek_version": row.kek_version, "raw": bytes(row.encrypted_value).hex()}
try:
    out["value"] = _decrypt_secret(bytes(row.encrypted_value), bytes(row.wrapped_dek), manager,
                                   row.secret_id, row.secret_name)
except Exception as error:
    out["error"] = str(error)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def topo(server_venv):
    tracking = {"replicas": SERVERS, "allowedHosts": ["127.0.0.1", "127.0.0.1:*"]}
    topo = start_topology(settings={"tracking": tracking}, nginx=False)
    yield topo
    stop_topology(topo)


def database_uri(topo) -> str:
    return contract.backend_store_uri({**topo.instances[0].spec.env, contract.DB_PASSWORD: topo.db_password})


def decrypt(topo, name: str, passphrase: str | None) -> dict:
    """Decrypt the stored row with `passphrase` (None: MLflow's default), in the server venv."""
    args = json.dumps({"uri": database_uri(topo), "name": name, "passphrase": passphrase})
    result = subprocess.run(
        [str(topo.venv / "bin" / "python"), "-c", DECRYPT, args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def gateway_store(url: str):
    """The real client's REST store, pointed at one server."""
    return _get_store(url)


def assert_keys_work(topo, secret_name: str, secret_id: str, webhook_id: str) -> None:
    default = decrypt(topo, secret_name, None)
    assert "value" not in default and "Failed to decrypt" in default["error"]
    generated = decrypt(topo, secret_name, topo.kek_passphrase)
    assert generated["value"] == {"api_key": API_KEY}
    assert generated["kek_version"] == int(contract.CRYPTO_KEK_VERSION_VALUE)
    assert API_KEY.encode().hex() not in generated["raw"]
    # The webhook's signing secret: Fernet-encrypted with the generated key, readable by every server.
    engine = sqlalchemy.create_engine(database_uri(topo))
    try:
        with engine.connect() as connection:
            stored = connection.execute(
                sqlalchemy.text("SELECT secret FROM webhooks WHERE webhook_id = :id"), {"id": webhook_id}
            ).scalar_one()
    finally:
        engine.dispose()
    assert WEBHOOK_SECRET not in stored
    assert Fernet(topo.webhook_encryption_key).decrypt(stored.encode()).decode() == WEBHOOK_SECRET
    for inst in topo.instances:
        client = MlflowClient(tracking_uri=inst.url, registry_uri=inst.url)
        assert client.get_webhook(webhook_id).name == "e2e-hook", inst.name
        info = gateway_store(inst.url).get_secret_info(secret_id=secret_id)
        assert API_KEY not in json.dumps(info.masked_values), inst.name
    # Every server had the passphrase: MLflow warns when it falls back to its default.
    for inst in topo.instances:
        assert "MLFLOW_CRYPTO_KEK_PASSPHRASE not set" not in inst.log_text(), inst.name


def test_stored_keys_need_the_generated_passphrase_and_survive_a_restart(topo):
    first, second = topo.instances
    store = gateway_store(first.url)
    secret = store.create_gateway_secret(secret_name="e2e-openai", secret_value={"api_key": API_KEY},
                                         provider="openai")  # fmt: skip
    assert API_KEY not in json.dumps(secret.masked_values)
    hook = MlflowClient(tracking_uri=second.url, registry_uri=second.url).create_webhook(
        name="e2e-hook", url=WEBHOOK_URL, events=["model_version.created"], secret=WEBHOOK_SECRET
    )
    assert_keys_work(topo, "e2e-openai", secret.secret_id, hook.webhook_id)

    topo.restart_mlflow()
    assert_keys_work(topo, "e2e-openai", secret.secret_id, hook.webhook_id)
    # After the restart the servers still encrypt with the same KEK.
    gateway_store(second.url).create_gateway_secret(secret_name="e2e-after-restart",
                                                    secret_value={"api_key": API_KEY}, provider="openai")  # fmt: skip
    assert decrypt(topo, "e2e-after-restart", topo.kek_passphrase)["value"] == {"api_key": API_KEY}
    assert "value" not in decrypt(topo, "e2e-after-restart", None)
