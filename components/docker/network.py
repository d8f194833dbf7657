"""Two bridge networks: an internal one for the data services, one for the proxy.

PostgreSQL and MinIO sit only on `backend`, which Docker marks internal (no route
out, nothing publishable). MLflow joins both; nginx joins only `frontend`.
"""

from __future__ import annotations

import pulumi
import pulumi_docker as docker


class DockerNetwork(pulumi.ComponentResource):
    backend: docker.Network
    frontend: docker.Network

    def __init__(self, name: str, prefix: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.backend = docker.Network(
            "backend",
            docker.NetworkArgs(name=f"{prefix}-backend", driver="bridge", internal=True,
                               labels=[docker.NetworkLabelArgs(label="mlflow-platform.role", value="backend")]),
            opts=child,
        )
        self.frontend = docker.Network(
            "frontend",
            docker.NetworkArgs(name=f"{prefix}-frontend", driver="bridge",
                               labels=[docker.NetworkLabelArgs(label="mlflow-platform.role", value="frontend")]),
            opts=child,
        )
        self.register_outputs({"backend": self.backend.name, "frontend": self.frontend.name})
