"""Prod (aws) stack config: the committed file validates; every refusal names its key and says why."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from components.config import AwsSettings, ConfigError, parse_settings
from components.versions import REPO_ROOT

WAF_ACL = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/corporate/0a1b2c3d-0000-1111-2222-333344445555"
CERT = "arn:aws:acm:eu-west-1:123456789012:certificate/8c5e4f1a-2b3d-4e6f-9a7b-0c1d2e3f4a5b"
GOOD = {
    "target": "aws",
    "aws": {"region": "eu-west-1"},
    "tracking": {"replicas": 2, "allowedHosts": ["mlflow.example.com"]},
    "loadBalancer": {"domainName": "mlflow.example.com", "certificateArn": CERT},
}


def with_(**sections) -> dict:
    """GOOD with the given sections merged in (a value of None deletes the key)."""
    raw = copy.deepcopy(GOOD)
    for section, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], **value}
            raw[section] = {k: v for k, v in raw[section].items() if v is not None}
        else:
            raw[section] = value
    return raw


def problems(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw)
    return dict(caught.value.problems)


def test_committed_prod_config_validates():
    data = yaml.safe_load((REPO_ROOT / "Pulumi.prod.yaml").read_text())["config"]
    raw = {k.split(":", 1)[1]: v for k, v in data.items() if k.startswith("mlflow-platform:")}
    settings = parse_settings(json.loads(json.dumps(raw)))
    assert isinstance(settings, AwsSettings)
    assert data["pulumi:disable-default-providers"] == ["*"]
    assert settings.load_balancer.domain_name in settings.tracking.allowed_hosts
    assert settings.database.multi_az and settings.database.deletion_protection
    assert settings.auth.mode != "none"


def test_minimal_prod_config_gets_production_defaults():
    s = parse_settings(GOOD)
    assert s.database.multi_az is True and s.database.deletion_protection is True
    assert s.database.backup_retention_days == 7 and s.database.publicly_accessible is False
    assert s.auth.mode == "basic-auth"
    assert s.load_balancer.ssl_policy.startswith("ELBSecurityPolicy-TLS13-")
    assert s.load_balancer.idle_timeout_seconds >= 900
    assert s.aws.network.availability_zones == 2 and s.aws.network.nat_gateways == "one-per-az"
    assert s.artifact_store.force_destroy is False
    assert s.tasks.ephemeral_storage_gib == 50
    # Issue 11: WAF on, a year of CloudWatch logs, no force-deleted images, no registry-wide scanning change.
    assert s.load_balancer.waf.enabled is True and s.load_balancer.waf.rate_limit_per_5_minutes == 60000
    assert s.logs.retention_days == 365
    assert s.registry.force_delete is False and s.registry.enhanced_scanning is False


def test_waf_may_be_off_only_behind_another_acl_or_on_an_internal_load_balancer():
    own = parse_settings(with_(loadBalancer={"wafAclArn": WAF_ACL}))
    assert own.load_balancer.waf_acl_arn == WAF_ACL
    internal = parse_settings(with_(loadBalancer={"internal": True, "waf": {"enabled": False}}))
    assert internal.load_balancer.waf.enabled is False


NONE_REFUSAL = (
    "'none' (no sign-in at all) is refused on an internet-facing load balancer whose loadBalancer.ingressCidrs "
    "include public addresses ({}): only private or reserved ranges (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, "
    "100.64.0.0/10, ...) may reach an unauthenticated MLflow; use basic-auth, oidc or cognito, or set "
    "loadBalancer.internal"
)
HTTPS_REFUSAL = (
    "a prod stack serves HTTPS only: set certificateArn (an ACM certificate for domainName) "
    "or hostedZoneId (to create one, DNS-validated in that Route 53 zone)"
)


@pytest.mark.parametrize(
    ("raw", "path", "reason"),
    [
        # No HTTPS: neither a certificate nor a zone to create one in.
        (with_(loadBalancer={"certificateArn": None}), "loadBalancer.certificateArn", HTTPS_REFUSAL),
        (
            with_(loadBalancer={"domainName": None}),
            "loadBalancer.domainName",
            "required: a prod stack serves HTTPS only, on a name its certificate covers (e.g. mlflow.example.com)",
        ),
        # A public database.
        (
            with_(database={"publiclyAccessible": True}),
            "database.publiclyAccessible",
            "the metadata database must not be public: it lives in private subnets and only the tracking server's "
            "tasks reach it; remove this key",
        ),
        # Backups.
        (
            with_(database={"backupRetentionDays": 3}),
            "database.backupRetentionDays",
            "Input should be greater than or equal to 7 (got 3)",
        ),
        (
            with_(database={"backupRetentionDays": 36}),
            "database.backupRetentionDays",
            "Input should be less than or equal to 35 (got 36)",
        ),
        (
            with_(database={"allocatedStorageGb": 200, "maxAllocatedStorageGb": 100}),
            "database.maxAllocatedStorageGb",
            "must be at least allocatedStorageGb (200), the storage autoscaling ceiling",
        ),
        (
            with_(database={"engineVersion": "13"}),
            "database.engineVersion",
            "PostgreSQL 13 is past RDS standard support; use 14 or later",
        ),
        (
            with_(database={"instanceClass": "t4g.medium"}),
            "database.instanceClass",
            r"'t4g.medium' does not match the expected format ^db\.[a-z0-9]+\.[a-z0-9]+$",
        ),
        # Bad ARNs.
        (
            with_(loadBalancer={"certificateArn": "arn:aws:acm:eu-west-1:123:certificate/x"}),
            "loadBalancer.certificateArn",
            "does not match the expected format",
        ),
        (
            with_(loadBalancer={"certificateArn": CERT.replace("eu-west-1", "us-east-1")}),
            "loadBalancer.certificateArn",
            "is in us-east-1, but the stack deploys to aws.region eu-west-1",
        ),
        (
            with_(artifactStore={"kmsKeyArn": "alias/aws/s3"}),
            "artifactStore.kmsKeyArn",
            "does not match the expected format",
        ),
        (
            with_(loadBalancer={"wafAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/a/1"}),
            "loadBalancer.wafAclArn",
            "does not match the expected format",
        ),
        (
            with_(loadBalancer={"hostedZoneId": "example.com"}),
            "loadBalancer.hostedZoneId",
            "does not match the expected format",
        ),
        (with_(aws={"allowedAccountIds": ["12345"]}), "aws.allowedAccountIds.0", "does not match the expected format"),
        # TLS and the load balancer.
        (
            with_(loadBalancer={"sslPolicy": "ELBSecurityPolicy-2016-08"}),
            "loadBalancer.sslPolicy",
            "Input should be 'ELBSecurityPolicy-TLS13-1-2-Res-2021-06'",
        ),
        (
            with_(loadBalancer={"idleTimeoutSeconds": 5000}),
            "loadBalancer.idleTimeoutSeconds",
            "Input should be less than or equal to 3900 (got 5000)",
        ),
        (
            with_(loadBalancer={"domainName": "mlflow"}),
            "loadBalancer.domainName",
            "'mlflow' is not a fully qualified domain name such as mlflow.example.com",
        ),
        (
            with_(loadBalancer={"domainName": "ml.example.org"}),
            "tracking.allowedHosts",
            "must include loadBalancer.domainName 'ml.example.org': the load balancer forwards the Host header and "
            "MLflow refuses hosts not listed",
        ),
        # Auth: never an open server by accident.
        (with_(auth={"mode": "none"}), "auth.mode", NONE_REFUSAL.format("0.0.0.0/0")),
        (
            with_(auth={"mode": "oidc"}),
            "auth.oidc",
            "required when auth.mode is 'oidc': issuer, endpoints, clientId, clientSecret",
        ),
        (
            with_(auth={"mode": "cognito"}),
            "auth.cognito",
            "required when auth.mode is 'cognito': userPoolArn, userPoolClientId, userPoolDomain",
        ),
        (
            with_(
                auth={
                    "mode": "basic-auth",
                    "cognito": {
                        "userPoolArn": "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEf123",
                        "userPoolClientId": "abc123",
                        "userPoolDomain": "auth.example.com",
                    },
                }
            ),
            "auth.cognito",
            "is ignored unless auth.mode is 'cognito' (it is 'basic-auth'); remove it",
        ),
        (
            with_(auth={"mode": "oidc", "oidc": {"issuer": "http://idp.example.com"}}),
            "auth.oidc.issuer",
            "does not match the expected format",
        ),
        # The tracking server.
        (
            with_(tracking={"replicas": 1}),
            "tracking.replicas",
            "a prod service runs at least 2 tasks, spread over availability zones (got 1)",
        ),
        (
            with_(tracking={"replicas": 4}, tasks={"maxCount": 3}),
            "tasks.maxCount",
            "must be at least tracking.replicas (4)",
        ),
        (
            with_(tracking={"artifacts": "direct"}),
            "tracking.artifacts",
            "'direct' needs every client to read and write the bucket with its own AWS credentials, but only the "
            "tracking server's task role may; use 'proxied'",
        ),
        (
            with_(tasks={"cpu": 1000}),
            "tasks.cpu",
            "Fargate takes 256, 512, 1024, 2048, 4096, 8192, 16384 CPU units (got 1000)",
        ),
        (
            with_(tasks={"cpu": 1024, "memoryMib": 1024}),
            "tasks.memoryMib",
            "Fargate with 1024 CPU units takes 2048 to 8192 MiB in its steps (got 1024)",
        ),
        (
            with_(tasks={"ephemeralStorageGib": 10}),
            "tasks.ephemeralStorageGib",
            "Input should be greater than or equal to 21 (got 10)",
        ),
        (with_(logs={"retentionDays": 10}), "logs.retentionDays", "CloudWatch Logs keeps logs for one of 1, 3, 5"),
        (
            with_(logs={"retentionDays": 60}),
            "logs.retentionDays",
            "a prod stack keeps them at least 90: one of 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, "
            "2557, 2922, 3288, 3653 (got 60)",
        ),
        (with_(logs={"retentionDays": 100}), "logs.retentionDays", "(got 100)"),
        # WAF.
        (
            with_(loadBalancer={"waf": {"enabled": False}}),
            "loadBalancer.waf.enabled",
            "false is refused on an internet-facing load balancer: keep the program's web ACL, name your own in "
            "loadBalancer.wafAclArn, or set loadBalancer.internal",
        ),
        (
            with_(loadBalancer={"waf": {"rateLimitPer5Minutes": 9}}),
            "loadBalancer.waf.rateLimitPer5Minutes",
            "Input should be greater than or equal to 10 (got 9)",
        ),
        (
            with_(loadBalancer={"waf": {"rateLimitPer5Minutes": 100}, "wafAclArn": WAF_ACL}),
            "loadBalancer.waf",
            "a load balancer takes one web ACL: with loadBalancer.wafAclArn (yours) the program creates none, so "
            "remove loadBalancer.waf (or wafAclArn)",
        ),
        (with_(registry={"forceDelete": "maybe"}), "registry.forceDelete", "Input should be a valid boolean"),
        # Network.
        (
            with_(aws={"network": {"vpcCidr": "8.8.0.0/16"}}),
            "aws.network.vpcCidr",
            "8.8.0.0/16 is not a private (RFC 1918) range",
        ),
        (
            with_(aws={"network": {"vpcCidr": "10.0.0.0/24"}}),
            "aws.network.vpcCidr",
            "10.0.0.0/24: use a /16 to /22, so each subnet (1/16 of it) still fits a load balancer",
        ),
        (
            with_(aws={"network": {"availabilityZones": 1}}),
            "aws.network.availabilityZones",
            "Input should be greater than or equal to 2 (got 1)",
        ),
        (
            with_(
                aws={
                    "network": {
                        "existingVpcId": "vpc-0123456789abcdef0",
                        "existingPublicSubnetIds": ["subnet-0000000a"],
                        "existingPrivateSubnetIds": ["subnet-0000000b", "subnet-0000000c"],
                    }
                }
            ),
            "aws.network.existingPublicSubnetIds",
            "give at least 2 subnets, in different availability zones",
        ),
        (
            with_(aws={"network": {"existingPrivateSubnetIds": ["subnet-0000000b", "subnet-0000000c"]}}),
            "aws.network.existingVpcId",
            "required when existing subnet ids are given",
        ),
        (with_(aws={"region": "Ireland"}), "aws.region", "does not match the expected format"),
        # Keys of the other target, and typos.
        (
            with_(proxy={"port": 8080}),
            "proxy",
            "unknown key for target 'aws': it is only valid when target is 'docker'",
        ),
        (with_(loadBalancer={"domainNmae": "x"}), "loadBalancer.domainNmae", "did you mean 'domainName'?"),
    ],
)
def test_bad_prod_config_names_the_key_and_why(raw, path, reason):
    found = problems({k: v for k, v in raw.items() if v is not None})
    assert path in found, found
    assert found[path] == reason or reason in found[path], found[path]


def test_exact_reasons_for_the_security_refusals():
    """The two refusals the issue names, word for word (they are what a user reads)."""
    found = problems(with_(loadBalancer={"certificateArn": None}, database={"publiclyAccessible": True}))
    assert found["loadBalancer.certificateArn"] == HTTPS_REFUSAL
    assert found["database.publiclyAccessible"].startswith("the metadata database must not be public")


def test_auth_none_is_accepted_only_behind_a_restricted_range():
    settings = parse_settings(with_(auth={"mode": "none"}, loadBalancer={"ingressCidrs": ["203.0.113.0/24"]}))
    assert settings.auth.mode == "none"
    assert parse_settings(with_(auth={"mode": "none"}, loadBalancer={"internal": True})).load_balancer.internal


@pytest.mark.parametrize(
    ("cidrs", "named"),
    [
        (["0.0.0.0/0"], "0.0.0.0/0"),
        # The whole internet in two halves: no /0 anywhere.
        (["0.0.0.0/1", "128.0.0.0/1"], "0.0.0.0/1, 128.0.0.0/1"),
        # A /5 from 0.0.0.0 starts and ends in reserved space (0/8 ... 7/8) but is ~117M public addresses.
        (["10.0.0.0/8", "0.0.0.0/5"], "0.0.0.0/5"),
        # Small, but public all the same: anyone behind that address reaches an open server.
        (["192.168.0.0/16", "198.51.100.0/24", "8.8.8.8/32"], "8.8.8.8/32"),
    ],
)
def test_auth_none_is_refused_when_any_public_address_may_connect(cidrs, named):
    found = problems(with_(auth={"mode": "none"}, loadBalancer={"ingressCidrs": cidrs}))
    assert found["auth.mode"] == NONE_REFUSAL.format(named)
    # An internal load balancer has no public address: the same ranges are accepted there.
    assert parse_settings(with_(auth={"mode": "none"}, loadBalancer={"ingressCidrs": cidrs, "internal": True}))


def test_auth_none_is_accepted_behind_private_and_reserved_ranges_only():
    cidrs = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "198.51.100.0/24"]
    settings = parse_settings(with_(auth={"mode": "none"}, loadBalancer={"ingressCidrs": cidrs}))
    assert [str(c) for c in settings.load_balancer.ingress_cidrs] == cidrs


def test_public_addresses_are_counted_not_guessed_from_the_ends():
    from ipaddress import IPv4Network

    from components.config.aws import public_addresses

    assert (
        public_addresses(IPv4Network("0.0.0.0/1")) + public_addresses(IPv4Network("128.0.0.0/1"))
        == public_addresses(IPv4Network("0.0.0.0/0"))
        > 3_500_000_000
    )
    assert public_addresses(IPv4Network("10.0.0.0/8")) == public_addresses(IPv4Network("224.0.0.0/3")) == 0
    assert public_addresses(IPv4Network("8.8.8.0/24")) == 256


def test_a_zone_alone_gives_https_through_a_created_certificate():
    settings = parse_settings(with_(loadBalancer={"certificateArn": None, "hostedZoneId": "Z0123456789EXAMPLEABC"}))
    assert settings.load_balancer.certificate_arn is None and settings.load_balancer.hosted_zone_id


def test_oidc_client_secret_is_never_printed():
    oidc = {"issuer": "https://idp.example.com", "authorizationEndpoint": "https://idp.example.com/a",
            "tokenEndpoint": "https://idp.example.com/t", "userInfoEndpoint": "https://idp.example.com/u",
            "clientId": "mlflow", "clientSecret": "hunter2-but-longer"}  # fmt: skip
    settings = parse_settings(with_(auth={"mode": "oidc", "oidc": oidc}))
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())
    assert settings.auth.oidc.client_secret.get_secret_value() == "hunter2-but-longer"


@pytest.mark.parametrize("value", [73194628105, ["hunter2-in-a-list"], ""])
def test_a_wrong_oidc_client_secret_is_refused_without_being_printed(value):
    oidc = {"issuer": "https://idp.example.com", "authorizationEndpoint": "https://idp.example.com/a",
            "tokenEndpoint": "https://idp.example.com/t", "userInfoEndpoint": "https://idp.example.com/u",
            "clientId": "mlflow", "clientSecret": value}  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_settings(with_(auth={"mode": "oidc", "oidc": oidc}))
    assert dict(caught.value.problems) == {
        "auth.oidc.clientSecret": "must be a non-empty string (its value is not shown)"
    }
    assert "73194628105" not in str(caught.value) and "hunter2" not in str(caught.value)


def test_all_problems_are_reported_at_once():
    found = problems(with_(
        loadBalancer={"certificateArn": None},
        database={"publiclyAccessible": True},
        tracking={"replicas": 1},
        auth={"mode": "none"},
    ))  # fmt: skip
    assert {"loadBalancer.certificateArn", "database.publiclyAccessible", "tracking.replicas", "auth.mode"} <= set(
        found
    )


def test_the_documented_minimal_prod_config_is_valid():
    """docs/aws.md: only target, aws.region, loadBalancer.domainName and a certificate are required."""
    settings = parse_settings(
        {
            "target": "aws",
            "aws": {"region": "eu-west-1"},
            "loadBalancer": {
                "domainName": "mlflow.example.com",
                "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/8c5e4f1a-2b3d-4e6f-9a7b-0c1d2e3f4a5b",
            },
        }
    )
    # Prod's own defaults: two tasks, and the load balancer's name as the accepted Host.
    assert settings.tracking.replicas == 2
    assert settings.tracking.allowed_hosts == ["mlflow.example.com"]


def test_explicit_tracking_keys_win_over_prod_defaults():
    raw = {
        **GOOD,
        "tracking": {
            **GOOD.get("tracking", {}),
            "replicas": 3,
            "allowedHosts": ["mlflow.example.com", "mlflow.internal.example.com"],
        },
    }
    settings = parse_settings(raw)
    assert settings.tracking.replicas == 3
    assert settings.tracking.allowed_hosts == ["mlflow.example.com", "mlflow.internal.example.com"]
