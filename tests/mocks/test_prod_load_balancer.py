"""LoadBalancer: the HTTPS entry, its listeners, target group, drain and DNS."""

from __future__ import annotations

import shlex

from components.config.aws import MODERN_TLS_POLICIES
from tests.mocks.prod_helpers import ACCOUNT, REGION, container, prod_section, run_prod, sg_id


def test_alb_drops_invalid_headers_logs_and_outlasts_big_uploads(prod_run):
    alb = prod_run.one("aws:lb/loadBalancer:LoadBalancer").plain
    assert alb["dropInvalidHeaderFields"] is True
    assert alb["internal"] is False and alb["loadBalancerType"] == "application"
    assert alb["accessLogs"]["enabled"] is True
    assert alb["idleTimeout"] == prod_section("loadBalancer")["idleTimeoutSeconds"] >= 900
    assert alb["securityGroups"] == [sg_id(prod_run, "alb")]
    public = [f"{r.name}-id" for r in prod_run.of_type("aws:ec2/subnet:Subnet") if r.plain["tags"]["tier"] == "public"]
    assert sorted(alb["subnets"]) == sorted(public)
    assert alb["enableDeletionProtection"] is True


def test_uvicorn_keep_alive_outlasts_the_alb_idle_timeout(prod_run):
    idle = prod_run.one("aws:lb/loadBalancer:LoadBalancer").plain["idleTimeout"]
    command = container(prod_run)["command"]
    opts = shlex.split(command[command.index("--uvicorn-opts") + 1])
    assert int(opts[opts.index("--timeout-keep-alive") + 1]) > idle


def test_http_listener_only_redirects_to_https(prod_run):
    http = prod_run.named("mlflow-prod-http").plain
    assert (http["port"], http["protocol"]) == (80, "HTTP")
    (action,) = http["defaultActions"]
    assert action["type"] == "redirect"
    assert action["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}


def test_https_listener_uses_the_configured_certificate_and_a_modern_tls_policy(prod_run):
    https = prod_run.named("mlflow-prod-https").plain
    assert (https["port"], https["protocol"]) == (443, "HTTPS")
    assert https["sslPolicy"] in MODERN_TLS_POLICIES and "TLS13" in https["sslPolicy"]
    assert https["certificateArn"] == prod_section("loadBalancer")["certificateArn"]
    (forward,) = https["defaultActions"]
    assert forward["type"] == "forward"
    assert https["routingHttpResponseStrictTransportSecurityHeaderValue"].startswith("max-age=")


def test_target_group_health_checks_health(prod_run):
    tg = prod_run.one("aws:lb/targetGroup:TargetGroup").plain
    assert tg["targetType"] == "ip" and tg["port"] == 5000 and tg["protocol"] == "HTTP"
    assert tg["healthCheck"]["path"] == "/health" and tg["healthCheck"]["matcher"] == "200"


def test_a_deploy_drains_tasks_as_long_as_an_upload_may_run(prod_run):
    """Proxied uploads may take the ALB's idle timeout (3600 s); a deploy or scale-in must not cut
    them at 120 s. Fargate stops a container at most 120 s after SIGTERM, which ECS sends only
    once the target group has drained the task, so the drain is what has to be that long."""
    idle = prod_section("loadBalancer")["idleTimeoutSeconds"]
    tg = prod_run.one("aws:lb/targetGroup:TargetGroup").plain
    assert tg["deregistrationDelay"] == min(idle, 3600) == 3600
    assert container(prod_run)["stopTimeout"] == 120  # the Fargate maximum
    # `pulumi up` waits for steady state: long enough for that drain (the provider's default is 20 min).
    service = prod_run.exactly("aws:ecs/service:Service", "mlflow-prod")
    grace = int(service.plain["healthCheckGracePeriodSeconds"])
    assert service.custom_timeouts["update"] == f"{-(-(grace + 3600 + 900) // 60)}m"
    assert int(service.custom_timeouts["update"].rstrip("m")) * 60 > 3600 + grace
    assert int(service.custom_timeouts["delete"].rstrip("m")) * 60 > 3600


def test_route53_alias_points_the_domain_at_the_alb(prod_run):
    (record,) = [r.plain for r in prod_run.of_type("aws:route53/record:Record")]
    assert record["name"] == "mlflow.example.com" and record["type"] == "A"
    # A leftover record of the same name (an earlier stack, or made by hand) does not fail the `up`.
    assert record["allowOverwrite"] is True
    assert record["zoneId"] == prod_section("loadBalancer")["hostedZoneId"]
    assert record["aliases"][0]["name"].endswith(".elb.amazonaws.com")


def test_certificate_is_created_and_dns_validated_without_a_certificate_arn():
    lb = {k: v for k, v in prod_section("loadBalancer").items() if k != "certificateArn"}
    run = run_prod(loadBalancer=lb)
    cert = run.one("aws:acm/certificate:Certificate").plain
    assert cert["domainName"] == "mlflow.example.com" and cert["validationMethod"] == "DNS"
    validation = run.one("aws:route53/record:Record", "certificate-validation").plain
    assert validation["type"] == "CNAME" and validation["zoneId"] == lb["hostedZoneId"]
    certificate_arn = f"arn:aws:acm:{REGION}:{ACCOUNT}:{run.one('aws:acm/certificate:Certificate').name}"
    validated = run.one("aws:acm/certificateValidation:CertificateValidation").plain
    assert validated["certificateArn"] == certificate_arn
    assert run.named("mlflow-prod-https").plain["certificateArn"] == certificate_arn
