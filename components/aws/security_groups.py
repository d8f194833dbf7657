"""Who may talk to whom, in one place: world -> ALB (80/443) -> tasks (MLflow port) -> database (5432)
and job queue (6379); with sign-in at the ALB (oidc, cognito), also ALB -> identity provider (HTTPS).

Each group starts with no rule at all (the provider strips AWS's default allow-all egress);
every permitted flow is one rule below, named by its description.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network

import pulumi
import pulumi_aws as aws

from components.specs.redis import PORT as JOB_QUEUE_PORT
from images.mlflow import server_contract as contract

HTTPS_PORT = 443
HTTP_PORT = 80


@dataclass(frozen=True)
class SecurityGroupsArgs:
    vpc_id: pulumi.Input[str]
    # Who may reach the load balancer.
    ingress_cidrs: Sequence[IPv4Network]
    # The MLflow port of the tasks.
    server_port: int
    # oidc / cognito: the load balancer itself calls the identity provider.
    sign_in_at_load_balancer: bool = False
    # Given, the tasks reach AWS only through interface endpoints (a group of their own,
    # `endpoints_id`) and S3's addresses; otherwise any HTTPS address (through NAT).
    s3_prefix_list_id: pulumi.Input[str] | None = None
    # RDS Proxy between the tasks and the database (its own group).
    database_proxy: bool = False
    # The server jobs' ElastiCache (its own group, `job_queue_id`).
    job_queue: bool = False


class SecurityGroups(pulumi.ComponentResource):
    load_balancer_id: pulumi.Output[str]
    tasks_id: pulumi.Output[str]
    database_id: pulumi.Output[str]
    # Only with `s3_prefix_list_id`: the interface endpoints' group.
    endpoints_id: pulumi.Output[str] | None
    # Only with `database_proxy`: RDS Proxy's group.
    database_proxy_id: pulumi.Output[str] | None
    # Only with `job_queue`: the ElastiCache group's.
    job_queue_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: SecurityGroupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:SecurityGroups", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vpc_id, server_port, s3_prefix_list_id = args.vpc_id, args.server_port, args.s3_prefix_list_id

        def group(role: str, description: str) -> aws.ec2.SecurityGroup:
            return aws.ec2.SecurityGroup(
                f"{name}-{role}",
                aws.ec2.SecurityGroupArgs(
                    vpc_id=vpc_id, description=description, revoke_rules_on_delete=True, tags={"Name": f"{name}-{role}"}
                ),
                opts=child,
            )

        alb = group("alb", "MLflow load balancer: HTTPS (and HTTP->HTTPS redirect) from the allowed ranges")
        tasks = group("tasks", "MLflow tasks: the MLflow port from the load balancer only")
        db = group("db", "MLflow metadata database: PostgreSQL from the MLflow tasks only")
        endpoints = None
        if s3_prefix_list_id is not None:
            endpoints = group("endpoints", "AWS API endpoints: HTTPS from the MLflow tasks only")
        cache = None
        if args.job_queue:
            cache = group("cache", "MLflow job queue: Redis protocol (TLS) from the MLflow tasks only")
        proxy = None
        if args.database_proxy:
            proxy = group("proxy", "MLflow database proxy: PostgreSQL from the MLflow tasks, to the database")

        def ingress(rule: str, sg, port: int, description: str, *, cidr=None, source=None) -> None:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule}",
                aws.vpc.SecurityGroupIngressRuleArgs(
                    security_group_id=sg.id, ip_protocol="tcp", from_port=port, to_port=port,
                    cidr_ipv4=cidr, referenced_security_group_id=source, description=description,
                ),
                opts=child,
            )  # fmt: skip

        def egress(rule: str, sg, port: int, description: str, *, cidr=None, destination=None,
                   prefix_list=None) -> None:  # fmt: skip
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-{rule}",
                aws.vpc.SecurityGroupEgressRuleArgs(
                    security_group_id=sg.id, ip_protocol="tcp", from_port=port, to_port=port,
                    cidr_ipv4=cidr, referenced_security_group_id=destination, prefix_list_id=prefix_list,
                    description=description,
                ),
                opts=child,
            )  # fmt: skip

        for i, cidr in enumerate(args.ingress_cidrs):
            ingress(f"alb-https-in-{i}", alb, HTTPS_PORT, f"HTTPS from {cidr}", cidr=str(cidr))
            ingress(f"alb-http-in-{i}", alb, HTTP_PORT, f"HTTP from {cidr} (redirected to HTTPS)", cidr=str(cidr))
        egress("alb-to-tasks", alb, server_port, "to the MLflow tasks", destination=tasks.id)
        if args.sign_in_at_load_balancer:
            # The ALB itself redeems the sign-in code at the IdP's token endpoint and calls its
            # userinfo endpoint (Cognito's are public too): internet hosts, addresses not fixed.
            egress("alb-to-idp", alb, HTTPS_PORT, "HTTPS to the identity provider (token and userinfo endpoints)",
                   cidr="0.0.0.0/0")  # fmt: skip
        ingress("tasks-from-alb", tasks, server_port, "from the load balancer", source=alb.id)
        # The tasks reach the database through RDS Proxy where there is one, never both ways.
        database_front = proxy if proxy is not None else db
        egress("tasks-to-db", tasks, contract.POSTGRES_PORT, "to the metadata database", destination=database_front.id)
        if endpoints is not None:
            # ECR, Secrets Manager, CloudWatch Logs and KMS through their interface endpoints, S3
            # through the gateway endpoint (whose policy names our buckets): nothing else.
            egress("tasks-to-endpoints", tasks, HTTPS_PORT, "HTTPS to the AWS API endpoints", destination=endpoints.id)
            egress("tasks-to-s3", tasks, HTTPS_PORT, "HTTPS to S3 (gateway endpoint)", prefix_list=s3_prefix_list_id)
            ingress("endpoints-from-tasks", endpoints, HTTPS_PORT, "HTTPS from the MLflow tasks", source=tasks.id)
        else:
            # AWS APIs (S3, ECR, Secrets Manager, CloudWatch Logs) are HTTPS only, through NAT.
            egress("tasks-to-aws-apis", tasks, HTTPS_PORT, "HTTPS to AWS APIs", cidr="0.0.0.0/0")
        if proxy is not None:
            ingress("db-proxy-from-tasks", proxy, contract.POSTGRES_PORT, "PostgreSQL from the MLflow tasks",
                    source=tasks.id)  # fmt: skip
            egress("db-proxy-to-db", proxy, contract.POSTGRES_PORT, "to the metadata database", destination=db.id)
            ingress("db-from-proxy", db, contract.POSTGRES_PORT, "PostgreSQL from the database proxy", source=proxy.id)
            # The proxy reads the database credentials from Secrets Manager. AWS does not document
            # whether that call leaves through the VPC, so allow it the way the tasks reach it.
            if endpoints is not None:
                egress("db-proxy-to-endpoints", proxy, HTTPS_PORT, "HTTPS to Secrets Manager (endpoint)",
                       destination=endpoints.id)  # fmt: skip
                ingress("endpoints-from-db-proxy", endpoints, HTTPS_PORT, "HTTPS from the database proxy",
                        source=proxy.id)  # fmt: skip
            else:
                egress("db-proxy-to-aws-apis", proxy, HTTPS_PORT, "HTTPS to Secrets Manager", cidr="0.0.0.0/0")
        else:
            ingress("db-from-tasks", db, contract.POSTGRES_PORT, "PostgreSQL from the MLflow tasks", source=tasks.id)
        # The database has no egress rule: it answers connections and starts none.
        if cache is not None:
            # Nor has the cache: it answers the tasks and starts no connection.
            egress("tasks-to-cache", tasks, JOB_QUEUE_PORT, "to the job queue", destination=cache.id)
            ingress("cache-from-tasks", cache, JOB_QUEUE_PORT, "Redis protocol from the MLflow tasks", source=tasks.id)

        self.load_balancer_id = alb.id
        self.tasks_id = tasks.id
        self.database_id = db.id
        self.endpoints_id = endpoints.id if endpoints is not None else None
        self.database_proxy_id = proxy.id if proxy is not None else None
        self.job_queue_id = cache.id if cache is not None else None
        self.register_outputs({"loadBalancer": alb.id, "tasks": tasks.id, "database": db.id})
