"""OpenTelemetry trace ingestion (OTLP/HTTP), as MLflow serves it: the facts the proxy, the load
balancer, the web firewall and the docs share.

MLflow 3 takes OTLP/HTTP export requests (protobuf or JSON, no gRPC) at `/v1/traces`
(mlflow/tracing/utils/otlp.py) and stores them in the experiment the `x-mlflow-experiment-id`
header names; without that header it answers 422.
"""

from __future__ import annotations

TRACES_PATH = "/v1/traces"
EXPERIMENT_ID_HEADER = "x-mlflow-experiment-id"
# One export request is one batch of spans (the SDK's BatchSpanProcessor sends at most 512 spans a
# request by default). LLM spans carry whole prompts and answers, so a batch can reach megabytes;
# 64 MiB leaves room for big ones and still refuses a runaway client before MLflow parses it
# (MLflow reads the whole body into memory).
MAX_BATCH_BYTES = 64 * 1024**2
