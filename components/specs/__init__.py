"""Service specs: each service described once, as plain data (no Pulumi calls).

Docker containers, ECS task definitions and the end-to-end tests are all built
from these, changing only hosts, ports and paths.
"""
