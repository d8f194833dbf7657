"""nginx's own answers as Prometheus series: mtail counts the proxy's request lines.

nginx answers some requests before any MLflow server sees them: a body over
`client_max_body_size` (413), an upstream that times out (504) or is down (502), a failed login
(401/429). The servers' series cannot count those. So, with observability on, nginx also sends
one line per request to mtail over syslog (UDP, a datagram per line: no log file to rotate, no
volume shared between containers), and mtail turns the lines into counters and histograms that
Prometheus scrapes. The program is rendered here and run as it is by the dev stack's container
(images/mtail) and by the e2e (Debian's mtail, the release the image pins).

Labels: the status code only (at most a few dozen values). Never the path, the user or the
method, which a client chooses freely.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.specs.health import HealthCheck
from images.mlflow import server_contract as contract

# mtail's own HTTP port (its /metrics), and the syslog port it reads nginx's lines on.
MTAIL_PORT = 3903
SYSLOG_PORT = 5140
# The container's name on the dev stack's networks: nginx sends to it, Prometheus scrapes it.
HOST = "proxy-metrics"
# nginx's syslog tag (letters, digits and underscores, at most 32) and its log_format's name.
SYSLOG_TAG = "mlflow_proxy"
LOG_FORMAT = "mlflow_metrics"
PROGRAM_NAME = "proxy.mtail"

METRIC_REQUESTS = "mlflow_platform_proxy_requests_total"
METRIC_REQUEST_BYTES = "mlflow_platform_proxy_request_bytes_total"
METRIC_RESPONSE_BYTES = "mlflow_platform_proxy_response_bytes_total"
METRIC_DURATION = "mlflow_platform_proxy_request_duration_seconds"
METRIC_UPSTREAM_DURATION = "mlflow_platform_proxy_upstream_response_seconds"

# One line per request. The upstream's time comes last: nginx writes "-" when no server was
# asked (its own 413, a 401) and "0.004, 0.120" when it tried two; only a single time is observed.
# nginx appends nothing to a syslog message, and mtail splits what it reads on newlines, so the
# format ends with one (nginx's config parser turns the "\n" into a newline).
LOG_FORMAT_FIELDS = "$status $request_time $request_length $bytes_sent $upstream_response_time"


def nginx_log_format() -> str:
    """The `log_format` line the proxy's config declares for these lines."""
    return f"log_format {LOG_FORMAT} '{LOG_FORMAT_FIELDS}\\n';"


def nginx_access_log(address: str) -> str:
    """The `access_log` line sending each request's line to mtail at `address` (host:port). nginx
    resolves a host name once, when it loads its config."""
    return f"access_log syslog:server={address},tag={SYSLOG_TAG},nohostname {LOG_FORMAT};"


def mtail_program() -> str:
    """The mtail program: what each line adds to which series."""
    buckets = ", ".join(str(bucket) for bucket in contract.LATENCY_BUCKETS)
    line = f"{SYSLOG_TAG}: (?P<status>\\d{{3}}) (?P<request_time>\\d+\\.\\d+) (?P<request_length>\\d+) (?P<bytes_sent>\\d+) "
    return f"""# Rendered by mlflow-platform (components/specs/proxy_metrics.py): nginx's request lines.
counter {METRIC_REQUESTS} by status
counter {METRIC_REQUEST_BYTES}
counter {METRIC_RESPONSE_BYTES}
histogram {METRIC_DURATION} buckets {buckets}
histogram {METRIC_UPSTREAM_DURATION} buckets {buckets}

/{line}/ {{
  {METRIC_REQUESTS}[$status]++
  {METRIC_REQUEST_BYTES} += $request_length
  {METRIC_RESPONSE_BYTES} += $bytes_sent
  {METRIC_DURATION} = $request_time
}}

# One upstream asked, once: its response time.
/{SYSLOG_TAG}: \\d{{3}} \\S+ \\S+ \\S+ (?P<upstream_time>\\d+\\.\\d+)$/ {{
  {METRIC_UPSTREAM_DURATION} = $upstream_time
}}
"""


def mtail_command(
    program_dir: str, *, port: int = MTAIL_PORT, syslog_port: int = SYSLOG_PORT, host: str = ""
) -> tuple[str, ...]:
    """mtail's arguments (after the binary): the programs in `program_dir`, nginx's lines on UDP
    `host:syslog_port`, its /metrics on `host:port` ("" for every interface)."""
    return (
        f"--progs={program_dir}",
        f"--logs=udp://{host}:{syslog_port}",
        *((f"--address={host}",) if host else ()),
        f"--port={port}",
        # The series are named by the program; a `prog` label on each would only repeat it.
        "--emit_prog_label=false",
        "--logtostderr",
    )


# The dev container (images/mtail: Debian slim, mtail, uid nobody).
PROGRAM_DIR = "/etc/mtail"
BINARY = "/usr/bin/mtail"


@dataclass(frozen=True)
class MtailContainer:
    entrypoint: tuple[str, ...]
    uploads: tuple[tuple[str, str], ...]
    """(path in the container, content): the rendered program."""
    health: HealthCheck


def mtail_container() -> MtailContainer:
    return MtailContainer(
        entrypoint=(BINARY, *mtail_command(PROGRAM_DIR)),
        uploads=((f"{PROGRAM_DIR}/{PROGRAM_NAME}", mtail_program()),),
        # The image has bash and no HTTP client: a TCP connect to the metrics port.
        health=HealthCheck(
            command=("bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{MTAIL_PORT}"),
            interval_seconds=10,
            start_period_seconds=20,
        ),
    )
