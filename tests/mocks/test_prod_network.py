"""Network and InterfaceEndpoints: the VPC, its subnets, NAT, the S3 gateway endpoint and the
interface endpoints; or an existing VPC used as given.
"""

from __future__ import annotations

import json

from tests.mocks.prod_helpers import (
    ACCOUNT,
    EGRESS,
    REGION,
    SG,
    artifact_bucket_arn,
    reveal,
    rules_of,
    run_prod,
    sg_id,
    statements,
    task_egress,
)


def test_network_spans_two_azs_with_public_private_subnets_nat_and_s3_endpoint(prod_run):
    subnets = [r.plain for r in prod_run.of_type("aws:ec2/subnet:Subnet")]
    public = [s for s in subnets if s["tags"]["tier"] == "public"]
    private = [s for s in subnets if s["tags"]["tier"] == "private"]
    assert len(public) == len(private) == 2
    assert (
        {s["availabilityZone"] for s in public}
        == {s["availabilityZone"] for s in private}
        == {"eu-west-1a", "eu-west-1b"}
    )
    assert not any(s["mapPublicIpOnLaunch"] for s in subnets)
    assert len(prod_run.of_type("aws:ec2/natGateway:NatGateway")) == 2
    nat_routes = [r.plain for r in prod_run.of_type("aws:ec2/route:Route") if r.plain.get("natGatewayId")]
    assert len(nat_routes) == 2 and all(r["destinationCidrBlock"] == "0.0.0.0/0" for r in nat_routes)
    endpoint = prod_run.one("aws:ec2/vpcEndpoint:VpcEndpoint", "mlflow-prod-s3").plain
    assert endpoint["serviceName"] == f"com.amazonaws.{REGION}.s3" and endpoint["vpcEndpointType"] == "Gateway"
    assert len(endpoint["routeTableIds"]) == 2
    flow = prod_run.one("aws:ec2/flowLog:FlowLog").plain
    assert flow["trafficType"] == "ALL" and flow["logDestinationType"] == "s3"


def test_the_vpcs_default_security_group_is_adopted_with_no_rule_at_all(prod_run):
    """CIS AWS 5.4 / FSBP EC2.2. The provider adopts the group AWS made with the VPC and revokes every
    rule of it on create; `ingress` and `egress` are sent as empty lists (not left out), so a rule added
    by hand later shows as drift and the next `up` removes it. A destroy only forgets the group (AWS
    deletes it with the VPC)."""
    (group,) = prod_run.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    vpc = prod_run.one("aws:ec2/vpc:Vpc")
    assert group.plain == {"vpcId": f"{vpc.name}-id", "ingress": [], "egress": []}
    assert group.parent == prod_run.one("mlflow-platform:aws:Network").urn


def test_existing_vpc_is_used_as_given():
    net = {"existingVpcId": "vpc-0123456789abcdef0",
           "existingPublicSubnetIds": ["subnet-0000000000000000a", "subnet-0000000000000000b"],
           "existingPrivateSubnetIds": ["subnet-0000000000000000c", "subnet-0000000000000000d"]}  # fmt: skip
    run = run_prod(aws={"region": REGION, "network": net})
    assert run.of_type("aws:ec2/vpc:Vpc") == [] and run.of_type("aws:ec2/subnet:Subnet") == []
    service = run.exactly("aws:ecs/service:Service", "mlflow-prod").plain
    assert service["networkConfiguration"]["subnets"] == net["existingPrivateSubnetIds"]
    assert run.one("aws:lb/loadBalancer:LoadBalancer").plain["subnets"] == net["existingPublicSubnetIds"]
    assert run.one("aws:rds/subnetGroup:SubnetGroup").plain["subnetIds"] == net["existingPrivateSubnetIds"]
    assert {r.plain["vpcId"] for r in run.of_type(SG)} == {net["existingVpcId"]}
    # Its default security group is its owner's to manage: adopting it would strip their rules.
    assert run.of_type("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup") == []


def test_interface_endpoints_cover_what_the_tasks_call_with_private_dns(prod_run):
    endpoints = [
        r.plain
        for r in prod_run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if r.plain["vpcEndpointType"] == "Interface"
    ]
    services = sorted(e["serviceName"].removeprefix(f"com.amazonaws.{REGION}.") for e in endpoints)
    assert services == ["ecr.api", "ecr.dkr", "kms", "logs", "secretsmanager"]
    private = [s.name for s in prod_run.of_type("aws:ec2/subnet:Subnet") if s.plain["tags"]["tier"] == "private"]
    for endpoint in endpoints:
        assert endpoint["privateDnsEnabled"] is True
        assert endpoint["securityGroupIds"] == [sg_id(prod_run, "endpoints")]
        assert endpoint["subnetIds"] == [f"{name}-id" for name in private]


def test_the_s3_gateway_endpoint_reaches_only_the_artifact_bucket_and_ecr_layers(prod_run):
    bucket_arn = artifact_bucket_arn(prod_run)
    doc = json.loads(reveal(prod_run.one("aws:ec2/vpcEndpoint:VpcEndpoint", "mlflow-prod-s3").inputs["policy"]))
    resources = sorted(r for s in doc["Statement"] for r in s["Resource"])
    assert resources == sorted([bucket_arn, f"{bucket_arn}/*", f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/*"])
    assert all(s["Effect"] == "Allow" and s["Principal"] == "*" for s in doc["Statement"])
    assert statements(doc, "EcrImageLayers")["Action"] == ["s3:GetObject"]


def test_without_interface_endpoints_tasks_reach_https_through_nat():
    run = run_prod(aws={"region": REGION, "allowedAccountIds": [ACCOUNT], "network": {"interfaceEndpoints": False}})
    assert [
        r for r in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if r.plain["vpcEndpointType"] == "Interface"
    ] == []
    assert task_egress(run) == [(443, "0.0.0.0/0"), (5432, sg_id(run, "proxy")), (6379, sg_id(run, "cache"))]
    # The proxy reads the credentials through NAT too.
    assert [
        (r["fromPort"], r.get("cidrIpv4")) for r in rules_of(run, EGRESS, sg_id(run, "proxy")) if r["fromPort"] == 443
    ] == [(443, "0.0.0.0/0")]
