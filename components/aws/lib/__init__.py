"""Functions and plain data the AWS components are built from; no component lives here.

`container.py` is pure (no Pulumi): the ECS container definition and the one place ECS's
secret `valueFrom` syntax is written.
"""
