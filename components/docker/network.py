"""Two bridge networks: an internal one for the data services, one for the proxy.

PostgreSQL and the artifact store sit only on `backend`, which Docker marks internal (no route
out, nothing publishable). MLflow joins both; nginx joins only `frontend`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.docker.common import formerly


def bridge_network(
    parent: pulumi.Resource, name: str, prefix: str, role: str, *, internal: bool = False
) -> docker.Network:
    """`<name>-<role>` in the program, `<prefix>-<role>` on the engine, labelled with its role;
    `internal`: no route out, and nothing on it alone can be published."""
    return docker.Network(
        f"{name}-{role}",
        docker.NetworkArgs(
            name=f"{prefix}-{role}",
            driver="bridge",
            internal=True if internal else None,
            labels=[docker.NetworkLabelArgs(label="mlflow-platform.role", value=role)],
        ),
        opts=pulumi.ResourceOptions(parent=parent, aliases=formerly(role)),
    )


@dataclass(frozen=True)
class NetworkArgs:
    prefix: str
    """The networks' names on the engine start with it (`<prefix>-backend`): the platform's name,
    so two stacks on one engine keep apart."""


class Network(pulumi.ComponentResource):
    """Exposes the two networks' names; a container joins one by name (and so depends on it)."""

    backend_name: pulumi.Output[str]
    """The internal network: the stores and MLflow."""
    frontend_name: pulumi.Output[str]
    """The proxy's network: nginx and MLflow."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:Network", name, None, opts)
        backend = bridge_network(self, name, args.prefix, "backend", internal=True)
        frontend = bridge_network(self, name, args.prefix, "frontend")
        self.backend_name = backend.name
        self.frontend_name = frontend.name
        self.register_outputs({"backend": self.backend_name, "frontend": self.frontend_name})
