"""Generated secrets, the same way on every target."""

from __future__ import annotations

import pulumi
import pulumi_random as random


def generated_secret(name: str, length: int, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """A random alphanumeric secret (safe in URLs and env files), marked secret explicitly:
    the engine does so for `result` on a real run, but nothing should depend on that."""
    password = random.RandomPassword(name, random.RandomPasswordArgs(length=length, special=False), opts=opts)
    return pulumi.Output.secret(password.result)
