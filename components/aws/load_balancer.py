"""The HTTPS entry: an ALB in the public subnets, a modern TLS policy, HTTP redirected to HTTPS,
access logs, optional sign-in (OIDC/Cognito) and WAF, and the Route 53 alias of the domain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.auth import authenticate_action, authenticate_rule_action
from components.aws.log_archive import ALB_PREFIX, LogArchive
from components.config.aws import AuthSettings, AwsLoadBalancerSettings
from components.specs.mlflow_server import ServerShape
from components.specs.otlp import TRACES_PATH

# The longest deregistration delay a target group takes.
MAX_DEREGISTRATION_DELAY_SECONDS = 3600


# The one listener rule: the lowest priority number, evaluated first (ALB priorities: 1-50000).
METRICS_RULE_PRIORITY = 1
# What the servers' Prometheus exporter answers (path patterns are case-sensitive, `*` any suffix).
METRICS_PATHS = ("/metrics", "/metrics/*")


def deregistration_delay(idle_timeout_seconds: int) -> int:
    """How long a draining task (a deploy, a scale-in) keeps serving its in-flight requests.

    As long as a proxied upload may run (the idle timeout), so a deploy does not cut one off;
    the ALB ends the wait early once a target has no request left in flight. Capped at what
    AWS accepts: an upload longer than an hour can still be cut by a deploy (docs/aws.md).
    """
    return min(idle_timeout_seconds, MAX_DEREGISTRATION_DELAY_SECONDS)


HSTS = "max-age=31536000; includeSubDomains"
# The HTTPS listener's rule for OTLP trace exports (with sign-in at the ALB only); the only rule,
# any free priority would do (1-50000, lower first).
OTLP_RULE_PRIORITY = 100


@dataclass(frozen=True)
class LoadBalancerArgs:
    settings: AwsLoadBalancerSettings
    # The sign-in step at the listener (oidc, cognito), if any.
    auth: AuthSettings
    vpc_id: pulumi.Input[str]
    # Public subnets.
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    # The port and health check the target group forwards to and probes.
    server: ServerShape
    # Where the access logs go.
    log_archive: LogArchive
    # The regional WAFv2 web ACL in front of it (the program's WebFirewall, or one named in config).
    web_acl_arn: pulumi.Input[str] | None = None


class LoadBalancer(pulumi.ComponentResource):
    url: pulumi.Output[str]
    target_group_arn: pulumi.Output[str]
    # For the request-count scaling metric: "<lb arn suffix>/<target group arn suffix>".
    resource_label: pulumi.Output[str]
    https_listener: aws.lb.Listener

    def __init__(self, name: str, args: LoadBalancerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:LoadBalancer", name, None, opts)
        settings, log_archive, health = args.settings, args.log_archive, args.server.health
        child = pulumi.ResourceOptions(parent=self)
        assert settings.domain_name, "validated in AwsSettings.semantic_problems"
        certificate_arn = settings.certificate_arn or self._certificate(name, settings, child)

        alb = aws.lb.LoadBalancer(
            name,
            aws.lb.LoadBalancerArgs(
                load_balancer_type="application",
                internal=settings.internal,
                subnets=list(args.subnet_ids),
                security_groups=[args.security_group_id],
                ip_address_type="ipv4",
                # Requests with header names that are not valid HTTP are dropped, not passed to MLflow.
                drop_invalid_header_fields=True,
                desync_mitigation_mode="defensive",
                # A multi-GB proxied upload sends nothing back until MLflow has copied it to S3.
                idle_timeout=settings.idle_timeout_seconds,
                enable_http2=True,
                enable_deletion_protection=settings.deletion_protection,
                access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                    bucket=log_archive.bucket_name, prefix=ALB_PREFIX, enabled=True
                ),
            ),
            # The bucket policy must let ELB write before the access logs are switched on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_archive.policy]),
        )
        target_group = aws.lb.TargetGroup(
            name,
            aws.lb.TargetGroupArgs(
                vpc_id=args.vpc_id,
                target_type="ip",
                port=args.server.port,
                protocol="HTTP",
                protocol_version="HTTP1",
                deregistration_delay=deregistration_delay(settings.idle_timeout_seconds),
                health_check=aws.lb.TargetGroupHealthCheckArgs(
                    enabled=True,
                    path=args.server.health_path,
                    port="traffic-port",
                    protocol="HTTP",
                    matcher="200",
                    interval=health.interval_seconds,
                    timeout=health.timeout_seconds,
                    healthy_threshold=2,
                    unhealthy_threshold=3,
                ),
            ),
            opts=child,
        )
        aws.lb.Listener(
            f"{name}-http",
            aws.lb.ListenerArgs(
                load_balancer_arn=alb.arn,
                port=80,
                protocol="HTTP",
                default_actions=[
                    aws.lb.ListenerDefaultActionArgs(
                        type="redirect",
                        redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                            protocol="HTTPS", port="443", status_code="HTTP_301"
                        ),
                    )
                ],
            ),
            opts=child,
        )
        sign_in = authenticate_action(args.auth)
        forward = aws.lb.ListenerDefaultActionArgs(
            type="forward", order=2 if sign_in else None, target_group_arn=target_group.arn
        )
        self.https_listener = aws.lb.Listener(
            f"{name}-https",
            aws.lb.ListenerArgs(
                load_balancer_arn=alb.arn,
                port=443,
                protocol="HTTPS",
                ssl_policy=settings.ssl_policy,
                certificate_arn=certificate_arn,
                default_actions=[sign_in, forward] if sign_in else [forward],
                routing_http_response_strict_transport_security_header_value=HSTS,
                routing_http_response_x_content_type_options_header_value="nosniff",
                routing_http_response_x_frame_options_header_value="SAMEORIGIN",
                routing_http_response_server_enabled=False,
            ),
            opts=child,
        )

        # The servers' Prometheus exporter is scraped on the private network only: the ALB answers
        # 404 itself, before any sign-in (rules run before the default actions), whatever auth mode.
        def path_rule(
            suffix: str, priority: int, paths: list[str], actions: list[aws.lb.ListenerRuleActionArgs]
        ) -> None:
            aws.lb.ListenerRule(
                f"{name}-{suffix}",
                aws.lb.ListenerRuleArgs(
                    listener_arn=self.https_listener.arn,
                    priority=priority,
                    conditions=[
                        aws.lb.ListenerRuleConditionArgs(
                            path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=paths)
                        )
                    ],
                    actions=actions,
                ),
                opts=child,
            )

        not_found = aws.lb.ListenerRuleActionArgs(
            type="fixed-response",
            fixed_response=aws.lb.ListenerRuleActionFixedResponseArgs(
                content_type="text/plain", status_code="404", message_body="Not Found"
            ),
        )
        path_rule("no-metrics", METRICS_RULE_PRIORITY, list(METRICS_PATHS), [not_found])
        rule_sign_in = authenticate_rule_action(args.auth)
        if rule_sign_in is not None:
            # Same sign-in as every other path, but an exporter without a session gets 401, not a
            # redirect to the identity provider's page. Without ALB sign-in the default action
            # forwards /v1/traces like the rest (MLflow's basic auth checks it).
            rule_forward = aws.lb.ListenerRuleActionArgs(type="forward", order=2, target_group_arn=target_group.arn)
            path_rule("otlp-traces", OTLP_RULE_PRIORITY, [TRACES_PATH], [rule_sign_in, rule_forward])
        if args.web_acl_arn is not None:
            # Both inputs force a new association (terraform-provider-aws web_acl_association.go),
            # which AWS makes in place of the old one; the provider retries while a new ALB is not
            # yet visible to WAF (WAFUnavailableEntityException, up to 10 minutes).
            aws.wafv2.WebAclAssociation(
                name,
                aws.wafv2.WebAclAssociationArgs(resource_arn=alb.arn, web_acl_arn=args.web_acl_arn),
                opts=child,
            )
        if settings.hosted_zone_id:
            aws.route53.Record(
                name,
                aws.route53.RecordArgs(
                    zone_id=settings.hosted_zone_id,
                    name=settings.domain_name,
                    type="A",
                    aliases=[
                        aws.route53.RecordAliasArgs(name=alb.dns_name, zone_id=alb.zone_id, evaluate_target_health=True)
                    ],
                    # A record left by an earlier stack of the same name (or made by hand) is taken
                    # over rather than failing the `up` with "already exists".
                    allow_overwrite=True,
                ),
                opts=child,
            )
        self.url = pulumi.Output.from_input(f"https://{settings.domain_name}")
        self.dns_name = alb.dns_name
        self.target_group_arn = target_group.arn
        self.deregistration_delay_seconds = deregistration_delay(settings.idle_timeout_seconds)
        self.resource_label = pulumi.Output.concat(alb.arn_suffix, "/", target_group.arn_suffix)
        # The CloudWatch dimension values (LoadBalancer, TargetGroup) of the ALB's metrics.
        self.arn_suffix: pulumi.Output[str] = alb.arn_suffix
        self.target_group_arn_suffix: pulumi.Output[str] = target_group.arn_suffix
        self.register_outputs({"url": self.url, "dnsName": alb.dns_name})

    def _certificate(
        self, name: str, settings: AwsLoadBalancerSettings, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """A certificate for domainName, validated by a DNS record in hostedZoneId (ACM renews it)."""
        assert settings.hosted_zone_id, "validated in AwsSettings: a certificate source is required"
        certificate = aws.acm.Certificate(
            name,
            aws.acm.CertificateArgs(
                domain_name=settings.domain_name, validation_method="DNS", key_algorithm="EC_prime256v1"
            ),
            opts=child,
        )
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-certificate-validation",
            aws.route53.RecordArgs(
                zone_id=settings.hosted_zone_id,
                name=option.resource_record_name,
                type=option.resource_record_type,
                records=[option.resource_record_value],
                ttl=300,
                allow_overwrite=True,
            ),
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            name,
            aws.acm.CertificateValidationArgs(certificate_arn=certificate.arn, validation_record_fqdns=[record.fqdn]),
            opts=child,
        )
        return validation.certificate_arn
