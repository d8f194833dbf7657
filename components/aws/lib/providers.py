"""Explicit providers, and the account facts every policy needs, looked up once."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker
import pulumi_random as random

from components.config import AwsSettings

PROJECT_TAG = "mlflow-platform"


@dataclass(frozen=True)
class AwsContext:
    """The providers and where we are: what policies and ARNs are built from."""

    aws: aws.Provider
    docker: docker.Provider
    random: random.Provider
    region: str
    account_id: pulumi.Output[str]
    partition: pulumi.Output[str]
    stack: str

    @property
    def providers(self) -> list[pulumi.ProviderResource]:
        """For ResourceOptions(providers=...): children inherit the one of their package."""
        return [self.aws, self.docker, self.random]

    def child(self, parent: pulumi.Resource, **kwargs) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=parent, providers=self.providers, **kwargs)

    def invoke(self, parent: pulumi.Resource | None = None) -> pulumi.InvokeOutputOptions:
        return pulumi.InvokeOutputOptions(provider=self.aws, parent=parent)

    def arn(self, service: str, resource: str, region: bool = True) -> pulumi.Output[str]:
        """arn:<partition>:<service>:<region>:<account>:<resource>."""
        where = self.region if region else ""
        return pulumi.Output.concat("arn:", self.partition, f":{service}:{where}:", self.account_id, f":{resource}")

    def service_host(self, service: str) -> str:
        # Every commercial partition uses amazonaws.com for the principals and VPC endpoints we use.
        return f"{service}.{self.region}.amazonaws.com"


def make_context(name: str, settings: AwsSettings, parent: pulumi.Resource) -> AwsContext:
    stack = pulumi.get_stack()
    opts = pulumi.ResourceOptions(parent=parent)
    aws_provider = aws.Provider(
        f"{name}-aws",
        aws.ProviderArgs(
            region=settings.aws.region,
            # A wrong profile or role cannot deploy prod into another account.
            allowed_account_ids=settings.aws.allowed_account_ids or None,
            default_tags=aws.ProviderDefaultTagsArgs(
                tags={"project": PROJECT_TAG, "stack": stack, "managed-by": "pulumi"}
            ),
        ),
        opts=opts,
    )
    # Builds on the engine of the machine running `pulumi up` (the CI runner), then pushes to ECR.
    docker_provider = docker.Provider(f"{name}-docker", docker.ProviderArgs(), opts=opts)
    random_provider = random.Provider(f"{name}-random", opts=opts)
    invoke = pulumi.InvokeOutputOptions(provider=aws_provider, parent=parent)
    return AwsContext(
        aws=aws_provider,
        docker=docker_provider,
        random=random_provider,
        region=settings.aws.region,
        account_id=aws.get_caller_identity_output(opts=invoke).account_id,
        partition=aws.get_partition_output(opts=invoke).partition,
        stack=stack,
    )
