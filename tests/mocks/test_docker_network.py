"""The dev stack's networks (components/docker/network.py): the data services on an internal one."""

from __future__ import annotations

from tests.mocks.docker_finders import MINIO, MLFLOW, NGINX, POSTGRES, containers


def test_data_services_live_on_an_internal_network(dev_run):
    backend = dev_run.one("docker:index/network:Network", "backend")
    frontend = dev_run.one("docker:index/network:Network", "frontend")
    assert (backend.name, frontend.name) == ("network-backend", "network-frontend")
    assert backend.inputs["internal"] is True
    assert "internal" not in frontend.inputs or frontend.inputs["internal"] is False
    networks = {name: [n["name"] for n in c.inputs["networksAdvanced"]] for name, c in containers(dev_run).items()}
    assert networks[POSTGRES] == [backend.inputs["name"]]
    assert networks[MINIO] == [backend.inputs["name"]]
    assert networks[NGINX] == [frontend.inputs["name"]]
    assert set(networks[MLFLOW]) == {backend.inputs["name"], frontend.inputs["name"]}


def test_a_container_joining_a_network_depends_on_it(dev_run):
    backend = dev_run.one("docker:index/network:Network", "backend")
    frontend = dev_run.one("docker:index/network:Network", "frontend")
    by_name = containers(dev_run)
    assert by_name[POSTGRES].property_dependencies["networksAdvanced"] == [backend.urn]
    assert sorted(by_name[MLFLOW].property_dependencies["networksAdvanced"]) == sorted([backend.urn, frontend.urn])
    assert by_name[NGINX].property_dependencies["networksAdvanced"] == [frontend.urn]
