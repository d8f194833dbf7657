"""nginx in front of MLflow: the full config text, rendered from settings.

What it is for: basic auth on everything but /health, streaming of multi-GB artifacts
both ways (no 413 below the configured limit, no buffering to disk, no 504 on slow
transfers), correct forwarding headers, and optional TLS.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.config.docker import ProxySettings
from components.sizes import nginx_size
from components.specs.health import HealthCheck

HTTP_PORT = 8080
HTTPS_PORT = 8443
# Plain-HTTP listener on the container's loopback for its own health check: works with TLS on.
HEALTH_PORT = 8081
HEALTH_PATH = "/nginx-health"
# nginx closes idle upstream connections before uvicorn does (its keep-alive is 75 s).
UPSTREAM_KEEPALIVE_SECONDS = 60


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
    return HealthCheck(command=("bash", "-c", script), interval_seconds=10, timeout_seconds=3, retries=3,
                       start_period_seconds=5)


def nginx_proxy_spec(
    proxy: ProxySettings,
    upstreams: list[str],
    *,
    listen_port: int | None = None,
    health_port: int = HEALTH_PORT,
    listen_address: str = "",
    paths: NginxPaths = NginxPaths(),
    worker_user: str | None = "nginx",
) -> ProxySpec:
    """The proxy for `upstreams` (host:port of each MLflow server)."""
    if not upstreams:
        raise ValueError("nginx needs at least one MLflow upstream")
    port = listen_port or container_port(proxy)
    text = render_nginx_conf(proxy, upstreams, listen_port=port, health_port=health_port,
                             listen_address=listen_address, paths=paths, worker_user=worker_user)
    return ProxySpec(config_text=text, listen_port=port, health=nginx_health_check(health_port), paths=paths)


def render_nginx_conf(
    proxy: ProxySettings,
    upstreams: list[str],
    *,
    listen_port: int,
    health_port: int,
    listen_address: str,
    paths: NginxPaths,
    worker_user: str | None,
) -> str:
    timeout = f"{proxy.timeout_seconds}s"
    listen = f"{listen_address}:{listen_port}" if listen_address else str(listen_port)
    health_listen = f"{listen_address or '127.0.0.1'}:{health_port}"
    servers = "\n".join(f"        server {upstream};" for upstream in upstreams)
    user_line = f"user {worker_user};\n" if worker_user else ""
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

    # Who called what, how long MLflow took; never the Authorization header.
    log_format mlflow '$remote_addr $remote_user [$time_local] "$request" $status '
                      '$body_bytes_sent $request_length rt=$request_time urt=$upstream_response_time';
    access_log {paths.access_log} mlflow;

    client_body_temp_path {paths.temp_dir}/client_body;
    proxy_temp_path {paths.temp_dir}/proxy;

    upstream mlflow {{
{servers}
        keepalive 32;
        keepalive_timeout {UPSTREAM_KEEPALIVE_SECONDS}s;
    }}

    server {{
        listen {listen}{' ssl' if proxy.tls else ''};
        server_name _;
{tls}
        # Artifacts up to this size; above it nginx answers 413 before reading the body.
        client_max_body_size {nginx_size(proxy.max_upload_size)};
        client_body_timeout {timeout};
        send_timeout {timeout};

        # Stream request and response bodies: no spooling of multi-GB artifacts to disk here.
        proxy_request_buffering off;
        proxy_buffering off;
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
        # nginx checked the password; MLflow never needs to see it.
        proxy_set_header Authorization "";

        add_header X-Content-Type-Options nosniff always;

        location = /health {{
            auth_basic off;
            proxy_pass http://mlflow;
        }}

        location / {{
            auth_basic "MLflow";
            auth_basic_user_file {paths.htpasswd};
            proxy_pass http://mlflow;
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
