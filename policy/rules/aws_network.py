"""VPC and security groups: only the load balancer's 80/443 face the internet."""

from __future__ import annotations

from .base import LOAD_BALANCERS, UNKNOWN, Res, Stack, as_list, get, items, label, port_range, resource_rule, stack_rule

VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS_RULE = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
WORLD = ("0.0.0.0/0", "::/0")
WEB_PORTS = ((80, 80), (443, 443))
ALL_PROTOCOLS = ("-1", "all")


def _flows(stack: Stack, direction: str) -> list[tuple[Res, dict, list[Res]]]:
    """Every ingress or egress permission: (resource, rule fields, the security groups it belongs to).

    Rules come three ways: standalone vpc rules, the older ec2 SecurityGroupRule, and
    blocks inline in the group; all are normalized to protocol/ports/cidrs/description.
    """
    flows = []
    standalone = INGRESS_RULE if direction == "ingress" else EGRESS_RULE
    for rule in stack.of(standalone):
        fields = {
            "protocol": rule.get("ipProtocol"),
            "ports": port_range(rule.props),
            "cidrs": [c for c in (rule.get("cidrIpv4"), rule.get("cidrIpv6")) if c is not None],
            "description": rule.get("description"),
        }
        fields["unknown"] = _unknown(fields, (rule.get("fromPort"), rule.get("toPort")))
        flows.append((rule, fields, stack.joined(rule, "securityGroupId", SECURITY_GROUP)))
    for rule in stack.of(LEGACY_RULE):
        if rule.get("type") != direction:
            continue
        fields = {
            "protocol": rule.get("protocol"),
            "ports": port_range(rule.props),
            "cidrs": as_list(rule.get("cidrBlocks")) + as_list(rule.get("ipv6CidrBlocks")),
            "description": rule.get("description"),
        }
        fields["unknown"] = _unknown(fields, (rule.get("fromPort"), rule.get("toPort")))
        flows.append((rule, fields, stack.joined(rule, "securityGroupId", SECURITY_GROUP)))
    for group in stack.of(SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        for block in items(group.get(direction)):
            fields = {
                "protocol": get(block, "protocol"),
                "ports": port_range(block),
                "cidrs": as_list(get(block, "cidrBlocks")) + as_list(get(block, "ipv6CidrBlocks")),
                "description": get(block, "description"),
            }
            fields["unknown"] = _unknown(fields, (get(block, "fromPort"), get(block, "toPort")))
            flows.append((group, fields, [group]))
    return flows


def _unknown(fields: dict, raw_ports: tuple) -> bool:
    return fields["protocol"] is UNKNOWN or UNKNOWN in fields["cidrs"] or UNKNOWN in raw_ports


def _describe(fields: dict) -> str:
    ports = fields["ports"]
    where = (
        "all ports"
        if ports is None or ports == (0, 65535)
        else (str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}")
    )
    return f"{fields['protocol']} {where}"


def _alb_groups(stack: Stack) -> set[str]:
    urns = set()
    for lb in stack.of(*LOAD_BALANCERS):
        if lb.get("loadBalancerType", "application") == "application":
            urns |= {g.urn for g in stack.joined(lb, "securityGroups", SECURITY_GROUP)}
    return urns


@stack_rule(
    "sg-world-ingress-only-alb-web",
    ["FSBP EC2.18", "FSBP EC2.19", "CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_260", "CKV_AWS_277", "CIS AWS 5.2"],
    "Only the load balancer's security group is open to 0.0.0.0/0 or ::/0, and only on tcp 80/443",
    [SECURITY_GROUP, INGRESS_RULE, LEGACY_RULE, *LOAD_BALANCERS],
)
def world_ingress(stack: Stack) -> list[tuple[str, str]]:
    found = []
    albs = _alb_groups(stack)
    for resource, fields, groups in _flows(stack, "ingress"):
        world = [c for c in fields["cidrs"] if c in WORLD]
        if not world or fields["unknown"]:
            continue
        web = str(fields["protocol"]).lower() in ("tcp", "6") and fields["ports"] in WEB_PORTS
        on_alb = bool(groups) and all(g.urn in albs for g in groups)
        if not (web and on_alb):
            target = ", ".join(label(g) for g in groups) or "a security group outside this stack"
            found.append(
                (
                    resource.urn,
                    f"{label(resource)} opens {_describe(fields)} to {world[0]} on {target}; "
                    "only the load balancer's tcp 80/443 may be open to the world",
                )
            )
    return found


@stack_rule(
    "sg-no-world-all-traffic-egress",
    ["CKV_AWS_382"],
    "No security group allows all traffic out to 0.0.0.0/0 or ::/0",
    [SECURITY_GROUP, EGRESS_RULE, LEGACY_RULE],
)
def world_all_egress(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for resource, fields, _ in _flows(stack, "egress"):
        world = [c for c in fields["cidrs"] if c in WORLD]
        everything = str(fields["protocol"]).lower() in ALL_PROTOCOLS or fields["ports"] in (None, (0, 65535))
        if world and everything and not fields["unknown"]:
            found.append(
                (
                    resource.urn,
                    f"{label(resource)} allows {_describe(fields)} out to {world[0]}; name the protocol and port",
                )
            )
    return found


@stack_rule(
    "sg-rule-descriptions",
    ["CKV_AWS_23"],
    "Every security group rule says what it is for (a description)",
    [SECURITY_GROUP, INGRESS_RULE, EGRESS_RULE, LEGACY_RULE],
)
def rule_descriptions(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for direction in ("ingress", "egress"):
        for resource, fields, _ in _flows(stack, direction):
            if fields["description"] in (None, ""):
                found.append((resource.urn, f"{label(resource)}: {direction} {_describe(fields)} has no description"))
    return found


@stack_rule(
    "default-sg-closed",
    ["CKV2_AWS_12", "FSBP EC2.2", "CIS AWS 5.4"],
    "Each VPC's default security group is managed and has no rules",
    [VPC, DEFAULT_SECURITY_GROUP],
)
def default_sg_closed(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for group in stack.of(DEFAULT_SECURITY_GROUP):
        for direction in ("ingress", "egress"):
            rules = group.get(direction)
            if rules not in (None, [], UNKNOWN):
                found.append((group.urn, f"{label(group)} must have no {direction} rules"))
    for vpc in stack.of(VPC):
        if not stack.joined_to(vpc, "vpcId", DEFAULT_SECURITY_GROUP):
            found.append(
                (
                    vpc.urn,
                    f"{label(vpc)}: its default security group is not managed "
                    "(add a DefaultSecurityGroup with no rules)",
                )
            )
    return found


@stack_rule("vpc-flow-logs", ["CKV2_AWS_11", "FSBP EC2.6", "CIS AWS 3.7"], "Each VPC has flow logs", [VPC, FLOW_LOG])
def flow_logs(stack: Stack) -> list[tuple[str, str]]:
    return [
        (vpc.urn, f"{label(vpc)} has no FlowLog")
        for vpc in stack.of(VPC)
        if not stack.joined_to(vpc, "vpcId", FLOW_LOG)
    ]


@resource_rule(
    "subnet-no-auto-public-ip",
    ["CKV_AWS_130", "FSBP EC2.15"],
    "Subnets do not give instances a public IP by default",
    [SUBNET],
)
def no_auto_public_ip(r: Res) -> list[str]:
    return ["mapPublicIpOnLaunch must be false"] if r.get("mapPublicIpOnLaunch") is True else []
