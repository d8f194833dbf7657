"""What `pulumi preview --policy-pack policy` runs (`python policy/`): serve the pack to the engine.

PolicyPack() starts pulumi-policy's gRPC server and blocks; the rules live in rules/ and
their wrapping in pack.py, so tests import those without starting a server.
"""

from pack import PACK_NAME, build_policies, current_stack
from pulumi_policy import EnforcementLevel, PolicyPack

if __name__ == "__main__":
    PolicyPack(
        name=PACK_NAME,
        policies=build_policies(current_stack()),
        enforcement_level=EnforcementLevel.MANDATORY,
        description="Security and reliability rules for mlflow-platform: RDS, S3, ALB, ECS, network, IAM, ECR, "
        "and the Docker dev stack. See docs/policy.md.",
    )
