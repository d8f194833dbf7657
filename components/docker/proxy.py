"""nginx on Docker: the only published port, basic auth, optional self-signed TLS."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls

from components.config.docker import ProxySettings
from components.docker.common import (
    LOG_OPTS,
    SECURITY_OPTS,
    container_options,
    formerly,
    healthcheck_args,
    pulled_image,
    secret_upload,
)
from components.generated import generated_secret
from components.specs import tls as cert_spec
from components.specs.htpasswd import htpasswd_line
from components.specs.nginx import DOCKER_DNS, NginxPaths, nginx_proxy_spec
from images.mlflow import server_contract as contract

# uid of `nginx` in the official image: its workers read the htpasswd file per request.
NGINX_UID = "101"
ROOT_UID = "0"


def tracking_host(proxy: ProxySettings) -> str:
    """The host name clients use: the certificate's first name with TLS, else localhost."""
    return proxy.tls_hostnames[0] if proxy.tls else "localhost"


@dataclass(frozen=True)
class ProxyArgs:
    settings: ProxySettings
    """The published address and port, the basic-auth user, TLS, limits and image (the stack's `proxy`)."""
    network: pulumi.Input[str]
    """The network it reaches MLflow on, by name (nginx joins no other)."""
    prefix: str
    """The container is `<prefix>-nginx` on the engine."""
    upstreams: Sequence[str]
    clients_reach_object_store: bool
    """`host:port` of each MLflow server (TrackingServer.upstreams), and whether clients can reach the
    artifact store's S3 endpoint themselves (if not, nginx withholds presigned transfers)."""
    authenticate: bool = True
    """nginx's own basic auth with one generated user (`auth.mode: proxy`); False where MLflow's
    basic-auth app checks every request (`auth.mode: mlflow`): no user, no htpasswd."""
    metrics_log: str | None = None
    """Where nginx sends each request's line for mtail (ProxyMetrics.log_address, observability
    on); ProxyMetrics' container belongs in `start_after` and `replace_with` then."""
    start_after: Sequence[pulumi.Resource] = ()
    replace_with: Sequence[pulumi.Resource] = ()
    """The tracking server's `readiness` and `replacement_triggers`: nginx starts once MLflow is
    healthy, and is replaced whenever an MLflow container is."""


class Proxy(pulumi.ComponentResource):
    """Exposes `tracking_uri`, `username` and the secret `password` (None unless it
    authenticates) and, with TLS, `certificate`."""

    tracking_uri: pulumi.Output[str]
    username: pulumi.Output[str] | None
    password: pulumi.Output[str] | None
    certificate: pulumi.Output[str] | None

    def __init__(self, name: str, args: ProxyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:Proxy", name, None, opts)
        settings = args.settings
        paths = NginxPaths()
        # Docker's DNS: a restarted MLflow container may come back with another address.
        spec = nginx_proxy_spec(
            settings,
            list(args.upstreams),
            paths=paths,
            resolver=DOCKER_DNS,
            clients_reach_object_store=args.clients_reach_object_store,
            authenticate=args.authenticate,
            metrics_log=args.metrics_log,
        )
        uploads = [docker.ContainerUploadArgs(file="/etc/nginx/nginx.conf", content=spec.config_text)]
        self.username, self.password = None, None
        if args.authenticate:
            uploads.append(self._htpasswd(name, settings, paths))
        self.certificate = None
        if settings.tls:
            key, cert = self._self_signed(name, settings)
            uploads += [
                docker.ContainerUploadArgs(file=paths.tls_certificate, content=cert.cert_pem),
                secret_upload(paths.tls_key, key.private_key_pem, owner=ROOT_UID),
            ]
            self.certificate = cert.cert_pem

        image = pulled_image(self, name, settings.image)
        container = docker.Container(
            f"{name}-nginx",
            docker.ContainerArgs(
                name=f"{args.prefix}-nginx",
                image=image.image_id,
                uploads=uploads,
                # The one published port of the stack, on the configured address (loopback by default).
                ports=[
                    docker.ContainerPortArgs(
                        internal=spec.listen_port, external=settings.port, ip=str(settings.bind_address), protocol="tcp"
                    )
                ],
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network, aliases=["nginx"])],
                healthcheck=healthcheck_args(spec.health),
                wait=True,
                wait_timeout=60,
                restart="unless-stopped",
                security_opts=SECURITY_OPTS,
                log_opts=LOG_OPTS,
            ),
            # nginx resolves the upstream names once, at start: when an MLflow container is
            # replaced (new IP), restart nginx with it rather than proxy to a stale address.
            opts=container_options(
                self, "nginx", depends_on=list(args.start_after), replace_with=list(args.replace_with)
            ),
        )
        scheme = "https" if settings.tls else "http"
        self.tracking_uri = pulumi.Output.from_input(f"{scheme}://{tracking_host(settings)}:{settings.port}")
        self.register_outputs({"trackingUri": self.tracking_uri, "container": container.name})

    def _htpasswd(self, name: str, settings: ProxySettings, paths: NginxPaths) -> docker.ContainerUploadArgs:
        """nginx's one user: a generated password, its htpasswd line as a file only nginx reads."""
        password = generated_secret(
            f"{name}-password",
            contract.PROXY_PASSWORD_LENGTH,
            pulumi.ResourceOptions(parent=self, aliases=formerly("password")),
        )
        # A stable salt keeps the htpasswd (and so the container) unchanged between `pulumi up`s.
        salt = random.RandomString(
            f"{name}-htpasswd-salt",
            random.RandomStringArgs(length=16, special=False),
            opts=pulumi.ResourceOptions(parent=self, aliases=formerly("htpasswd-salt")),
        )
        self.username, self.password = pulumi.Output.from_input(settings.username), password
        htpasswd = pulumi.Output.all(password, salt.result).apply(
            lambda values: htpasswd_line(settings.username, values[0], values[1], generated=True)
        )
        return secret_upload(paths.htpasswd, htpasswd, owner=NGINX_UID)

    def _self_signed(self, name: str, settings: ProxySettings) -> tuple[tls.PrivateKey, tls.SelfSignedCert]:
        key = tls.PrivateKey(
            f"{name}-tls-key",
            tls.PrivateKeyArgs(algorithm=cert_spec.KEY_ALGORITHM, ecdsa_curve=cert_spec.ECDSA_CURVE),
            opts=pulumi.ResourceOptions(parent=self, aliases=formerly("tls-key")),
        )
        ips, names = cert_spec.split_hostnames(settings.tls_hostnames)
        cert = tls.SelfSignedCert(
            f"{name}-tls-cert",
            tls.SelfSignedCertArgs(
                private_key_pem=pulumi.Output.secret(key.private_key_pem),
                subject=tls.SelfSignedCertSubjectArgs(
                    common_name=settings.tls_hostnames[0], organization=cert_spec.ORGANIZATION
                ),
                dns_names=names,
                ip_addresses=ips,
                validity_period_hours=cert_spec.VALIDITY_HOURS,
                early_renewal_hours=cert_spec.EARLY_RENEWAL_HOURS,
                allowed_uses=list(cert_spec.ALLOWED_USES),
            ),
            opts=pulumi.ResourceOptions(parent=self, aliases=formerly("tls-cert")),
        )
        return key, cert
