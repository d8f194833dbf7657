"""The VPC: public subnets for the load balancer only, private ones for tasks and the database.

Or an existing VPC and subnets from config, used as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from components.aws.lib.policies import document, statement
from components.aws.lib.providers import AwsContext
from components.aws.log_archive import FLOW_LOG_PREFIX, LogArchive
from components.config.aws import AwsNetworkSettings

# What the tasks call over HTTPS besides S3 (Fargate 1.4 pulls, secrets and logs go through the
# task's own network interface): with these endpoints and S3's gateway, tasks need no internet.
INTERFACE_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "secretsmanager", "logs", "kms")


def ecr_layer_bucket_arn(region: str) -> str:
    """The AWS-owned bucket ECR serves image layers from (ECR user guide, VPC endpoints)."""
    return f"arn:aws:s3:::prod-{region}-starport-layer-bucket"


def s3_endpoint_policy(region: str, bucket_arns: Sequence[pulumi.Input[str]]) -> pulumi.Output[str]:
    """The gateway endpoint reaches our buckets and ECR's layers, no other bucket of any account:
    a compromised task cannot copy artifacts out to a bucket of its own through it."""
    ours = [resource for arn in bucket_arns for resource in (arn, pulumi.Output.concat(arn, "/*"))]
    return document(
        statement("TheArtifactBucket", ["s3:*"], ours, Principal="*"),
        statement("EcrImageLayers", ["s3:GetObject"], [f"{ecr_layer_bucket_arn(region)}/*"], Principal="*"),
    )


def subnet_cidrs(vpc_cidr: IPv4Network, zones: int) -> tuple[list[str], list[str]]:
    """(public, private) CIDRs: sixteenths of the VPC, private from the bottom, public from the middle."""
    blocks = list(vpc_cidr.subnets(prefixlen_diff=4))
    return [str(blocks[8 + i]) for i in range(zones)], [str(blocks[i]) for i in range(zones)]


@dataclass(frozen=True)
class NetworkArgs:
    settings: AwsNetworkSettings
    ctx: AwsContext
    # Where the VPC flow logs go.
    log_archive: LogArchive
    # The buckets the tasks may reach through the S3 gateway endpoint.
    endpoint_bucket_arns: Sequence[pulumi.Input[str]] = ()


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:Network", name, None, opts)
        settings = args.settings
        # The S3 gateway endpoint's prefix list (its addresses), where this component made one.
        self.s3_prefix_list_id: pulumi.Output[str] | None = None
        if settings.existing_vpc_id:
            self.vpc_id = pulumi.Output.from_input(settings.existing_vpc_id)
            self.public_subnet_ids = [pulumi.Output.from_input(s) for s in settings.existing_public_subnet_ids]
            self.private_subnet_ids = [pulumi.Output.from_input(s) for s in settings.existing_private_subnet_ids]
        else:
            self._create(name, settings, args.ctx, args.log_archive, args.endpoint_bucket_arns)
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
            }
        )

    def _create(self, name: str, settings: AwsNetworkSettings, ctx: AwsContext, log_archive: LogArchive,
                endpoint_bucket_arns: Sequence[pulumi.Input[str]]) -> None:  # fmt: skip
        child = pulumi.ResourceOptions(parent=self)
        zones = settings.availability_zones
        az_names = aws.get_availability_zones_output(
            state="available",
            # Only the AZs every account has, never opt-in local or wavelength zones.
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
            opts=ctx.invoke(self),
        ).names

        vpc = aws.ec2.Vpc(
            name,
            aws.ec2.VpcArgs(cidr_block=str(settings.vpc_cidr), enable_dns_support=True, enable_dns_hostnames=True),
            opts=child,
        )
        # The default security group allows all traffic between its members: strip it of every rule.
        aws.ec2.DefaultSecurityGroup(
            name, aws.ec2.DefaultSecurityGroupArgs(vpc_id=vpc.id, ingress=[], egress=[]), opts=child
        )
        igw = aws.ec2.InternetGateway(name, aws.ec2.InternetGatewayArgs(vpc_id=vpc.id), opts=child)

        public_cidrs, private_cidrs = subnet_cidrs(settings.vpc_cidr, zones)
        public_rt = aws.ec2.RouteTable(f"{name}-public", aws.ec2.RouteTableArgs(vpc_id=vpc.id), opts=child)
        aws.ec2.Route(
            f"{name}-public-internet",
            aws.ec2.RouteArgs(route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0", gateway_id=igw.id),
            opts=child,
        )

        public, private, private_rts, nats = [], [], [], []
        for i in range(zones):
            az: pulumi.Output[str] = az_names[i]
            pub = aws.ec2.Subnet(
                f"{name}-public-{i}",
                aws.ec2.SubnetArgs(
                    vpc_id=vpc.id, cidr_block=public_cidrs[i], availability_zone=az,
                    # Nothing launched here gets a public IP unless it asks: only the ALB lives here.
                    map_public_ip_on_launch=False, tags={"Name": f"{name}-public-{i}", "tier": "public"},
                ),
                opts=child,
            )  # fmt: skip
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{i}",
                aws.ec2.RouteTableAssociationArgs(subnet_id=pub.id, route_table_id=public_rt.id),
                opts=child,
            )
            priv = aws.ec2.Subnet(
                f"{name}-private-{i}",
                aws.ec2.SubnetArgs(
                    vpc_id=vpc.id, cidr_block=private_cidrs[i], availability_zone=az, map_public_ip_on_launch=False,
                    tags={"Name": f"{name}-private-{i}", "tier": "private"},
                ),
                opts=child,
            )  # fmt: skip
            if i == 0 or settings.nat_gateways == "one-per-az":
                eip = aws.ec2.Eip(f"{name}-nat-{i}", aws.ec2.EipArgs(domain="vpc"), opts=child)
                nats.append(aws.ec2.NatGateway(
                    f"{name}-nat-{i}",
                    aws.ec2.NatGatewayArgs(allocation_id=eip.id, subnet_id=pub.id),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                ))  # fmt: skip
            rt = aws.ec2.RouteTable(f"{name}-private-{i}", aws.ec2.RouteTableArgs(vpc_id=vpc.id), opts=child)
            aws.ec2.Route(
                f"{name}-private-{i}-nat",
                aws.ec2.RouteArgs(route_table_id=rt.id, destination_cidr_block="0.0.0.0/0", nat_gateway_id=nats[-1].id),
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}",
                aws.ec2.RouteTableAssociationArgs(subnet_id=priv.id, route_table_id=rt.id),
                opts=child,
            )
            public.append(pub.id)
            private.append(priv.id)
            private_rts.append(rt.id)

        # S3 (artifacts, ECR image layers) stays on the AWS network and off the NAT bill.
        s3_endpoint = aws.ec2.VpcEndpoint(
            f"{name}-s3",
            aws.ec2.VpcEndpointArgs(
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{ctx.region}.s3",
                vpc_endpoint_type="Gateway",
                route_table_ids=private_rts,
                policy=s3_endpoint_policy(ctx.region, endpoint_bucket_arns),
            ),
            opts=child,
        )
        if settings.flow_logs:
            aws.ec2.FlowLog(
                name,
                aws.ec2.FlowLogArgs(
                    vpc_id=vpc.id,
                    traffic_type="ALL",
                    log_destination_type="s3",
                    log_destination=pulumi.Output.concat(log_archive.bucket_arn, f"/{FLOW_LOG_PREFIX}/"),
                    max_aggregation_interval=600,
                ),
                # After the bucket policy that lets log delivery write there.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[log_archive.policy]),
            )
        self.s3_prefix_list_id = s3_endpoint.prefix_list_id
        self.vpc_id = vpc.id
        self.public_subnet_ids = public
        self.private_subnet_ids = private


@dataclass(frozen=True)
class InterfaceEndpointsArgs:
    ctx: AwsContext
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    # The group of the endpoints' network interfaces (HTTPS from the tasks only).
    security_group_id: pulumi.Input[str]


class InterfaceEndpoints(pulumi.ComponentResource):
    """Private endpoints of the AWS APIs the tasks call, in the private subnets, reachable from the
    tasks' security group only; private DNS, so the SDKs' default host names resolve to them."""

    def __init__(self, name: str, args: InterfaceEndpointsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:InterfaceEndpoints", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        endpoints = {}
        for service in INTERFACE_ENDPOINT_SERVICES:
            endpoints[service] = aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                aws.ec2.VpcEndpointArgs(
                    vpc_id=args.vpc_id,
                    service_name=f"com.amazonaws.{args.ctx.region}.{service}",
                    vpc_endpoint_type="Interface",
                    subnet_ids=list(args.subnet_ids),
                    security_group_ids=[args.security_group_id],
                    private_dns_enabled=True,
                ),
                opts=child,
            )
        self.register_outputs({service: endpoint.id for service, endpoint in endpoints.items()})
