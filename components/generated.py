"""Generated secrets, the same way on every target."""

from __future__ import annotations

import pulumi
import pulumi_random as random

from images.mlflow import server_contract as contract


def generated_secret(name: str, length: int, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """A random alphanumeric secret (safe in URLs and env files), marked secret explicitly:
    the engine does so for `result` on a real run, but nothing should depend on that."""
    password = random.RandomPassword(name, random.RandomPasswordArgs(length=length, special=False), opts=opts)
    return pulumi.Output.secret(password.result)


def generated_fernet_key(name: str, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """A Fernet key: 32 random bytes in url-safe base64 (RandomBytes gives standard base64).
    No keepers: the value never changes once drawn, or what it encrypted is lost."""
    raw = random.RandomBytes(name, random.RandomBytesArgs(length=contract.FERNET_KEY_BYTES), opts=opts)
    return pulumi.Output.secret(raw.base64.apply(contract.fernet_key_from_base64))
