"""nginx in front of MLflow: the full config text, rendered from settings.

What it is for: basic auth on everything but /health, streaming of multi-GB artifacts
both ways (no 413 below the configured limit, no buffering to disk, no 504 on slow
transfers), correct forwarding headers, and optional TLS.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.docker import ProxySettings
from components.sizes import nginx_size
from components.specs import proxy_metrics
from components.specs.health import HealthCheck
from components.specs.otlp import MAX_BATCH_BYTES, TRACES_PATH
from images.mlflow import server_contract as contract

HTTP_PORT = 8080
HTTPS_PORT = 8443
# Plain-HTTP listener on the container's loopback for its own health check: works with TLS on.
HEALTH_PORT = 8081
HEALTH_PATH = "/nginx-health"
# nginx closes idle upstream connections before uvicorn does (its keep-alive is 75 s).
UPSTREAM_KEEPALIVE_SECONDS = 60
# nginx's read size from MLflow when streaming (proxy_buffer_size with proxy_buffering off).
PROXY_READ_BUFFER = "128k"
# Docker's embedded DNS server, on every user-defined network.
DOCKER_DNS = "127.0.0.11"
# How long nginx trusts a resolved upstream address: a restarted MLflow container with a new
# address gets traffic again within this (plus one health check), instead of 502s until nginx restarts.
RESOLVER_VALID_SECONDS = 5
# MLflow's capability endpoint (Python client and UI). It offers presigned S3 transfers whenever
# its artifact store can presign them, whether or not clients can reach that S3 endpoint.
SERVER_INFO_PATH = r"^/(ajax-)?api/3\.0/mlflow/server-info$"
DIRECT_TRANSFER_CAPABILITIES = ("multipart_uploads_enabled", "multipart_downloads_enabled")
# Failed basic-auth attempts per client address: AUTH_FAILURE_BURST back to back (typos, a
# browser's credential-less first requests), then one per 6 s; past that nginx answers 429.
# Requests with the right credentials never reach this limit, whatever their rate.
AUTH_FAILURE_ZONE = "auth_failures"
AUTH_FAILURE_RATE = "10r/m"
AUTH_FAILURE_BURST = 20
# 10 MB of zone: about 160,000 client addresses.
AUTH_FAILURE_ZONE_SIZE = "10m"
AUTH_FAILED_LOCATION = "@auth_failed"
# One failed attempt takes a server out for 1 s, and after that second nginx tries it again: a
# restarted server gets traffic within 1 s of being healthy (the defaults, 1 failure and 10 s,
# kept a recovered server idle for up to 10 s), while a dead one costs one refused connect per
# second, which nginx retries on the other server.
UPSTREAM_MAX_FAILS = 1
UPSTREAM_FAIL_TIMEOUT_SECONDS = 1


@dataclass(frozen=True)
class NginxPaths:
    """Where the rendered config expects things; the e2e tests point these into a temp dir."""

    htpasswd: str = "/etc/nginx/mlflow/htpasswd"
    tls_certificate: str = "/etc/nginx/mlflow/tls.crt"
    tls_key: str = "/etc/nginx/mlflow/tls.key"
    pid: str = "/var/run/nginx.pid"
    temp_dir: str = "/var/cache/nginx"
    access_log: str = "/dev/stdout"
    error_log: str = "/dev/stderr"
    mime_types: str = "/etc/nginx/mime.types"


@dataclass(frozen=True)
class ProxySpec:
    config_text: str
    listen_port: int
    health: HealthCheck
    paths: NginxPaths


def container_port(proxy: ProxySettings) -> int:
    return HTTPS_PORT if proxy.tls else HTTP_PORT


def nginx_health_check(health_port: int = HEALTH_PORT) -> HealthCheck:
    """bash's /dev/tcp, because the nginx image ships no HTTP client we can rely on."""
    script = (
        f"exec 3<>/dev/tcp/127.0.0.1/{health_port} && "
        f"printf 'GET {HEALTH_PATH} HTTP/1.0\\r\\n\\r\\n' >&3 && "
        "head -n 1 <&3 | grep -q ' 200 '"
    )
    return HealthCheck(
        command=("bash", "-c", script), interval_seconds=10, timeout_seconds=3, retries=3, start_period_seconds=5
    )


def basic_auth_lines(htpasswd: str, authenticate: bool = True) -> str:
    """A location's basic-auth lines (12 spaces in): nginx's check, or none where MLflow's
    basic-auth app checks every request itself (auth.mode: mlflow)."""
    if not authenticate:
        return "# MLflow's basic-auth app checks the credentials (auth.mode: mlflow)."
    return f'auth_basic "MLflow";\n            auth_basic_user_file {htpasswd};'


def otlp_traces_location(htpasswd: str, authenticate: bool = True) -> str:
    """OTLP/HTTP trace export: the REST API's basic auth, a body limit sized for span batches.

    A batch is read whole before it goes upstream (MLflow parses nothing before it has all of it),
    so a slow exporter holds an nginx buffer, not an MLflow worker.
    """
    return f"""
        # OpenTelemetry exporters (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): same credentials as the API.
        location = {TRACES_PATH} {{
            {basic_auth_lines(htpasswd, authenticate)}
            client_max_body_size {nginx_size(MAX_BATCH_BYTES)};
            client_body_buffer_size 1m;
            proxy_request_buffering on;
            proxy_pass http://mlflow;
        }}
"""


def metrics_refused_location() -> str:
    """MLflow's Prometheus endpoint is for the scraper on the private network: the public proxy
    answers 404 for it (and anything under it) before asking for credentials."""
    path = contract.METRICS_PATH
    return f"""
        location = {path} {{
            return 404;
        }}
        location ^~ {path}/ {{
            return 404;
        }}
"""


def nginx_proxy_spec(
    proxy: ProxySettings,
    upstreams: list[str],
    *,
    listen_port: int | None = None,
    health_port: int = HEALTH_PORT,
    listen_address: str = "",
    paths: NginxPaths = NginxPaths(),
    worker_user: str | None = "nginx",
    resolver: str | None = None,
    clients_reach_object_store: bool = False,
    authenticate: bool = True,
    metrics_log: str | None = None,
) -> ProxySpec:
    """The proxy for `upstreams` (host:port of each MLflow server).

    `resolver`: a DNS server to re-resolve upstream names with (Docker's); None for addresses.
    `clients_reach_object_store`: False where clients cannot reach the server's S3 endpoint (the
    dev stack's `http://minio:9000`): MLflow's offer of presigned transfers is then answered
    "not available", so every client, with no setting of its own, sends every byte through here.
    `authenticate`: False where MLflow's basic-auth app authenticates (auth.mode: mlflow).
    `metrics_log`: where mtail reads each request's line (host:port, observability on), else None.
    """
    if not upstreams:
        raise ValueError("nginx needs at least one MLflow upstream")
    port = listen_port or container_port(proxy)
    text = render_nginx_conf(
        proxy,
        upstreams,
        listen_port=port,
        health_port=health_port,
        listen_address=listen_address,
        paths=paths,
        worker_user=worker_user,
        resolver=resolver,
        clients_reach_object_store=clients_reach_object_store,
        authenticate=authenticate,
        metrics_log=metrics_log,
    )
    return ProxySpec(config_text=text, listen_port=port, health=nginx_health_check(health_port), paths=paths)


def upstream_server(address: str, *, resolve: bool = False) -> str:
    """The `server` line of one MLflow upstream; `resolve`: re-resolve its name while running
    (open-source nginx 1.27.3+, needs the upstream's zone)."""
    return (
        f"server {address} max_fails={UPSTREAM_MAX_FAILS} fail_timeout={UPSTREAM_FAIL_TIMEOUT_SECONDS}s"
        f"{' resolve' if resolve else ''};"
    )


def render_nginx_conf(
    proxy: ProxySettings,
    upstreams: list[str],
    *,
    listen_port: int,
    health_port: int,
    listen_address: str,
    paths: NginxPaths,
    worker_user: str | None,
    resolver: str | None = None,
    clients_reach_object_store: bool = False,
    authenticate: bool = True,
    metrics_log: str | None = None,
) -> str:
    timeout = f"{proxy.timeout_seconds}s"
    if authenticate:
        identity_headers = f"""        # nginx checked the password; MLflow never needs to see it.
        proxy_set_header Authorization "";
        # Who nginx authenticated, for the servers' audit log; replaces any client-sent value.
        proxy_set_header {contract.PROXY_USER_HEADER_NAME} $remote_user;"""
    else:
        identity_headers = f"""        # MLflow checks the credentials (Authorization passes through); nginx vouches for nobody:
        # an empty value drops any client-sent one.
        proxy_set_header {contract.PROXY_USER_HEADER_NAME} "";"""
    listen = f"{listen_address}:{listen_port}" if listen_address else str(listen_port)
    health_listen = f"{listen_address or '127.0.0.1'}:{health_port}"
    servers = "\n".join(f"        {upstream_server(upstream, resolve=bool(resolver))}" for upstream in upstreams)
    user_line = f"user {worker_user};\n" if worker_user else ""
    resolver_lines = ""
    zone = ""
    if resolver:
        resolver_lines = f"""
    # Upstream names through Docker's DNS, so a restarted container's new address is picked up.
    resolver {resolver} valid={RESOLVER_VALID_SECONDS}s ipv6=off;
    resolver_timeout 5s;
"""
        zone = "\n        zone mlflow_upstreams 64k;"
    server_info = ""
    if not clients_reach_object_store:
        rewrites = "\n".join(
            f"            sub_filter '\"{name}\":true' '\"{name}\":false';" for name in DIRECT_TRANSFER_CAPABILITIES
        )
        server_info = f"""
        # Clients cannot reach the server's S3 endpoint: MLflow's capability answer must not send
        # them there (presigned uploads and downloads), or a plain client fails on big artifacts.
        location ~ {SERVER_INFO_PATH} {{
            {basic_auth_lines(paths.htpasswd, authenticate)}
            # No proxy_set_header here: one would drop every header set for the server. MLflow
            # does not compress, so sub_filter sees the JSON as it is.
            proxy_pass http://mlflow;
            sub_filter_types application/json;
            sub_filter_once off;
{rewrites}
        }}
"""
    metrics_lines = ""
    if metrics_log:
        metrics_lines = f"""
    # The same requests, as the lines mtail counts (components/specs/proxy_metrics.py).
    {proxy_metrics.nginx_log_format()}
    {proxy_metrics.nginx_access_log(metrics_log)}"""
    tls = ""
    if proxy.tls:
        tls = f"""
        ssl_certificate {paths.tls_certificate};
        ssl_certificate_key {paths.tls_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        # TLS 1.2 suites: forward-secret AEAD only (TLS 1.3 suites are all strong).
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers off;
        ssl_session_cache shared:mlflow_tls:10m;
        ssl_session_timeout 1h;
        # Resumption through the session cache only: automatic ticket-key rotation is what
        # CVE-2026-97629 forges sessions with (nginx before 1.30.6 / 1.31.7).
        ssl_session_tickets off;
        add_header Strict-Transport-Security "max-age=31536000" always;"""
    return f"""# Rendered by mlflow-platform (components/specs/nginx.py) from the stack config.
{user_line}worker_processes auto;
# Each proxied request holds two descriptors (client and upstream).
worker_rlimit_nofile 4096;
pid {paths.pid};
error_log {paths.error_log} warn;

events {{
    worker_connections 1024;
}}

http {{
    include {paths.mime_types};
    default_type application/octet-stream;
    server_tokens off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65s;

{resolver_lines}
    # Who called what, how long MLflow took; never the Authorization header.
    log_format mlflow '$remote_addr $remote_user [$time_local] "$request" $status '
                      '$body_bytes_sent $request_length rt=$request_time urt=$upstream_response_time';
    access_log {paths.access_log} mlflow;{metrics_lines}

    # Counts failed logins only: applied where a 401 is redirected to, see {AUTH_FAILED_LOCATION}.
    limit_req_zone $binary_remote_addr zone={AUTH_FAILURE_ZONE}:{AUTH_FAILURE_ZONE_SIZE} rate={AUTH_FAILURE_RATE};

    client_body_temp_path {paths.temp_dir}/client_body;
    proxy_temp_path {paths.temp_dir}/proxy;

    upstream mlflow {{{zone}
{servers}
        # Each request to the server with the fewest in flight: a 20k-point history read costs a
        # worker ~100x a log_metric, which round robin would queue behind. nginx wants the method
        # before `keepalive`.
        least_conn;
        keepalive 32;
        keepalive_timeout {UPSTREAM_KEEPALIVE_SECONDS}s;
    }}

    server {{
        listen {listen}{" ssl" if proxy.tls else ""};
        server_name _;
{tls}
        # Artifacts up to this size; above it nginx answers 413 before reading the body.
        client_max_body_size {nginx_size(proxy.max_upload_size)};
        client_body_timeout {timeout};
        send_timeout {timeout};

        # Stream request and response bodies: no spooling of multi-GB artifacts to disk here.
        proxy_request_buffering off;
        proxy_buffering off;
        # Unbuffered, nginx reads the response this much at a time and sends each read on as one
        # chunk: at the default page (4k) a 500 MiB download is 128,000 chunks the client decodes
        # one by one (bench/compare.py: 0.68x the blog's buffered nginx). Allocated per request.
        proxy_buffer_size {PROXY_READ_BUFFER};
        # Unused while unbuffered, but nginx checks the busy size (2 x the read size) against them.
        proxy_buffers 4 {PROXY_READ_BUFFER};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_connect_timeout 10s;
        proxy_send_timeout {timeout};
        proxy_read_timeout {timeout};

        # MLflow checks Host against --allowed-hosts: pass the bare host name the client used.
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
{identity_headers}

        add_header X-Content-Type-Options nosniff always;

        # Every 401 nginx gives (wrong or missing credentials) goes through the failed-login limit.
        error_page 401 = {AUTH_FAILED_LOCATION};
{server_info}{otlp_traces_location(paths.htpasswd, authenticate)}{metrics_refused_location()}
        location = {contract.HEALTH_PATH} {{
            auth_basic off;
            proxy_pass http://mlflow;
        }}

        location / {{
            {basic_auth_lines(paths.htpasswd, authenticate)}
            proxy_pass http://mlflow;
        }}

        # Reached only by a failed login. limit_req runs in the preaccess phase, which the
        # redirect to a named location goes through; `return` would answer earlier (rewrite
        # phase) and skip it, so the 401 comes from try_files (after preaccess): "" is the
        # root directory, never a file, and its lookup is cached. The first 401's
        # WWW-Authenticate header is kept.
        location {AUTH_FAILED_LOCATION} {{
            limit_req zone={AUTH_FAILURE_ZONE} burst={AUTH_FAILURE_BURST} nodelay;
            limit_req_status 429;
            limit_req_log_level warn;
            open_file_cache max=16 inactive=60s;
            open_file_cache_errors on;
            try_files "" =401;
        }}
    }}

    # The container's own health check; loopback only, never published.
    server {{
        listen {health_listen};
        access_log off;
        location = {HEALTH_PATH} {{
            return 200 "ok\\n";
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""
