"""nginx on Docker: the only published port, basic auth, optional self-signed TLS."""

from __future__ import annotations

import ipaddress

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls

from components.config.docker import ProxySettings
from components.generated import generated_secret
from images.mlflow import server_contract as contract
from components.docker.common import (
    LOG_OPTS,
    SECURITY_OPTS,
    container_options,
    healthcheck_args,
    pulled_image,
    secret_upload,
)
from components.specs.htpasswd import htpasswd_line
from components.specs.nginx import DOCKER_DNS, NginxPaths, nginx_proxy_spec

# uid of `nginx` in the official image: its workers read the htpasswd file per request.
NGINX_UID = "101"
ROOT_UID = "0"


def tracking_host(proxy: ProxySettings) -> str:
    """The host name clients use: the certificate's first name with TLS, else localhost."""
    return proxy.tls_hostnames[0] if proxy.tls else "localhost"


class NginxProxy(pulumi.ComponentResource):
    """Exposes `tracking_uri`, `username`, the secret `password` and, with TLS, `certificate`."""

    tracking_uri: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    certificate: pulumi.Output[str] | None
    container: docker.Container

    def __init__(
        self,
        name: str,
        settings: ProxySettings,
        *,
        prefix: str,
        upstreams: list[str],
        upstream_containers: list[docker.Container],
        clients_reach_object_store: bool,
        network: docker.Network,
        random_provider: random.Provider,
        tls_provider: tls.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("mlflow-platform:docker:Proxy", name, None, opts)
        paths = NginxPaths()
        # Docker's DNS: a restarted MLflow container may come back with another address.
        spec = nginx_proxy_spec(settings, upstreams, paths=paths, resolver=DOCKER_DNS,
                                clients_reach_object_store=clients_reach_object_store)
        random_opts = pulumi.ResourceOptions(parent=self, provider=random_provider)
        self.password = generated_secret("password", contract.PROXY_PASSWORD_LENGTH, random_opts)
        # A stable salt keeps the htpasswd (and so the container) unchanged between `pulumi up`s.
        salt = random.RandomString("htpasswd-salt", random.RandomStringArgs(length=16, special=False),
                                   opts=random_opts)
        self.username = pulumi.Output.from_input(settings.username)
        htpasswd = pulumi.Output.all(self.password, salt.result).apply(
            lambda values: htpasswd_line(settings.username, values[0], values[1])
        )

        uploads = [
            docker.ContainerUploadArgs(file="/etc/nginx/nginx.conf", content=spec.config_text),
            secret_upload(paths.htpasswd, htpasswd, owner=NGINX_UID),
        ]
        self.certificate = None
        if settings.tls:
            key, cert = self._self_signed(settings, tls_provider)
            uploads += [
                docker.ContainerUploadArgs(file=paths.tls_certificate, content=cert.cert_pem),
                secret_upload(paths.tls_key, key.private_key_pem, owner=ROOT_UID),
            ]
            self.certificate = cert.cert_pem

        image = pulled_image(self, settings.image)
        self.container = docker.Container(
            "nginx",
            docker.ContainerArgs(
                name=f"{prefix}-nginx",
                image=image.image_id,
                uploads=uploads,
                # The one published port of the stack, on the configured address (loopback by default).
                ports=[docker.ContainerPortArgs(internal=spec.listen_port, external=settings.port,
                                                ip=str(settings.bind_address), protocol="tcp")],
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=["nginx"])],
                healthcheck=healthcheck_args(spec.health),
                wait=True,
                wait_timeout=60,
                restart="unless-stopped",
                security_opts=SECURITY_OPTS,
                log_opts=LOG_OPTS,
            ),
            # nginx resolves the upstream names once, at start: when an MLflow container is
            # replaced (new IP), restart nginx with it rather than proxy to a stale address.
            opts=container_options(self, depends_on=upstream_containers, replace_with=upstream_containers),
        )
        scheme = "https" if settings.tls else "http"
        self.tracking_uri = pulumi.Output.from_input(f"{scheme}://{tracking_host(settings)}:{settings.port}")
        self.register_outputs({"trackingUri": self.tracking_uri, "container": self.container.name})

    def _self_signed(self, settings: ProxySettings, provider: tls.Provider):
        opts = pulumi.ResourceOptions(parent=self, provider=provider)
        key = tls.PrivateKey("tls-key", tls.PrivateKeyArgs(algorithm="ECDSA", ecdsa_curve="P256"), opts=opts)
        ips, names = [], []
        for host in settings.tls_hostnames:
            try:
                ips.append(str(ipaddress.ip_address(host)))
            except ValueError:
                names.append(host)
        cert = tls.SelfSignedCert(
            "tls-cert",
            tls.SelfSignedCertArgs(
                private_key_pem=pulumi.Output.secret(key.private_key_pem),
                subject=tls.SelfSignedCertSubjectArgs(common_name=settings.tls_hostnames[0],
                                                      organization="mlflow-platform"),
                dns_names=names,
                ip_addresses=ips,
                validity_period_hours=24 * 365,
                # Renewed by `pulumi up` in the last 30 days.
                early_renewal_hours=24 * 30,
                allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            ),
            opts=opts,
        )
        return key, cert
