"""IAM policy documents as plain data, so tests read exactly what AWS will enforce."""

from __future__ import annotations

from typing import Any

import pulumi


def statement(sid: str, actions: list[str], resources: list[Any] | pulumi.Output[list[str]], effect: str = "Allow",
              **extra: Any) -> dict:  # fmt: skip
    return {"Sid": sid, "Effect": effect, "Action": actions, "Resource": resources, **extra}


def document(*statements: dict) -> pulumi.Output[str]:
    """A policy JSON string; Outputs (ARNs, account ids) anywhere inside are resolved."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def deny_insecure_transport(bucket_arn: pulumi.Input[str]) -> dict:
    return statement(
        "DenyInsecureTransport",
        ["s3:*"],
        [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
        effect="Deny",
        Principal="*",
        Condition={"Bool": {"aws:SecureTransport": "false"}},
    )


def service_trust(service: str, account_id: pulumi.Input[str], source_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """Who may assume a role: one AWS service, acting for this account only (no confused deputy)."""
    return document(
        {
            "Sid": "AssumedByService",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account_id},
                "ArnLike": {"aws:SourceArn": source_arn},
            },
        }
    )
