"""The pure layers (config models, service specs, the image's facts) import without the Pulumi SDK.

They are what the end-to-end kit, the migration tool and the image share; only components/docker,
components/aws and the config loader may need Pulumi.
"""

from __future__ import annotations

import subprocess
import sys

from tests.pulumi_mocks import REPO_ROOT

PURE_MODULES = [
    "components.config", "components.config.base", "components.config.docker", "components.config.aws",
    "components.specs.mlflow_server", "components.specs.nginx", "components.specs.postgres",
    "components.specs.minio", "components.specs.htpasswd", "components.specs.durations",
    "components.specs.endpoints", "components.specs.health", "components.specs.image_layout",
    "components.versions", "components.sizes", "components.specs.connections", "components.specs.seaweedfs",
    "components.aws.lib.container", "images.mlflow.server_contract", "components.specs.gc", "components.specs.otlp",
]  # fmt: skip

# Makes `import pulumi` (and its providers) fail, as on a machine without the SDK.
BLOCK_PULUMI = """
import importlib.abc, sys
class NoPulumi(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pulumi" or name.startswith(("pulumi.", "pulumi_")):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None
sys.meta_path.insert(0, NoPulumi())
"""


def import_without_pulumi(module: str) -> subprocess.CompletedProcess:
    code = BLOCK_PULUMI + f"import {module}\nprint('ok')"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_pure_modules_import_without_the_pulumi_sdk():
    failures = {}
    for module in PURE_MODULES:
        done = import_without_pulumi(module)
        if done.returncode != 0:
            failures[module] = done.stderr.strip().splitlines()[-1]
    assert failures == {}


def test_the_blocker_does_block_the_modules_that_need_pulumi():
    done = import_without_pulumi("components.config.loader")
    assert done.returncode != 0 and "blocked by the test" in done.stderr


def test_the_image_contract_is_standard_library_only():
    """The image imports it before anything of ours is installed: stdlib modules only."""
    import ast
    import sys

    tree = ast.parse((REPO_ROOT / "images" / "mlflow" / "server_contract.py").read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
