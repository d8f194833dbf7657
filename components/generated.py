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


def generated_key_bytes(name: str, length: int, opts: pulumi.ResourceOptions) -> random.RandomBytes:
    """`length` random bytes, for a key: read them as `.base64` (standard) or `.hex`, both secret
    outputs (the SDK marks them so). No keepers: the value never changes once drawn, or what it
    encrypted is lost; a changed `length` would replace it, so callers pass a constant."""
    return random.RandomBytes(name, random.RandomBytesArgs(length=length), opts=opts)


def generated_fernet_key(name: str, opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """A Fernet key: 32 random bytes in url-safe base64 (RandomBytes gives standard base64)."""
    raw = generated_key_bytes(name, contract.FERNET_KEY_BYTES, opts)
    return pulumi.Output.secret(raw.base64.apply(contract.fernet_key_from_base64))
