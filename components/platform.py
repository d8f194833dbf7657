"""The one place that picks the implementation (Docker or AWS) from the settings.

The targets import nothing from here (what they return lives in components.outputs), so this
module imports them at the top: no cycle, nothing hidden in a function.
"""

from __future__ import annotations

import pulumi

from components.aws.platform import AwsPlatform
from components.config import AwsSettings, DockerSettings
from components.docker.engine import platform_name
from components.docker.platform import DockerPlatform
from components.outputs import PlatformOutputs


def build_platform(settings: DockerSettings | AwsSettings) -> PlatformOutputs:
    name = platform_name(pulumi.get_stack())
    if isinstance(settings, DockerSettings):
        return DockerPlatform(name, settings).outputs
    return AwsPlatform(name, settings).outputs
